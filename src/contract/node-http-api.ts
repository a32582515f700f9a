import { Type, type Static } from '@sinclair/typebox'
import { CameraStatus } from './camera.ts'
import { ConversionRecord } from './converter-ledger.ts'
import { InferenceInfo } from './detector-status.ts'
import { OperationModeSchema, OutboxModeSchema } from './enums.ts'
import { ImageMetadata } from './image-metadata.ts'
import { OrNull, StringEnum } from './schema-helpers.ts'

/**
 * The HTTP shapes of the nodes' own REST APIs beyond §7.3's contract types (AboutResponse, ImageMetadata, …):
 * the generic routes every node serves (§3.4), the detector's text bodies and status page data, the trainer's
 * backdoor and the converter's status. The routes document themselves with these (`/openapi.json`).
 */

/** `GET /health`. */
export const HealthAnswer = Type.Object({ status: Type.Literal('ok'), uptime_seconds: Type.Number() }, { $id: 'HealthAnswer' })

/** `GET /ready`: 200 when ready, 503 with the reason otherwise. */
export const ReadyAnswer = Type.Object({ ready: Type.Literal(true) }, { $id: 'ReadyAnswer' })
export const NotReadyAnswer = Type.Object({ ready: Type.Literal(false), reason: Type.String() }, { $id: 'NotReadyAnswer' })

/** The raw body of `PUT /debug_logging` and `PUT /socketio` (§3.4), bare or as a JSON string; answered with the state. */
export const OnOff = StringEnum(['on', 'off'])

/** What the detector's setting routes answer (upstream's FastAPI answered the string "OK"). */
export const OkText = Type.Literal('OK')

/** `POST /upload` answers the pair upstream's handler returned: `[200, "OK"]`. */
export const UploadAnswer = Type.Tuple([Type.Literal(200), Type.Literal('OK')], { $id: 'UploadAnswer' })

/** The raw body of `PUT /model_version` (§7.3). */
export const VersionModeBody = Type.String({ description: 'follow_loop, pause, or a model version such as 1.3', pattern: '^(follow_loop|pause|\\d+(\\.\\d+)*)$' })
/** The raw body of `PUT /outbox_mode`, bare or as a JSON string. */
export const OutboxModeBody = OutboxModeSchema
/** The raw body of `PUT /operation_mode`, bare or as a JSON string. */
export const OperationModeBody = OperationModeSchema

/** The options of `POST /detect`, as query parameters or headers (`-` and `_` spellings both work). */
export const DetectRequestOptions = Type.Object({
  camera_id: Type.Optional(Type.String({ description: 'the camera (also `mac`); the relevance filter keeps one history per camera' })),
  tags: Type.Optional(Type.String({ description: 'comma-separated tags for an uploaded image' })),
  source: Type.Optional(Type.String({ description: 'where the image came from; stored with an upload' })),
  autoupload: Type.Optional(StringEnum(['filtered', 'all', 'disabled'])),
  creation_date: Type.Optional(Type.String({ description: 'ISO 8601 or YYYY-MM-DD_HH:MM:SS.mmm; the image\'s creation time' })),
})

/** The options of `POST /upload`, as query parameters or headers. */
export const UploadRequestOptions = Type.Object({
  source: Type.Optional(Type.String()),
  creation_date: Type.Optional(Type.String({ description: 'ISO 8601 or YYYY-MM-DD_HH:MM:SS.mmm' })),
  upload_priority: Type.Optional(Type.String({ description: 'true: the images go to the priority queue' })),
})

/** `GET /status.json` of a detector: what its status page shows. */
export const DetectorStatusData = Type.Object({
  now: Type.Number({ description: 'epoch milliseconds' }),
  model: OrNull(Type.Object({ version: Type.String(), backend: Type.String(), categories: Type.Integer() })),
  /** inference workers × threads of the active model, and why (null for a custom logic without a pool) */
  inference: OrNull(InferenceInfo),
  operation_mode: OperationModeSchema,
  version_control: Type.String(),
  target_version: OrNull(Type.String()),
  outbox: Type.Object({
    mode: OutboxModeSchema, priority: Type.Integer(), normal: Type.Integer(), bytes: Type.Integer(),
    uploaded: Type.Integer(), rejected: Type.Integer(), dropped: Type.Integer(),
  }),
  last: OrNull(Type.Object({ metadata: ImageMetadata, at: Type.Number() })),
  cameras: Type.Array(CameraStatus),
}, { $id: 'DetectorStatusData' })
export type DetectorStatusData = Static<typeof DetectorStatusData>

/** The trainer backdoor's answers (§8.11). */
export const TrainerResetAnswer = Type.Object({ status: Type.Literal('reset') }, { $id: 'TrainerResetAnswer' })
export const TrainingProcessKilledAnswer = Type.Object({ status: Type.Literal('killed') }, { $id: 'TrainingProcessKilledAnswer' })
export const StatusSentAnswer = Type.Object({ sent: Type.Boolean({ description: 'whether the Loop accepted the status' }) }, { $id: 'StatusSentAnswer' })

/** One check of every project by a converter. */
export const ConverterCycleReport = Type.Object({
  started_at: Type.String(),
  projects: Type.Integer(),
  candidates: Type.Integer(),
  converted: Type.Array(Type.String()),
  failed: Type.Array(Type.Object({ model: Type.String(), error: Type.String() })),
  /** failed models waiting for their retry time */
  waiting: Type.Integer(),
  /** models given up on (the ledger keeps them skipped) */
  skipped: Type.Integer(),
  /** the cycle itself failed (e.g. the Loop was unreachable) */
  error: OrNull(Type.String()),
}, { $id: 'ConverterCycleReport' })
export type ConverterCycleReport = Static<typeof ConverterCycleReport>

/** `GET /status` of a converter. */
export const ConverterStatusReport = Type.Object({
  id: Type.String(),
  name: Type.String(),
  source_format: Type.String(),
  target_format: Type.String(),
  errors: Type.Record(Type.String(), Type.String()),
  last_cycle: OrNull(ConverterCycleReport),
  converted: Type.Integer(),
  failed: Type.Array(ConversionRecord),
  skipped: Type.Array(ConversionRecord),
}, { $id: 'ConverterStatusReport' })
export type ConverterStatusReport = Static<typeof ConverterStatusReport>
