import { Type, type Static } from '@sinclair/typebox'
import { AnnotationEventTypeSchema } from './enums.ts'
import { Category, Context } from './general.ts'
import { Point, Shape } from './detections.ts'
import { Nullable } from './schema-helpers.ts'

export const AnnotationData = Type.Object({
  coordinate: Point,
  event_type: Type.Union([AnnotationEventTypeSchema, Type.String()]),
  context: Context,
  image_uuid: Type.String(),
  category: Category,
  key_up: Nullable(Type.String()),
  key_down: Nullable(Type.String()),
  epsilon: Nullable(Type.Number()),
  is_shift_key_pressed: Nullable(Type.Boolean()),
}, { $id: 'AnnotationData' })
export type AnnotationData = Static<typeof AnnotationData>

export const UserInput = Type.Object({
  frontend_id: Type.String(),
  data: AnnotationData,
}, { $id: 'UserInput' })
export type UserInput = Static<typeof UserInput>

export const SegmentationAnnotation = Type.Object({
  id: Type.String(),
  shape: Shape,
  image_id: Type.String(),
  category_id: Type.String(),
}, { $id: 'SegmentationAnnotation' })
export type SegmentationAnnotation = Static<typeof SegmentationAnnotation>

export const ToolOutput = Type.Object({
  svg: Type.String(),
  annotation: Nullable(SegmentationAnnotation),
}, { $id: 'ToolOutput' })
export type ToolOutput = Static<typeof ToolOutput>
