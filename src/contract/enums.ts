import { StringEnum } from './schema-helpers.ts'

export const CATEGORY_TYPES = ['box', 'point', 'segmentation', 'classification'] as const
export const VERSION_MODES = ['follow_loop', 'specific_version', 'pause'] as const
export const OPERATION_MODES = ['startup', 'idle', 'detecting'] as const
export const OUTBOX_MODES = ['continuous_upload', 'stopped'] as const
export const ANNOTATION_EVENT_TYPES = [
  'left_mouse_down', 'right_mouse_down', 'mouse_move', 'left_mouse_up', 'right_mouse_up', 'key_up', 'key_down',
] as const
export const NODE_STATES = ['idle', 'offline', 'online', 'preparing', 'running', 'stopping', 'detecting', 'uploading'] as const
/** In the order a training passes through them (§8.4); `idle` means no training. */
export const TRAINER_STATES = [
  'idle', 'initialized', 'preparing', 'data_downloading', 'data_downloaded', 'train_model_downloading',
  'train_model_downloaded', 'running', 'training_finished', 'confusion_matrix_syncing', 'confusion_matrix_synced',
  'train_model_uploading', 'train_model_uploaded', 'detecting', 'detected', 'detection_uploading', 'ready_for_cleanup',
] as const
export const AUTOUPLOAD_MODES = ['filtered', 'all', 'disabled'] as const
export const IMAGE_STATES = ['inbox', 'annotate', 'review', 'complete'] as const

export type CategoryType = (typeof CATEGORY_TYPES)[number]
export type VersionMode = (typeof VERSION_MODES)[number]
export type OperationMode = (typeof OPERATION_MODES)[number]
export type OutboxMode = (typeof OUTBOX_MODES)[number]
export type AnnotationEventType = (typeof ANNOTATION_EVENT_TYPES)[number]
export type NodeState = (typeof NODE_STATES)[number]
export type TrainerState = (typeof TRAINER_STATES)[number]
export type AutouploadMode = (typeof AUTOUPLOAD_MODES)[number]
export type ImageState = (typeof IMAGE_STATES)[number]

export const CategoryTypeSchema = StringEnum(CATEGORY_TYPES)
export const VersionModeSchema = StringEnum(VERSION_MODES)
export const OperationModeSchema = StringEnum(OPERATION_MODES)
export const OutboxModeSchema = StringEnum(OUTBOX_MODES)
export const AnnotationEventTypeSchema = StringEnum(ANNOTATION_EVENT_TYPES)
export const NodeStateSchema = StringEnum(NODE_STATES)
export const TrainerStateSchema = StringEnum(TRAINER_STATES)
export const AutouploadModeSchema = StringEnum(AUTOUPLOAD_MODES)
export const ImageStateSchema = StringEnum(IMAGE_STATES)

/** True when `value` is one of `values`; narrows the type. */
export function isOneOf<const T extends readonly string[]>(values: T, value: unknown): value is T[number] {
  return typeof value === 'string' && (values as readonly string[]).includes(value)
}
