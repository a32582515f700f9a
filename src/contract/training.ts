import { Type, type Static } from '@sinclair/typebox'
import { Category, Context, PretrainedModel } from './general.ts'
import { TrainerStateSchema } from './enums.ts'
import { Nullable } from './schema-helpers.ts'

const Hyperparameters = Type.Record(Type.String(), Type.Unknown())

/** Image data as the Loop returns it from `GET …/images?ids=` (§4 #5); only the fields nodes use are named. */
export const ImageData = Type.Object({
  id: Type.String(),
  set: Nullable(Type.String()),
  width: Nullable(Type.Integer()),
  height: Nullable(Type.Integer()),
  box_annotations: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()), { default: [] })),
  point_annotations: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()), { default: [] })),
}, { $id: 'ImageData' })
export type ImageData = Static<typeof ImageData>

/** The persisted training, `last_training__<node-uuid>.json` (§6.7). */
export const Training = Type.Object({
  id: Type.String(),
  context: Context,
  project_folder: Type.String(),
  images_folder: Type.String(),
  training_folder: Type.String(),
  categories: Type.Array(Category),
  hyperparameters: Hyperparameters,
  training_number: Type.Integer(),
  training_state: Type.Union([TrainerStateSchema, Type.String()]),
  model_variant: Type.String(),
  /** epoch seconds at creation */
  start_time: Type.Number(),
  base_model_uuid: Nullable(Type.String()),
  image_data: Nullable(Type.Array(ImageData)),
  skipped_image_count: Nullable(Type.Integer()),
  model_uuid_for_detecting: Nullable(Type.String()),
}, { $id: 'Training' })
export type Training = Static<typeof Training>

/** What `begin_training` carries (§5.2). An `id` may be sent but the node makes its own. */
export const BeginTrainingDetails = Type.Object({
  categories: Type.Array(Category),
  hyperparameters: Hyperparameters,
  training_number: Type.Integer(),
  model_variant: Type.String(),
  base_model_uuid: Nullable(Type.String()),
}, { $id: 'BeginTrainingDetails' })
export type BeginTrainingDetails = Static<typeof BeginTrainingDetails>

export const ConfusionCounts = Type.Object({ tp: Type.Number(), fp: Type.Number(), fn: Type.Number() })

export const TrainingStateData = Type.Object({
  /** per category uuid */
  confusion_matrix: Type.Optional(Type.Record(Type.String(), ConfusionCounts, { default: {} })),
  meta_information: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { default: {} })),
  epoch: Nullable(Type.Integer()),
}, { $id: 'TrainingStateData' })
export type TrainingStateData = Static<typeof TrainingStateData>

/** Sent with `update_training` (§6.7). */
export const TrainingOut = Type.Object({
  trainer_id: Type.String(),
  trainer_name: Nullable(Type.String()),
  confusion_matrix: Nullable(Type.Record(Type.String(), ConfusionCounts)),
  train_image_count: Nullable(Type.Integer()),
  test_image_count: Nullable(Type.Integer()),
  hyperparameters: Nullable(Hyperparameters),
  best_epoch: Nullable(Type.Integer()),
}, { $id: 'TrainingOut' })
export type TrainingOut = Static<typeof TrainingOut>

/** Sent with `update_trainer` every cycle (§6.7). */
export const TrainingStatus = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: Nullable(Type.String()),
  uptime: Nullable(Type.Number()),
  errors: Nullable(Type.Record(Type.String(), Type.String())),
  progress: Nullable(Type.Number()),
  pretrained_models: Type.Optional(Type.Array(PretrainedModel, { default: [] })),
  architecture: Nullable(Type.String()),
  context: Nullable(Context),
}, { $id: 'TrainingStatus' })
export type TrainingStatus = Static<typeof TrainingStatus>
