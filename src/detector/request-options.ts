import { AUTOUPLOAD_MODES, isCreationDate, isOneOf } from '../contract/index.ts'
import { quoteInput } from '../foundation/log.ts'
import type { DetectOptions } from './detection-service.ts'

/** A request option that is present but invalid; answered with 422 naming the option. */
export class RequestOptionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RequestOptionError'
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A header value as the client wrote it. Header bytes arrive one character per byte (latin-1), so `Straße` sent
 * as UTF-8 reads `StraÃ\x9Fe`; the bytes are decoded again as UTF-8, and a value that is not UTF-8 is refused.
 */
function headerText(key: string, value: string): string {
  if (!/[^\x00-\x7f]/.test(value)) return value
  const bytes = Uint8Array.from(value, (c) => c.charCodeAt(0))
  if (bytes.some((b, i) => b !== value.charCodeAt(i))) return value // already decoded beyond latin-1
  try {
    return strictUtf8.decode(bytes)
  } catch {
    throw new RequestOptionError(`header ${JSON.stringify(key)} is not valid UTF-8; send header values as UTF-8 (or use the query string)`)
  }
}

/**
 * Reads `name` from the query or the headers, accepting hyphen and underscore spellings: upstream's FastAPI
 * only honoured `camera-id` while its README showed `camera_id` (§15.5), so both work here.
 */
export function requestValue(name: string, headers: Headers, query: URLSearchParams): string | undefined {
  const spellings = [...new Set([name, name.replace(/_/g, '-'), name.replace(/-/g, '_')])]
  for (const key of spellings) {
    const fromQuery = query.get(key)
    if (fromQuery !== null && fromQuery !== '') return fromQuery
    const fromHeader = headers.get(key)
    if (fromHeader !== null && fromHeader !== '') return headerText(key, fromHeader)
  }
  return undefined
}

/** `creation_date` (either spelling, query or header): ISO 8601 or the Loop's `YYYY-MM-DD_HH:MM:SS.ffffff`. */
export function creationDateFrom(headers: Headers, query: URLSearchParams): string | null {
  const value = requestValue('creation_date', headers, query)
  if (value === undefined) return null
  if (!isCreationDate(value)) {
    throw new RequestOptionError(`creation_date must be an ISO 8601 date such as 2026-11-28T10:00:00.123456 or the Loop's 2026-11-28_10:00:00.123456, got ${JSON.stringify(value)}`)
  }
  return value
}

/** The detect options of a REST request (§7.3): camera id, comma-separated tags, source, autoupload, creation date. */
export function detectOptionsFrom(headers: Headers, query: URLSearchParams): DetectOptions {
  const autoupload = requestValue('autoupload', headers, query) ?? 'filtered'
  if (!isOneOf(AUTOUPLOAD_MODES, autoupload)) {
    throw new RequestOptionError(`autoupload must be one of ${AUTOUPLOAD_MODES.join(', ')}, got ${quoteInput(autoupload)}`)
  }
  const tags = requestValue('tags', headers, query)
  return {
    cameraId: requestValue('camera_id', headers, query) ?? requestValue('mac', headers, query) ?? null,
    tags: tags ? tags.split(',').map((t) => t.trim()).filter(Boolean) : [],
    source: requestValue('source', headers, query) ?? null,
    autoupload,
    creationDate: creationDateFrom(headers, query),
  }
}

/** `upload_priority` as query or header: true/1/yes (case-insensitive). */
export function uploadPriorityFrom(headers: Headers, query: URLSearchParams): boolean {
  const value = requestValue('upload_priority', headers, query)
  return value !== undefined && /^(true|1|yes)$/i.test(value)
}
