import { errorMessage } from '../foundation/log.ts'

/** Why a call to the Loop failed. */
export type LoopErrorKind =
  /** the Loop answered with a non-2xx status (`status` set) */
  | 'http'
  /** no answer within the call's timeout */
  | 'timeout'
  /** connection refused/reset, DNS, TLS verification … */
  | 'network'
  /** still 429 after the retry budget (`status` 429, `retryAfterMs` when the Loop sent one) */
  | 'rate_limited'
  /** POST /api/login did not answer 200 */
  | 'login'
  /** 2xx, but the body is not the contract shape */
  | 'invalid_response'
  /** a file to upload does not exist; nothing was sent */
  | 'missing_file'
  /** the caller's AbortSignal fired */
  | 'aborted'

const EXCERPT_CHARS = 500

/** Every failure of the REST client: what was called, how it failed, the status and a body excerpt. */
export class LoopError extends Error {
  readonly kind: LoopErrorKind
  readonly method: string
  readonly path: string
  readonly status: number | null
  readonly bodyExcerpt: string
  readonly retryAfterMs?: number

  constructor(init: {
    kind: LoopErrorKind
    method: string
    path: string
    detail: string
    status?: number | null
    body?: string
    retryAfterMs?: number
    cause?: unknown
  }) {
    const bodyExcerpt = excerpt(init.body ?? '')
    const status = init.status ?? null
    super(`${init.method} ${init.path} ${init.detail}${bodyExcerpt ? `: ${bodyExcerpt}` : ''}`, { cause: init.cause })
    this.name = 'LoopError'
    this.kind = init.kind
    this.method = init.method
    this.path = init.path
    this.status = status
    this.bodyExcerpt = bodyExcerpt
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs
  }
}

/** A single line of at most 500 characters: enough to see a FastAPI `detail`, never a whole HTML page. */
export function excerpt(body: string): string {
  const line = body.replace(/\s+/g, ' ').trim()
  return line.length > EXCERPT_CHARS ? `${line.slice(0, EXCERPT_CHARS)}…` : line
}

/** What was called: the method, the path with /api, and the timeout of one attempt. */
export interface RequestContext {
  method: string
  path: string
  timeoutMs: number
}

/** Maps what fetch (or reading a body) threw to a LoopError: timeout, caller abort, or network. */
export function toLoopError(error: unknown, ctx: RequestContext, callerSignal?: AbortSignal): LoopError {
  if (error instanceof LoopError) return error
  const name = (error as { name?: string } | null)?.name
  if (callerSignal?.aborted) {
    return new LoopError({ kind: 'aborted', method: ctx.method, path: ctx.path, detail: 'was aborted by the caller', cause: error })
  }
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new LoopError({ kind: 'timeout', method: ctx.method, path: ctx.path, detail: `timed out after ${ctx.timeoutMs} ms`, cause: error })
  }
  return new LoopError({ kind: 'network', method: ctx.method, path: ctx.path, detail: `failed without an answer: ${errorMessage(error)}`, cause: error })
}

export type LoopSocketErrorKind =
  /** emit while no connection to the Loop exists */
  | 'not_connected'
  /** the Loop did not acknowledge within the timeout */
  | 'ack_timeout'
  /** the connection dropped before the acknowledgement arrived */
  | 'disconnected'
  /** the Loop acknowledged with `success: false` */
  | 'rejected'
  /** the acknowledgement is not a SocketResponse */
  | 'invalid_reply'

/** A failed node → Loop call over socket.io (§5.3). */
export class LoopSocketError extends Error {
  constructor(readonly kind: LoopSocketErrorKind, readonly event: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'LoopSocketError'
  }
}
