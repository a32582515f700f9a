/**
 * How big an HTTP request may be, and the answers when it is bigger: 413 (body) and 431 (headers) with a
 * `detail` naming the limit, like every other error. Bun's own parser answers both with an empty body before
 * any JavaScript runs, so the limits are enforced here and Bun's are set above them (runtime/bun-http-listener.ts).
 */

/** The largest header block (request line and header lines) a server accepts; Node's and Bun's default. */
export const MAX_HEADER_BYTES = 16 * 1024
/** The body of a route that takes one word (a mode, a version, on/off). */
export const MAX_SETTING_BODY_BYTES = 1024

/** A request over one of the limits; `status` is 413 (body) or 431 (headers). */
export class RequestTooLargeError extends Error {
  constructor(readonly status: 413 | 431, message: string) {
    super(message)
    this.name = 'RequestTooLargeError'
  }
}

export const bodyTooLarge = (limit: number) => new RequestTooLargeError(413, `request body larger than ${limit} bytes`)
const headersTooLarge = (limit: number) => new RequestTooLargeError(431, `request headers larger than ${limit} bytes (request line and header lines)`)

/** The size of the request line and header lines as they came over the wire (give or take the HTTP version). */
export function headerBlockBytes(request: Request): number {
  const url = new URL(request.url)
  let bytes = request.method.length + url.pathname.length + url.search.length + 12
  request.headers.forEach((value, name) => {
    bytes += name.length + value.length + 4
  })
  return bytes
}

/** The Content-Length the client declared, if any. */
function declaredBodyBytes(request: Request): number | undefined {
  const text = request.headers.get('content-length')
  if (text === null || text.trim() === '') return undefined
  const value = Number(text)
  return Number.isFinite(value) ? value : undefined
}

/** A body sent in chunks, whose size nobody knows before it has been read. */
export function hasChunkedBody(request: Request): boolean {
  return /chunked/i.test(request.headers.get('transfer-encoding') ?? '') && request.body !== null
}

/** Why the request is refused before reading its body: headers over `maxHeaderBytes`, a declared body over `maxBodyBytes`. */
export function requestRefusal(request: Request, limits: { maxBodyBytes: number; maxHeaderBytes: number }): RequestTooLargeError | undefined {
  if (headerBlockBytes(request) > limits.maxHeaderBytes) return headersTooLarge(limits.maxHeaderBytes)
  const declared = declaredBodyBytes(request)
  if (declared !== undefined && declared > limits.maxBodyBytes) return bodyTooLarge(limits.maxBodyBytes)
  return undefined
}

/**
 * The body as bytes, never holding more than `limit` of them: a declared length over it is refused before
 * reading, a chunked body as soon as it passes the limit. Throws RequestTooLargeError (413).
 */
export async function readBodyBytes(request: Request, limit: number): Promise<Uint8Array> {
  const declared = declaredBodyBytes(request)
  if (declared !== undefined && declared > limit) throw bodyTooLarge(limit)
  if (!request.body) return new Uint8Array(0)
  const chunks: Uint8Array[] = []
  let total = 0
  const reader = request.body.getReader()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > limit) {
      await reader.cancel().catch(() => undefined)
      throw bodyTooLarge(limit)
    }
    chunks.push(value)
  }
  const bytes = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}

/** The body as UTF-8 text, at most `limit` bytes of it (see readBodyBytes). */
export async function readBodyText(request: Request, limit: number): Promise<string> {
  return new TextDecoder().decode(await readBodyBytes(request, limit))
}

/** `{detail}` with the error's status; the connection is closed so that an unread upload is not drained. */
export function refusalResponse(error: RequestTooLargeError): Response {
  return new Response(JSON.stringify({ detail: error.message }), { status: error.status, headers: { 'content-type': 'application/json', connection: 'close' } })
}
