/**
 * Raw YOLO outputs → candidates in network-input pixels. Two layouts exist:
 * - YOLOv5: `[1, N, 5 + C]`, each row `cx, cy, w, h, objectness, class scores…` (score = obj × class);
 * - YOLOv8/v11: `[1, 4 + C, N]`, attribute-major, `cx, cy, w, h, class scores…` (score = class).
 * Which one is told from the shape (and the class count when known). Pure.
 */
import type { Candidate } from './non-max-suppression.ts'

export type YoloLayout = 'yolov5' | 'yolov8'

export interface YoloShape {
  layout: YoloLayout
  boxes: number
  classes: number
}

/**
 * Interprets an output shape. A known `classCount` settles ambiguous shapes; otherwise the smaller
 * axis holds the attributes (real models have thousands of boxes and at most a few hundred classes).
 */
export function detectYoloLayout(dims: readonly number[], classCount?: number, forced?: YoloLayout): YoloShape {
  const core = dims.length === 3 && dims[0] === 1 ? dims.slice(1) : dims
  if (core.length !== 2 || !core.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`a YOLO output must be [1, rows, columns]; this model outputs [${dims.join(', ')}]`)
  }
  const [rows, columns] = core as [number, number]
  const asV5: YoloShape = { layout: 'yolov5', boxes: rows, classes: columns - 5 }
  const asV8: YoloShape = { layout: 'yolov8', boxes: columns, classes: rows - 4 }
  let shape: YoloShape
  if (forced) shape = forced === 'yolov5' ? asV5 : asV8
  else if (classCount && columns === classCount + 5 && rows !== classCount + 4) shape = asV5
  else if (classCount && rows === classCount + 4 && columns !== classCount + 5) shape = asV8
  else {
    shape = rows < columns ? asV8 : asV5
    // tiny grids can have fewer boxes than attributes; take the reading that leaves class scores
    const other = shape === asV8 ? asV5 : asV8
    if (shape.classes < 1 && other.classes >= 1) shape = other
  }
  if (shape.classes < 1) throw new Error(`output [${dims.join(', ')}] leaves no class scores for the ${shape.layout} layout`)
  return shape
}

/** Candidates scoring at least `confidenceThreshold`, best class per box, corner form. */
export function decodeYoloOutput(data: Float32Array, shape: YoloShape, confidenceThreshold: number, maxCandidates = 30_000): Candidate[] {
  const { layout, boxes, classes } = shape
  const candidates: Candidate[] = []
  if (layout === 'yolov8') {
    // attribute-major: attribute a of box i is at a * boxes + i
    const scores = new Float32Array(boxes)
    const best = new Int32Array(boxes)
    for (let c = 0; c < classes; c++) {
      const base = (4 + c) * boxes
      for (let i = 0; i < boxes; i++) {
        const s = data[base + i]!
        if (s > scores[i]!) { scores[i] = s; best[i] = c }
      }
    }
    for (let i = 0; i < boxes; i++) {
      const score = scores[i]!
      if (score < confidenceThreshold || score <= 0) continue
      const cx = data[i]!, cy = data[boxes + i]!, w = data[2 * boxes + i]!, h = data[3 * boxes + i]!
      candidates.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, classIndex: best[i]! })
    }
  } else {
    const stride = classes + 5
    for (let i = 0; i < boxes; i++) {
      const row = i * stride
      const objectness = data[row + 4]!
      if (objectness < confidenceThreshold) continue // obj × class can only be smaller
      let bestClass = 0
      let bestScore = -Infinity
      for (let c = 0; c < classes; c++) {
        const s = data[row + 5 + c]!
        if (s > bestScore) { bestScore = s; bestClass = c }
      }
      const score = objectness * bestScore
      if (score < confidenceThreshold || score <= 0) continue
      const cx = data[row]!, cy = data[row + 1]!, w = data[row + 2]!, h = data[row + 3]!
      candidates.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, classIndex: bestClass })
    }
  }
  if (candidates.length > maxCandidates) {
    candidates.sort((a, b) => b.score - a.score)
    candidates.length = maxCandidates
  }
  return candidates
}
