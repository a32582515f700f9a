import { describe, expect, test } from 'bun:test'
import type { Category } from '../../src/contract/index.ts'
import { mapCandidates } from '../../src/inference/detection-mapping.ts'
import { computeGeometry } from '../../src/inference/image-preprocessing.ts'
import { greedyNonMaxSuppression, intersectionOverUnion, type Candidate } from '../../src/inference/non-max-suppression.ts'
import { decodeYoloOutput, detectYoloLayout } from '../../src/inference/yolo-decoding.ts'

// Four boxes, two classes. Box 1 overlaps box 0 (IoU 180/220 = 0.818) with the same class; box 2 sits on
// box 1 but is class 1; box 3 scores below the 0.2 threshold.
const BOXES = [
  { cx: 50, cy: 50, w: 20, h: 10, scores: [0.9, 0.1] },
  { cx: 52, cy: 50, w: 20, h: 10, scores: [0.8, 0.05] },
  { cx: 52, cy: 50, w: 20, h: 10, scores: [0.1, 0.7] },
  { cx: 10, cy: 10, w: 4, h: 4, scores: [0.1, 0.15] },
]

function v8Output(): Float32Array {
  const n = BOXES.length
  const data = new Float32Array(6 * n)
  BOXES.forEach((b, i) => {
    data[i] = b.cx; data[n + i] = b.cy; data[2 * n + i] = b.w; data[3 * n + i] = b.h
    data[4 * n + i] = b.scores[0]!; data[5 * n + i] = b.scores[1]!
  })
  return data
}

function v5Output(): Float32Array {
  // objectness 1 except box 0, whose 0.9 × class 1.0 must give the same 0.9
  return Float32Array.from(BOXES.flatMap((b, i) => i === 0 ? [b.cx, b.cy, b.w, b.h, 0.9, 1.0, 0.1] : [b.cx, b.cy, b.w, b.h, 1, ...b.scores]))
}

const category = (id: string, name: string, type: Category['type'] = 'box'): Category =>
  ({ id, name, type, description: null, hotkey: null, color: null, point_size: null })

describe('YOLO layout detection', () => {
  test('v8 [1, 4+C, N] and v5 [1, N, 5+C] are told apart by the smaller axis', () => {
    expect(detectYoloLayout([1, 84, 8400])).toEqual({ layout: 'yolov8', boxes: 8400, classes: 80 })
    expect(detectYoloLayout([1, 25200, 85])).toEqual({ layout: 'yolov5', boxes: 25200, classes: 80 })
    expect(detectYoloLayout([84, 8400])).toEqual({ layout: 'yolov8', boxes: 8400, classes: 80 })
  })

  test('a known class count settles shapes the axis rule gets wrong', () => {
    // 5 boxes of v5 with 2 classes: [1, 5, 7] — the smaller-axis rule alone would call it v8 with 1 class
    expect(detectYoloLayout([1, 5, 7])).toEqual({ layout: 'yolov8', boxes: 7, classes: 1 })
    expect(detectYoloLayout([1, 5, 7], 2)).toEqual({ layout: 'yolov5', boxes: 5, classes: 2 })
    // [1, 6, 7] fits both layouts for 2 classes: the axis rule decides unless the model.json forces one
    expect(detectYoloLayout([1, 6, 7], 2)).toEqual({ layout: 'yolov8', boxes: 7, classes: 2 })
    expect(detectYoloLayout([1, 6, 7], 2, 'yolov5')).toEqual({ layout: 'yolov5', boxes: 6, classes: 2 })
    expect(detectYoloLayout([1, 6, 64], 2)).toEqual({ layout: 'yolov8', boxes: 64, classes: 2 })
  })

  test('shapes that are not YOLO outputs are refused with the shape named', () => {
    expect(() => detectYoloLayout([1, 3, 4, 5])).toThrow('[1, 3, 4, 5]')
    expect(() => detectYoloLayout([1, 4, 4])).toThrow('no class scores')
    // fewer boxes than attributes: the reading that leaves class scores wins
    expect(detectYoloLayout([1, 4, 100])).toEqual({ layout: 'yolov5', boxes: 4, classes: 95 })
  })
})

describe('YOLO decoding and class-wise NMS', () => {
  const expected = [
    { x1: 40, y1: 45, x2: 60, y2: 55, classIndex: 0, score: 0.9 },
    { x1: 42, y1: 45, x2: 62, y2: 55, classIndex: 1, score: 0.7 },
  ]

  for (const [layout, data, dims] of [['yolov8', v8Output(), [1, 6, 4]], ['yolov5', v5Output(), [1, 4, 7]]] as const) {
    test(`${layout}: threshold, best class, corner form`, () => {
      const candidates = decodeYoloOutput(data, detectYoloLayout(dims, 2), 0.2)
      expect(candidates).toHaveLength(3)
      const kept = greedyNonMaxSuppression(candidates, 0.45, 100)
      expect(kept).toHaveLength(2)
      kept.forEach((k, i) => {
        const e = expected[i]!
        expect([k.x1, k.y1, k.x2, k.y2, k.classIndex]).toEqual([e.x1, e.y1, e.x2, e.y2, e.classIndex])
        expect(k.score).toBeCloseTo(e.score, 5)
      })
    })
  }

  test('IoU follows §6.3, including an empty union', () => {
    const a: Candidate = { x1: 40, y1: 45, x2: 60, y2: 55, score: 1, classIndex: 0 }
    const b: Candidate = { x1: 42, y1: 45, x2: 62, y2: 55, score: 1, classIndex: 0 }
    expect(intersectionOverUnion(a, b)).toBeCloseTo(180 / 220, 10)
    const point: Candidate = { x1: 5, y1: 5, x2: 5, y2: 5, score: 1, classIndex: 0 }
    expect(intersectionOverUnion(point, point)).toBe(0)
  })

  test('class-agnostic NMS drops the overlapping box of the other class; maxDetections caps the result', () => {
    const candidates = decodeYoloOutput(v8Output(), detectYoloLayout([1, 6, 4]), 0.2)
    expect(greedyNonMaxSuppression(candidates, 0.45, 100, false)).toHaveLength(1)
    expect(greedyNonMaxSuppression(candidates, 0.45, 1)).toHaveLength(1)
    expect(greedyNonMaxSuppression(candidates, 0.9, 100)).toHaveLength(3)
  })
})

describe('mapping candidates back to the source image', () => {
  // 200×100 into a 64×64 letterbox: ratio 0.32, resized 64×32, padded 16 px top and bottom
  const geometry = computeGeometry(200, 100, { width: 64, height: 64, resize: 'letterbox' })
  const categories = [category('c-0', 'person'), category('c-1', 'centre', 'point'), category('c-2', 'scene', 'classification')]

  test('letterbox geometry', () => {
    expect(geometry).toEqual({ sourceWidth: 200, sourceHeight: 100, scaleX: 0.32, scaleY: 0.32, padX: 0, padY: 16 })
  })

  test('boxes undo the letterbox, round to ints and carry category and model version', () => {
    const mapped = mapCandidates([{ x1: 16, y1: 24, x2: 32, y2: 40, score: 0.87654, classIndex: 0 }], { categories, modelName: '3.1', geometry })
    expect(mapped.box_detections).toEqual([
      { category_name: 'person', category_id: 'c-0', model_name: '3.1', confidence: 0.877, x: 50, y: 25, width: 50, height: 50 },
    ])
  })

  test('boxes are clamped to the image; boxes entirely in the padding vanish', () => {
    const mapped = mapCandidates([
      { x1: -4, y1: 10, x2: 8, y2: 20, score: 0.5, classIndex: 0 },
      { x1: 10, y1: 0, x2: 20, y2: 12, score: 0.5, classIndex: 0 },
    ], { categories, modelName: '1', geometry })
    expect(mapped.box_detections).toEqual([
      { category_name: 'person', category_id: 'c-0', model_name: '1', confidence: 0.5, x: 0, y: 0, width: 25, height: 13 },
    ])
  })

  test('point categories give the box centre, classification categories no geometry, unknown classes nothing', () => {
    const mapped = mapCandidates([
      { x1: 16, y1: 24, x2: 32, y2: 40, score: 0.6, classIndex: 1 },
      { x1: 16, y1: 24, x2: 32, y2: 40, score: 0.7, classIndex: 2 },
      { x1: 16, y1: 24, x2: 32, y2: 40, score: 0.8, classIndex: 7 },
    ], { categories, modelName: '1', geometry })
    expect(mapped.box_detections).toEqual([])
    expect(mapped.point_detections).toEqual([{ category_name: 'centre', category_id: 'c-1', model_name: '1', confidence: 0.6, x: 75, y: 50 }])
    expect(mapped.classification_detections).toEqual([{ category_name: 'scene', category_id: 'c-2', model_name: '1', confidence: 0.7 }])
  })

  test('stretch geometry scales each axis on its own', () => {
    const stretch = computeGeometry(200, 100, { width: 64, height: 64, resize: 'stretch' })
    const mapped = mapCandidates([{ x1: 16, y1: 16, x2: 32, y2: 48, score: 0.9, classIndex: 0 }], { categories, modelName: '1', geometry: stretch })
    expect(mapped.box_detections[0]).toMatchObject({ x: 50, y: 25, width: 50, height: 50 })
  })
})
