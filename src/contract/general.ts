import { Type, type Static } from '@sinclair/typebox'
import { CategoryTypeSchema, NodeStateSchema } from './enums.ts'
import { Nullable } from './schema-helpers.ts'

export const Category = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  hotkey: Nullable(Type.String()),
  color: Nullable(Type.String()),
  /** uncertainty radius in pixels for point categories */
  point_size: Nullable(Type.Integer()),
  // upstream types this `CategoryType | str`, so any string is accepted
  type: Nullable(Type.Union([CategoryTypeSchema, Type.String()])),
}, { $id: 'Category' })
export type Category = Static<typeof Category>

export const Context = Type.Object({
  organization: Type.String(),
  project: Type.String(),
}, { $id: 'Context' })
export type Context = Static<typeof Context>

export const ErrorConfiguration = Type.Object({
  begin_training: Type.Optional(Type.Boolean({ default: false })),
  save_model: Type.Optional(Type.Boolean({ default: false })),
  get_new_model: Type.Optional(Type.Boolean({ default: false })),
  crash_training: Type.Optional(Type.Boolean({ default: false })),
}, { $id: 'ErrorConfiguration' })
export type ErrorConfiguration = Static<typeof ErrorConfiguration>

const nodeStatusFields = {
  id: Type.String(),
  name: Type.String(),
  state: Type.Optional(Type.Union([NodeStateSchema, Type.String()], { default: 'online' })),
  uptime: Type.Optional(Type.Number({ default: 0 })),
  errors: Type.Optional(Type.Record(Type.String(), Type.String(), { default: {} })),
  capabilities: Type.Optional(Type.Array(Type.String(), { default: [] })),
}
export const NodeStatus = Type.Object(nodeStatusFields, { $id: 'NodeStatus' })
export type NodeStatus = Static<typeof NodeStatus>
export const AnnotationNodeStatus = Type.Object(nodeStatusFields, { $id: 'AnnotationNodeStatus' })
export type AnnotationNodeStatus = Static<typeof AnnotationNodeStatus>

export const PretrainedModel = Type.Object({
  name: Type.String(),
  label: Type.String(),
  description: Type.String(),
}, { $id: 'PretrainedModel' })
export type PretrainedModel = Static<typeof PretrainedModel>
