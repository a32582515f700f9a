import { AUTOUPLOAD_MODES, isOneOf } from '../contract/index.ts'
import { quoteInput } from '../node/log.ts'
import type { DetectOptions } from './detection-service.ts'

/** A request option that is present but invalid; answered with 422 naming the option. */
export class RequestOptionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RequestOptionError'
  }
}

/**
 * Reads `name` from the query or the headers, accepting hyphen and underscore spellings: upstream's FastAPI
 * only honoured `camera-id` while its README showed `camera_id` (§15.5), so both work here.
 */
export function requestValue(name: string, headers: Headers, query: URLSearchParams): string | undefined {
  const spellings = [...new Set([name, name.replace(/_/g, '-'), name.replace(/-/g, '_')])]
  for (const key of spellings) {
    const value = query.get(key) ?? headers.get(key)
    if (value !== null && value !== '') return value
  }
  return undefined
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
    creationDate: requestValue('creation_date', headers, query) ?? null,
  }
}

/** `upload_priority` as query or header: true/1/yes (case-insensitive). */
export function uploadPriorityFrom(headers: Headers, query: URLSearchParams): boolean {
  const value = requestValue('upload_priority', headers, query)
  return value !== undefined && /^(true|1|yes)$/i.test(value)
}
