import { Type, type Static } from '@sinclair/typebox'
import { AutouploadModeSchema } from './enums.ts'
import { Nullable } from './schema-helpers.ts'

/** A raw array as python clients send it: C-order bytes reinterpreted with `dtype`, then reshaped (§5.5). */
export const RawImageArray = Type.Object({
  bytes: Type.Uint8Array(),
  dtype: Type.String(),
  shape: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 2, maxItems: 3 }),
}, { $id: 'RawImageArray' })
export type RawImageArray = Static<typeof RawImageArray>

/** Either a raw array or encoded JPEG/PNG bytes. */
export const SocketImage = Type.Union([RawImageArray, Type.Uint8Array()])

const detectOptions = {
  camera_id: Nullable(Type.String()),
  tags: Type.Optional(Type.Array(Type.String(), { default: [] })),
  source: Nullable(Type.String()),
  autoupload: Type.Optional(Type.Union([AutouploadModeSchema], { default: 'filtered' })),
  creation_date: Nullable(Type.String()),
}

export const DetectRequest = Type.Object({ image: SocketImage, ...detectOptions }, { $id: 'DetectRequest' })
export type DetectRequest = Static<typeof DetectRequest>

export const BatchDetectRequest = Type.Object({ images: Type.Array(SocketImage, { minItems: 1 }), ...detectOptions }, { $id: 'BatchDetectRequest' })
export type BatchDetectRequest = Static<typeof BatchDetectRequest>

export const UploadRequest = Type.Object({
  image: SocketImage,
  metadata: Nullable(Type.Record(Type.String(), Type.Unknown())),
  upload_priority: Type.Optional(Type.Boolean({ default: false })),
}, { $id: 'UploadRequest' })
export type UploadRequest = Static<typeof UploadRequest>
