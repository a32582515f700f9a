import { Type, type Static } from '@sinclair/typebox'
import { StringEnum } from './schema-helpers.ts'

export const CONVERSION_OUTCOMES = ['converted', 'failed', 'skipped'] as const

/** One model in the converter's ledger. */
export const ConversionRecord = Type.Object({
  organization: Type.String(),
  project: Type.String(),
  model_id: Type.String(),
  version: Type.String(),
  /** converted: uploaded; failed: will be retried at `next_attempt_at`; skipped: given up (see `last_error`) */
  outcome: StringEnum(CONVERSION_OUTCOMES),
  attempts: Type.Integer({ minimum: 0 }),
  last_error: Type.Union([Type.String(), Type.Null()], { default: null }),
  /** epoch milliseconds */
  updated_at: Type.Number(),
  next_attempt_at: Type.Union([Type.Number(), Type.Null()], { default: null }),
}, { $id: 'ConversionRecord' })
export type ConversionRecord = Static<typeof ConversionRecord>

/**
 * `<data>/converter/<source>-to-<target>.json`: what a converter node did per model, so a restart neither
 * converts a model again nor forgets that one kept failing (upstream kept its bad ids in memory only).
 */
export const ConversionLedgerFile = Type.Object({
  source_format: Type.String(),
  target_format: Type.String(),
  /** by `<organization>/<project>/<model_id>` */
  models: Type.Record(Type.String(), ConversionRecord, { default: {} }),
}, { $id: 'ConversionLedgerFile' })
export type ConversionLedgerFile = Static<typeof ConversionLedgerFile>
