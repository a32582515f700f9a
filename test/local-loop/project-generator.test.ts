import { describe, expect, test } from 'bun:test'
import jpeg from 'jpeg-js'
import { decode, ProjectGeneratorRequest } from '../../src/contract/index.ts'
import { planGeneratedProject, type PlannedImage } from '../../src/local-loop/project-generator.ts'
import { renderSyntheticJpeg } from '../../src/local-loop/synthetic-image.ts'

const request = decode(ProjectGeneratorRequest, {
  project_name: 'p', inbox: 2, review: 1, complete: 5, box_categories: 2, point_categories: 2, segmentation_categories: 1,
  classification_categories: 1, box_annotations: 3, box_detections: 2, trainings: 2, tags: 2,
})

let counter = 0
const plan = planGeneratedProject(request, { seed: 7, newId: () => `id-${++counter}` })

function pixel(decoded: { width: number; data: Uint8Array }, x: number, y: number): number[] {
  const at = (y * decoded.width + x) * 4
  return [decoded.data[at]!, decoded.data[at + 1]!, decoded.data[at + 2]!]
}

function hexToRgb(hex: string): number[] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))
}

const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) <= 40)

describe('planGeneratedProject', () => {
  test('makes the categories asked for, with types and colours', () => {
    expect(plan.categories.map((c) => c.type)).toEqual(['box', 'box', 'point', 'point', 'segmentation', 'classification'])
    expect(new Set(plan.categories.map((c) => c.name)).size).toBe(6)
    expect(plan.categories.every((c) => /^#[0-9a-f]{6}$/.test(c.color ?? ''))).toBe(true)
  })

  test('makes N images per state; complete images carry annotations, the others none', () => {
    const byState = (state: string) => plan.images.filter((i) => i.state === state)
    expect([byState('inbox').length, byState('annotate').length, byState('review').length, byState('complete').length]).toEqual([2, 0, 1, 5])
    for (const image of byState('complete')) {
      expect(image.box_annotations).toHaveLength(3)
      expect(image.point_annotations).toHaveLength(2)
      expect(image.segmentation_annotations).toHaveLength(1)
      expect(image.classification_annotation?.category_name).toBe(plan.categories[5]!.name)
      expect(image.box_detections).toHaveLength(2)
      expect(image.box_detections[0]!.model_name).toBe('2.0')
      expect(image.tags).toEqual(['tag_1', 'tag_2'])
    }
    for (const image of [...byState('inbox'), ...byState('review')]) {
      expect(image.box_annotations).toHaveLength(0)
      expect(image.shapes.length).toBe(6)
    }
  })

  test('splits complete images into train and test', () => {
    const sets = plan.images.filter((i) => i.state === 'complete').map((i) => i.set)
    expect(sets).toContain('train')
    expect(sets).toContain('test')
  })

  test('is reproducible from the seed', () => {
    let again = 0
    const replay = planGeneratedProject(request, { seed: 7, newId: () => `id-${++again}` })
    expect(replay.images.map((i) => i.shapes)).toEqual(plan.images.map((i) => i.shapes))
    const other = planGeneratedProject(request, { seed: 8, newId: () => `x` })
    expect(other.images.map((i) => i.shapes)).not.toEqual(plan.images.map((i) => i.shapes))
  })
})

describe('renderSyntheticJpeg', () => {
  const image = plan.images.find((i) => i.state === 'complete')! as PlannedImage
  const decoded = jpeg.decode(renderSyntheticJpeg(image), { useTArray: true })

  test('encodes an image of the planned size', () => {
    expect([decoded.width, decoded.height]).toEqual([image.width, image.height])
  })

  test('every box annotation sits on a drawn box of its category colour', () => {
    for (const box of image.box_annotations) {
      const category = plan.categories.find((c) => c.id === box.category_id)!
      const centre = pixel(decoded, box.x + Math.floor(box.width / 2), box.y + Math.floor(box.height / 2))
      expect(close(centre, hexToRgb(category.color!))).toBe(true)
      // just outside the box is background, not the box colour
      const outside = pixel(decoded, Math.max(0, box.x - 3), Math.max(0, box.y - 3))
      expect(close(outside, hexToRgb(category.color!))).toBe(false)
    }
  })

  test('every point annotation sits on a dot of its category colour', () => {
    for (const point of image.point_annotations) {
      const category = plan.categories.find((c) => c.id === point.category_id)!
      expect(close(pixel(decoded, Math.round(point.x), Math.round(point.y)), hexToRgb(category.color!))).toBe(true)
    }
  })
})
