import { Type, type Static } from '@sinclair/typebox'
import { detectionLists } from './detections.ts'
import { Nullable } from './schema-helpers.ts'

const annotationFields = { category_name: Type.String(), category_id: Nullable(Type.String()) }

export const BoxAnnotation = Type.Object({
  ...annotationFields,
  x: Type.Integer(), y: Type.Integer(), width: Type.Integer(), height: Type.Integer(),
}, { $id: 'BoxAnnotation' })
export type BoxAnnotation = Static<typeof BoxAnnotation>

export const PointAnnotation = Type.Object({ ...annotationFields, x: Type.Number(), y: Type.Number() }, { $id: 'PointAnnotation' })
export type PointAnnotation = Static<typeof PointAnnotation>

export const ClassificationAnnotation = Type.Object(annotationFields, { $id: 'ClassificationAnnotation' })
export type ClassificationAnnotation = Static<typeof ClassificationAnnotation>

/** Detector result, outbox JSON and upload metadata (§6.5). */
export const ImageMetadata = Type.Object({
  ...detectionLists,
  box_annotations: Type.Optional(Type.Array(BoxAnnotation, { default: [] })),
  point_annotations: Type.Optional(Type.Array(PointAnnotation, { default: [] })),
  classification_annotation: Nullable(ClassificationAnnotation),
  tags: Type.Optional(Type.Array(Type.String(), { default: [] })),
  /** `YYYY-MM-DD_HH:MM:SS.mmm` local time, or the caller's creation_date, or null */
  created: Nullable(Type.String()),
  source: Nullable(Type.String()),
}, { $id: 'ImageMetadata' })
export type ImageMetadata = Static<typeof ImageMetadata>

export const ImagesMetadata = Type.Object({ items: Type.Array(ImageMetadata) }, { $id: 'ImagesMetadata' })
export type ImagesMetadata = Static<typeof ImagesMetadata>
