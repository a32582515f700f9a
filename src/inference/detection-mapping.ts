/**
 * Candidates in network-input pixels → §6.3 detections in source-image pixels: undo the letterbox or
 * stretch, clamp to the image, round boxes to integer top-left/size, attach category ids and names
 * (model.json order) and the model version as `model_name`. Pure.
 */
import type { BoxDetection, Category, ClassificationDetection, PointDetection } from '../contract/index.ts'
import type { ImageGeometry } from './image-preprocessing.ts'
import type { Candidate } from './non-max-suppression.ts'

export interface MappedDetections {
  box_detections: BoxDetection[]
  point_detections: PointDetection[]
  classification_detections: ClassificationDetection[]
}

const clamp = (value: number, low: number, high: number) => Math.min(high, Math.max(low, value))
/** Points keep a tenth of a pixel: enough for keypoints, no float noise in the JSON. */
const roundPoint = (value: number) => Math.round(value * 10) / 10
/** Confidences keep three decimals: finer digits are noise between backends and bloat every JSON. */
export const roundConfidence = (score: number) => Math.round(clamp(score, 0, 1) * 1000) / 1000

export function toSourceX(x: number, geometry: ImageGeometry): number {
  return clamp((x - geometry.padX) / geometry.scaleX, 0, geometry.sourceWidth)
}
export function toSourceY(y: number, geometry: ImageGeometry): number {
  return clamp((y - geometry.padY) / geometry.scaleY, 0, geometry.sourceHeight)
}

export interface MappingOptions {
  categories: Category[]
  modelName: string
  geometry: ImageGeometry
  /** BlazeFace: the categories that name keypoint k, in keypoint order */
  keypointCategories?: Category[]
}

/**
 * Box categories become BoxDetections; point categories become the box centre (as the upstream
 * yolov5 detectors do); classification categories become ClassificationDetections. A class index
 * without a category is skipped. Boxes that clamp to nothing are dropped.
 */
export function mapCandidates(candidates: Candidate[], options: MappingOptions): MappedDetections {
  const { categories, modelName, geometry } = options
  const out: MappedDetections = { box_detections: [], point_detections: [], classification_detections: [] }
  for (const candidate of candidates) {
    const category = categories[candidate.classIndex]
    if (!category) continue
    const confidence = roundConfidence(candidate.score)
    const left = toSourceX(candidate.x1, geometry)
    const top = toSourceY(candidate.y1, geometry)
    const right = toSourceX(candidate.x2, geometry)
    const bottom = toSourceY(candidate.y2, geometry)
    const base = { category_name: category.name, category_id: category.id, model_name: modelName, confidence }
    if (category.type === 'classification') {
      out.classification_detections.push(base)
      continue
    }
    if (category.type === 'point') {
      if (right > left && bottom > top) out.point_detections.push({ ...base, x: roundPoint((left + right) / 2), y: roundPoint((top + bottom) / 2) })
      continue
    }
    const x = Math.round(left)
    const y = Math.round(top)
    const width = Math.round(right) - x
    const height = Math.round(bottom) - y
    if (width <= 0 || height <= 0) continue
    out.box_detections.push({ ...base, x, y, width, height })
    const keypoints = candidate.keypoints
    if (!keypoints || !options.keypointCategories) continue
    options.keypointCategories.forEach((pointCategory, k) => {
      if (2 * k + 1 >= keypoints.length) return
      out.point_detections.push({
        category_name: pointCategory.name, category_id: pointCategory.id, model_name: modelName, confidence,
        x: roundPoint(toSourceX(keypoints[2 * k]!, geometry)),
        y: roundPoint(toSourceY(keypoints[2 * k + 1]!, geometry)),
      })
    })
  }
  return out
}
