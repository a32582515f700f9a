import { Type, type Static } from '@sinclair/typebox'
import { ModelInformation } from './model-information.ts'
import { Nullable } from './schema-helpers.ts'

/** POST body of `…/detectors` (§4 #12). */
export const DetectorStatus = Type.Object({
  uuid: Type.String(),
  name: Type.String(),
  state: Type.String({ default: 'online' }),
  uptime: Type.Integer(),
  model_format: Type.String(),
  current_model: Nullable(Type.String()),
  target_model: Nullable(Type.String()),
  errors: Type.Record(Type.String(), Type.String()),
  operation_mode: Type.String(),
}, { $id: 'DetectorStatus' })
export type DetectorStatus = Static<typeof DetectorStatus>

/** Ours, not upstream's: how the active model is served (inference workers × threads, and why). */
export const InferenceInfo = Type.Object({
  backend: Type.String(),
  workers: Type.Integer(),
  live_workers: Type.Integer(),
  threads_per_worker: Type.Integer(),
  usable_cores: Type.Integer(),
  reason: Type.String(),
  /** the threads the model was timed with at load, and its fastest session run then (null when it could not be timed) */
  measured_threads: Nullable(Type.Integer()),
  measured_run_ms: Nullable(Type.Number()),
  /** the same on one thread, when the load compared them */
  single_thread_run_ms: Nullable(Type.Number()),
}, { $id: 'InferenceInfo' })
export type InferenceInfo = Static<typeof InferenceInfo>

export const AboutResponse = Type.Object({
  operation_mode: Type.String(),
  state: Nullable(Type.String()),
  model_info: Nullable(ModelInformation),
  target_model: Nullable(Type.String()),
  version_control: Type.String(),
  /** an addition to upstream's shape (clients ignore unknown fields); absent for a custom logic without a pool */
  inference: Type.Optional(InferenceInfo),
}, { $id: 'AboutResponse' })
export type AboutResponse = Static<typeof AboutResponse>

/** Unknown versions are the string "None", not null (upstream contract). */
export const ModelVersionResponse = Type.Object({
  current_version: Type.String(),
  target_version: Type.String(),
  loop_version: Type.String(),
  local_versions: Type.Array(Type.String()),
  version_control: Type.String(),
}, { $id: 'ModelVersionResponse' })
export type ModelVersionResponse = Static<typeof ModelVersionResponse>
