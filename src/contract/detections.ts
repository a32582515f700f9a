import { Type, type Static } from '@sinclair/typebox'
import { Nullable } from './schema-helpers.ts'

/** COCO pixel conventions: x to the right, y downwards. */
export const Point = Type.Object({ x: Type.Number(), y: Type.Number() }, { $id: 'Point' })
export type Point = Static<typeof Point>

export const Shape = Type.Object({ points: Type.Array(Point) }, { $id: 'Shape' })
export type Shape = Static<typeof Shape>

const detectionFields = {
  category_name: Type.String(),
  /** the model version that produced it, by convention */
  model_name: Type.String(),
  /** 0–1 from detectors; percent (0–100) from the yolov5 trainer's post-training detections (§6.3) */
  confidence: Type.Number(),
  category_id: Nullable(Type.String()),
}

export const BoxDetection = Type.Object({
  ...detectionFields,
  x: Type.Integer({ description: 'left edge in pixels' }),
  y: Type.Integer({ description: 'top edge in pixels' }),
  width: Type.Integer(),
  height: Type.Integer(),
}, { $id: 'BoxDetection' })
export type BoxDetection = Static<typeof BoxDetection>

export const PointDetection = Type.Object({
  ...detectionFields,
  x: Type.Number({ description: 'centre x in pixels' }),
  y: Type.Number({ description: 'centre y in pixels' }),
}, { $id: 'PointDetection' })
export type PointDetection = Static<typeof PointDetection>

export const SegmentationDetection = Type.Object({
  ...detectionFields,
  /** a Shape, or the flat `"x1,y1,x2,y2,…"` string detectors return (§6.5) */
  shape: Type.Union([Shape, Type.String()]),
}, { $id: 'SegmentationDetection' })
export type SegmentationDetection = Static<typeof SegmentationDetection>

export const ClassificationDetection = Type.Object(detectionFields, { $id: 'ClassificationDetection' })
export type ClassificationDetection = Static<typeof ClassificationDetection>

const detectionLists = {
  box_detections: Type.Optional(Type.Array(BoxDetection, { default: [] })),
  point_detections: Type.Optional(Type.Array(PointDetection, { default: [] })),
  segmentation_detections: Type.Optional(Type.Array(SegmentationDetection, { default: [] })),
  classification_detections: Type.Optional(Type.Array(ClassificationDetection, { default: [] })),
}
export { detectionLists }

/** The trainer's upload unit (§6.3, REST #9). */
export const Detections = Type.Object({
  ...detectionLists,
  image_id: Nullable(Type.String()),
}, { $id: 'Detections' })
export type Detections = Static<typeof Detections>

type DetectionListHolder = {
  box_detections?: unknown[]; point_detections?: unknown[]
  segmentation_detections?: unknown[]; classification_detections?: unknown[]
}
/** Number of detections of every kind (upstream `len(Detections)` / `len(ImageMetadata)`). */
export function countDetections(d: DetectionListHolder): number {
  return (d.box_detections?.length ?? 0) + (d.point_detections?.length ?? 0) +
    (d.segmentation_detections?.length ?? 0) + (d.classification_detections?.length ?? 0)
}
