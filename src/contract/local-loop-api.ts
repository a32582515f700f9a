import { Type, type Static } from '@sinclair/typebox'
import { Category } from './general.ts'
import { ImageMetadata } from './image-metadata.ts'
import { IMAGE_STATES } from './enums.ts'
import { ProjectGeneratorRequest } from './loop-api.ts'
import { Nullable, StringEnum } from './schema-helpers.ts'

/**
 * Shapes the embedded local Loop (src/local-loop) reads from the wire beyond §4's node-facing ones:
 * login form, upload metadata extras, the uploaded model.json, and its admin API.
 */

/** The longest wait a timer can hold (2³¹−1 ms, about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647

/** States an image can have in the local Loop; `trash` is what rosys uploads for "do not use" (§13). */
export const LOOP_IMAGE_STATES = [...IMAGE_STATES, 'trash'] as const
export type LoopImageState = (typeof LOOP_IMAGE_STATES)[number]
export const LoopImageStateSchema = StringEnum(LOOP_IMAGE_STATES)

/** `POST /api/login` form (§3.5). Missing fields are empty strings, as upstream nodes send them when unset. */
export const LoginForm = Type.Object({
  username: Type.Optional(Type.String({ default: '' })),
  password: Type.Optional(Type.String({ default: '' })),
}, { $id: 'LoginForm' })
export type LoginForm = Static<typeof LoginForm>

/** The `image_<id>.json` of an upload item (§4 #13): ImageMetadata plus the keys rosys sends (`state`, `creation_date`). */
export const UploadImageMetadata = Type.Object({
  ...ImageMetadata.properties,
  state: Nullable(LoopImageStateSchema),
  creation_date: Nullable(Type.String()),
  camera_id: Nullable(Type.String({ maxLength: 200 })),
}, { $id: 'UploadImageMetadata' })
export type UploadImageMetadata = Static<typeof UploadImageMetadata>

/** The `model.json` part of a model upload (§8.8): trainers send at least `{categories}`; other keys are kept. */
export const UploadedModelJson = Type.Object({
  categories: Type.Optional(Type.Array(Category, { default: [] })),
  resolution: Nullable(Type.Integer()),
}, { $id: 'UploadedModelJson' })
export type UploadedModelJson = Static<typeof UploadedModelJson>

/** `POST /admin/projects`: the generator request (§4 T2) plus the organization and a seed for the drawings. */
export const AdminCreateProjectRequest = Type.Object({
  ...ProjectGeneratorRequest.properties,
  organization: Type.Optional(Type.String({ minLength: 1, default: 'local' })),
  seed: Nullable(Type.Integer()),
}, { $id: 'AdminCreateProjectRequest' })
export type AdminCreateProjectRequest = Static<typeof AdminCreateProjectRequest>

/** `PUT /admin/projects/<org>/<project>/deployment-target`: a model id or a version. */
export const AdminDeploymentTargetRequest = Type.Object({
  model_id: Nullable(Type.String({ minLength: 1 })),
  version: Nullable(Type.String({ minLength: 1 })),
}, { $id: 'AdminDeploymentTargetRequest' })
export type AdminDeploymentTargetRequest = Static<typeof AdminDeploymentTargetRequest>

/** `POST /admin/projects/<org>/<project>/trainings`: begin a training on a connected trainer (§5.2). */
export const AdminStartTrainingRequest = Type.Object({
  /** socket id, node uuid or node name of a connected trainer */
  node: Type.String({ minLength: 1 }),
  model_variant: Type.Optional(Type.String({ default: '' })),
  hyperparameters: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { default: {} })),
  base_model_uuid: Nullable(Type.String()),
  timeout_ms: Nullable(Type.Integer({ minimum: 1, maximum: MAX_TIMER_MS })),
}, { $id: 'AdminStartTrainingRequest' })
export type AdminStartTrainingRequest = Static<typeof AdminStartTrainingRequest>

/** `POST /admin/nodes/<node>/emit`: any Loop → node event, answered with the node's ack. */
export const AdminEmitRequest = Type.Object({
  event: Type.String({ minLength: 1 }),
  args: Type.Optional(Type.Array(Type.Unknown(), { default: [] })),
  timeout_ms: Nullable(Type.Integer({ minimum: 1, maximum: MAX_TIMER_MS })),
}, { $id: 'AdminEmitRequest' })
export type AdminEmitRequest = Static<typeof AdminEmitRequest>

/** `PUT /admin/rate-limit`: requests per second per client and bucket size; null switches limiting off. */
export const AdminRateLimitRequest = Type.Object({
  per_second: Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.Null()]),
  burst: Nullable(Type.Integer({ minimum: 1 })),
}, { $id: 'AdminRateLimitRequest' })
export type AdminRateLimitRequest = Static<typeof AdminRateLimitRequest>
