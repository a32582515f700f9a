import type { Server, Socket } from 'socket.io'
import { AUTOUPLOAD_MODES, ImageMetadata, decode, formatCreated, isCreationDate, isOneOf } from '../contract/index.ts'
import { ImageInputError } from '../inference/inference-errors.ts'
import type { ImageInput } from '../inference/image-decoding.ts'
import { RefusedEvent } from '../node/bounded-socket-parser.ts'
import { clipText, errorMessage, MAX_ERROR_ANSWER_CHARACTERS, quoteInput } from '../foundation/log.ts'
import type { DetectOptions } from './detection-service.ts'
import type { DetectorApi, RouteHost } from './detector-api.ts'

type Reply = (answer: unknown) => void
type Payload = Record<string, unknown>

/** Thrown for a payload that cannot be used; becomes `{error}`. */
class PayloadError extends Error {}

/**
 * An image as clients send it (§5.5): a raw array `{bytes, dtype, shape}` (python clients: numpy C order) or
 * encoded JPEG/PNG bytes. Anything else is refused with upstream's message plus the reason.
 */
export function imageFromPayload(value: unknown): ImageInput {
  if (value instanceof Uint8Array) return { kind: 'encoded', bytes: value }
  if (value instanceof ArrayBuffer) return { kind: 'encoded', bytes: new Uint8Array(value) }
  if (value && typeof value === 'object') {
    const { bytes, dtype, shape } = value as { bytes?: unknown; dtype?: unknown; shape?: unknown }
    const data = bytes instanceof Uint8Array ? bytes : bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : undefined
    if (data && typeof dtype === 'string' && Array.isArray(shape) && shape.every((n) => Number.isInteger(n) && n > 0)) {
      return { kind: 'raw', bytes: data, dtype, shape: shape as number[] }
    }
  }
  throw new PayloadError('could not parse image from data: expected {bytes, dtype, shape} or encoded JPEG/PNG bytes')
}

function detectOptionsOf(payload: Payload): DetectOptions {
  const autoupload = payload.autoupload ?? 'filtered'
  if (!isOneOf(AUTOUPLOAD_MODES, autoupload)) throw new PayloadError(`autoupload must be one of ${AUTOUPLOAD_MODES.join(', ')}, got ${quoteInput(autoupload)}`)
  const tags = payload.tags ?? []
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new PayloadError('tags must be a list of strings')
  const text = (key: string) => (typeof payload[key] === 'string' ? (payload[key] as string) : null)
  return { cameraId: text('camera_id'), tags, source: text('source'), autoupload, creationDate: checkedDate('creation_date', text('creation_date')) }
}

/** A date a client gives is kept only when it is one (as the REST routes check it): the Loop reads it as the image's date. */
function checkedDate(field: string, value: string | null): string | null {
  if (value !== null && !isCreationDate(value)) {
    throw new PayloadError(`${field} must be an ISO 8601 date such as 2026-11-28T10:00:00.123456 or the Loop's 2026-11-28_10:00:00.123456, got ${quoteInput(value)}`)
  }
  return value
}

function asPayload(data: unknown): Payload {
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new PayloadError('expected an object payload')
  return data as Payload
}

/**
 * Upload metadata from a client: ImageMetadata-shaped, extra keys kept (the Loop reads `state`), and rosys's
 * `creation_date` used as `created` when that is missing (upstream ignored it, §15.15).
 */
export function uploadMetadataOf(raw: unknown): ImageMetadata {
  if (raw === undefined || raw === null) return decode(ImageMetadata, { created: formatCreated() })
  const given = asPayload(raw)
  const date = (field: 'created' | 'creation_date') => checkedDate(`metadata.${field}`, typeof given[field] === 'string' ? given[field] : null)
  const created = date('created') ?? date('creation_date') ?? formatCreated()
  return decode(ImageMetadata, { ...given, created })
}

/** The socket.io API of §5.5. Every event answers; errors are `{error: msg}`, unknown events too. */
export function registerDetectorEvents(
  io: Server, detector: DetectorApi, host: RouteHost,
  /** more events (the cameras'), given the socket too */
  extra: Record<string, (data: unknown, socket: Socket) => Promise<unknown> | unknown> = {},
): void {
  // a Map: an event name from the client must never reach Object.prototype members (`constructor`, `__proto__` …)
  const handlers = new Map<string, (data: unknown, socket: Socket) => Promise<unknown> | unknown>(Object.entries({
    detect: async (data) => {
      const payload = asPayload(data)
      return detector.detect(imageFromPayload(payload.image), detectOptionsOf(payload), 'socket')
    },
    batch_detect: async (data) => {
      const payload = asPayload(data)
      if (!Array.isArray(payload.images) || payload.images.length === 0) throw new PayloadError('could not parse images from data: expected a non-empty list "images"')
      const images = payload.images.map(imageFromPayload)
      return { items: await detector.detectBatch(images, detectOptionsOf(payload), 'socket') }
    },
    upload: async (data) => {
      const payload = asPayload(data)
      await detector.upload(imageFromPayload(payload.image), uploadMetadataOf(payload.metadata), payload.upload_priority === true)
      return { status: 'OK' }
    },
    info: () => {
      const model = detector.about().model_info
      if (model) return model
      const updatingTo = detector.updatingTo()
      if (updatingTo) return { status: `Updating model to version ${updatingTo}` }
      return { status: 'No model loaded' }
    },
    about: () => detector.about(),
    get_model_version: () => detector.modelVersions(),
    set_model_version_mode: async (data) => {
      await detector.setVersionMode(data)
      return { status: 'OK' }
    },
    get_outbox_mode: () => ({ outbox_mode: detector.outboxMode() }),
    set_outbox_mode: async (data) => {
      if (typeof data !== 'string') throw new PayloadError(`expected a string: continuous_upload or stopped`)
      await detector.setOutboxMode(data)
      return { status: 'OK' }
    },
    ...extra,
  }))
  const events = host.metrics.counter('detector_socket_events_total', 'socket.io events by name and outcome')

  io.on('connection', (socket: Socket) => {
    socket.onAny((event: string, ...args: unknown[]) => {
      const reply: Reply | undefined = typeof args.at(-1) === 'function' ? (args.pop() as Reply) : undefined
      const handler = handlers.get(event)
      if (!handler) {
        events.inc({ event: 'unknown', outcome: 'error' })
        reply?.({ error: `unknown event ${quoteInput(event)}; this detector handles ${[...handlers.keys()].join(', ')}` })
        return
      }
      if (args[0] instanceof RefusedEvent) {
        // over the attachment limits: the parser dropped the images and left the reason (logged there)
        events.inc({ event, outcome: 'error' })
        reply?.({ error: args[0].message })
        return
      }
      void host.track((async () => {
        try {
          const answer = await handler(args[0], socket)
          events.inc({ event, outcome: 'ok' })
          reply?.(answer)
        } catch (error) {
          events.inc({ event, outcome: 'error' })
          const message = clipText(error instanceof ImageInputError ? `could not parse image from data: ${error.message}` : errorMessage(error), MAX_ERROR_ANSWER_CHARACTERS)
          host.log.warn('socket event failed', { event, error: message })
          reply?.({ error: message })
        }
      })())
    })
  })
}
