import { Type, type Static } from '@sinclair/typebox'
import { OutboxModeSchema } from './enums.ts'

/**
 * `<data>/outbox/mode.json`: the outbox mode chosen through PUT /outbox_mode, kept across restarts
 * (upstream always started in continuous_upload).
 */
export const OutboxModeFile = Type.Object({
  mode: OutboxModeSchema,
  /** when it was set, ISO 8601; informational */
  changed_at: Type.Optional(Type.String()),
}, { $id: 'OutboxModeFile' })
export type OutboxModeFile = Static<typeof OutboxModeFile>

/** `<data>/outbox/rejected/<id>/reason.json`: why an item was taken out of the upload queue. */
export const OutboxRejection = Type.Object({
  reason: Type.String(),
  detail: Type.String(),
  queue: Type.String(),
  rejected_at: Type.String(),
}, { $id: 'OutboxRejection' })
export type OutboxRejection = Static<typeof OutboxRejection>
