/** Acceptance 3: with YOLOv8n fetched (scripts/fetch-bench-models.ts), a real photo of a person yields a person box. */
import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { fetchedYolov8nDir } from '../../scripts/fetch-bench-models.ts'
import { createInferenceEngine } from '../../src/inference/inference-engine.ts'

const modelDir = fetchedYolov8nDir()
if (!modelDir) console.log('skipping YOLOv8n test: run `bun scripts/fetch-bench-models.ts` first (AGPL weights, never committed)')

describe('YOLOv8n', () => {
  test.skipIf(!modelDir)('finds the astronaut as a person (> 0.5) where she stands, and the cup but no person in the coffee photo', async () => {
    const engine = await createInferenceEngine({ modelDir: modelDir!, backend: 'cpu' })
    try {
      expect(engine.modelInfo.categories).toHaveLength(80)
      const bytes = await Bun.file(join(import.meta.dir, '..', 'fixtures', 'astronaut.jpg')).bytes()
      const output = await engine.detect({ kind: 'encoded', bytes })
      const people = output.box_detections.filter((b) => b.category_name === 'person' && b.confidence > 0.5)
      expect(people).toHaveLength(1)
      const person = people[0]!
      // hand-drawn: she spans x 20–365 and y 15 to the bottom edge
      expect(person.x).toBeLessThan(40)
      expect(person.x + person.width).toBeGreaterThan(340)
      expect(person.y).toBeLessThan(40)
      expect(person.y + person.height).toBeGreaterThan(480)
      const coffee = await engine.detect({ kind: 'encoded', bytes: await Bun.file(join(import.meta.dir, '..', 'fixtures', 'coffee.jpg')).bytes() })
      expect(coffee.box_detections.filter((b) => b.category_name === 'person' && b.confidence > 0.5)).toEqual([])
      expect(coffee.box_detections.map((b) => b.category_name)).toContain('cup')
    } finally {
      await engine.dispose()
    }
  })
})
