import { Type, type Static } from '@sinclair/typebox'
import { Category } from './general.ts'
import { Nullable } from './schema-helpers.ts'

/** `model.json` (§6.4). Extra keys the Loop adds (e.g. `format`) are tolerated. */
export const ModelInformation = Type.Object({
  id: Type.String(),
  /** required key, may be null */
  host: Type.Union([Type.String(), Type.Null()]),
  organization: Type.String(),
  project: Type.String(),
  version: Type.String(),
  /** in model class-index order */
  categories: Type.Optional(Type.Array(Category, { default: [] })),
  /** square input size */
  resolution: Nullable(Type.Integer()),
  /** set on load to the absolute model folder; removed when saving */
  model_root_path: Nullable(Type.String()),
  model_size: Nullable(Type.String()),
}, { $id: 'ModelInformation' })
export type ModelInformation = Static<typeof ModelInformation>
