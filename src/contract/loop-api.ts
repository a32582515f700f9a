import { Type, type Static } from '@sinclair/typebox'
import { Category } from './general.ts'
import { Nullable } from './schema-helpers.ts'

/** `GET …/data` (§4 #4). */
export const ImageIdsResponse = Type.Object({ image_ids: Type.Array(Type.String()) }, { $id: 'ImageIdsResponse' })
export type ImageIdsResponse = Static<typeof ImageIdsResponse>

/** `GET …/deployment/target` (§4 #10). */
export const DeploymentTarget = Type.Object({
  model_uuid: Type.String(),
  version: Type.String(),
}, { $id: 'DeploymentTarget' })
export type DeploymentTarget = Static<typeof DeploymentTarget>

/** One entry of `GET …/models` (§4 #11). */
export const LoopModel = Type.Object({
  id: Type.String(),
  version: Type.String(),
  formats: Type.Array(Type.String()),
  created: Nullable(Type.String()),
  comment: Nullable(Type.String()),
  host: Nullable(Type.String()),
}, { $id: 'LoopModel' })
export type LoopModel = Static<typeof LoopModel>

export const LoopModelsResponse = Type.Object({ models: Type.Array(LoopModel) }, { $id: 'LoopModelsResponse' })
export type LoopModelsResponse = Static<typeof LoopModelsResponse>

/** `PUT …/trainings/{n}/models/latest/{format}/file` answer (§4 #8). */
export const ModelUploadResponse = Type.Object({ id: Type.String() }, { $id: 'ModelUploadResponse' })
export type ModelUploadResponse = Static<typeof ModelUploadResponse>

/** `GET /api/projects` (§9, converter). */
export const ProjectsResponse = Type.Object({
  projects: Type.Array(Type.Object({
    organization_id: Type.String(),
    project_id: Type.String(),
    resource: Type.String(),
  })),
}, { $id: 'ProjectsResponse' })
export type ProjectsResponse = Static<typeof ProjectsResponse>

/** `GET /api<resource>` (§9): the project with its categories. */
export const ProjectInfo = Type.Object({
  categories: Type.Optional(Type.Array(Category, { default: [] })),
}, { $id: 'ProjectInfo' })
export type ProjectInfo = Static<typeof ProjectInfo>

/** `POST /zauberzeug/projects/generator` (§4 T2). */
export const ProjectGeneratorRequest = Type.Object({
  project_name: Type.String({ minLength: 1 }),
  inbox: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  annotate: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  review: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  complete: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  image_style: Type.Optional(Type.Union([Type.Literal('beautiful'), Type.Literal('plain')], { default: 'plain' })),
  box_categories: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  point_categories: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  segmentation_categories: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  classification_categories: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  thumbs: Type.Optional(Type.Boolean({ default: false })),
  tags: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  trainings: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  box_detections: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  box_annotations: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
}, { $id: 'ProjectGeneratorRequest' })
export type ProjectGeneratorRequest = Static<typeof ProjectGeneratorRequest>
