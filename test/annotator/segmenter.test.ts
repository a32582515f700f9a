import { describe, expect, test } from 'bun:test'
import { join, resolve } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { createInProcessSegmenter, createWorkerSegmenter } from '../../src/annotator/segmenter.ts'
import { SegmentationInputError } from '../../src/annotator/box-segmentation.ts'
import { ImageInputError } from '../../src/inference/inference-errors.ts'
import { makeTempDir } from '../support/temp.ts'

const COFFEE = resolve(import.meta.dir, '../fixtures/coffee.jpg')
const request = { box: { x0: 160, y0: 15, x1: 420, y1: 310 } }
/** The rejection of `promise`. (bun 1.4.5's `expect(p).rejects` does not let worker messages in while it waits.) */
const rejectionOf = (promise: Promise<unknown>) => promise.then(() => new Error('expected a rejection'), (error: Error) => error)

describe('segmenters', () => {
  test('the worker gives the same outline as in-process segmentation and rebuilds typed errors', async () => {
    const worker = createWorkerSegmenter()
    const inline = createInProcessSegmenter()
    const temp = await makeTempDir('lln-segmenter-')
    try {
      expect(await worker.imageSize(COFFEE)).toEqual({ width: 600, height: 400 })
      const [a, b] = await Promise.all([worker.segment(COFFEE, request), inline.segment(COFFEE, request)])
      expect(a.polygon).toEqual(b.polygon)
      expect(await rejectionOf(worker.segment(COFFEE, { box: { x0: 700, y0: 0, x1: 800, y1: 50 } }))).toBeInstanceOf(SegmentationInputError)
      expect((await rejectionOf(worker.imageSize(join(temp.path, 'missing.jpg')))).message).toContain('does not exist')
      const broken = join(temp.path, 'broken.jpg')
      await writeFile(broken, new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]))
      expect(await rejectionOf(worker.imageSize(broken))).toBeInstanceOf(ImageInputError)
      // still serving after the failures
      expect((await worker.segment(COFFEE, request)).polygon).toEqual(b.polygon)
    } finally {
      await worker.dispose()
      await temp.cleanup()
    }
    expect((await rejectionOf(worker.imageSize(COFFEE))).message).toContain('disposed')
  })

  test('a request over its time limit ends the worker; the next request gets a fresh one', async () => {
    const worker = createWorkerSegmenter({ timeoutMs: 1 })
    try {
      expect((await rejectionOf(worker.segment(COFFEE, request))).message).toContain('did not finish within 1 ms')
    } finally {
      await worker.dispose()
    }
    const patient = createWorkerSegmenter({ timeoutMs: 20_000 })
    try {
      expect((await patient.imageSize(COFFEE)).width).toBe(600)
    } finally {
      await patient.dispose()
    }
  })
})
