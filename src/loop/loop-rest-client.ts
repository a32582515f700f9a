import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Static, TSchema } from '@sinclair/typebox'
import { ContractError, decode } from '../contract/index.ts'
import { ConfigError } from '../config/read-settings.ts'
import { resolveLoopUrls } from '../config/loop-url.ts'
import { createLogger, errorMessage } from '../foundation/log.ts'
import type { Counter, Histogram, MetricsRegistry } from '../foundation/metrics.ts'
import { CookieJar } from './cookie-jar.ts'
import { LoopError, toLoopError, type RequestContext } from './loop-error.ts'
import { assertFilesExist, buildBody, type LoopBody, type MultipartFile } from './loop-request-body.ts'
import { attachAbortMapping, readText } from './loop-response-body.ts'
import { DEFAULT_RATE_LIMIT_POLICY, decideRateLimitRetry, parseRetryAfter, type RateLimitPolicy } from './retry-policy.ts'

/** Every Loop REST path lives under this prefix (§3.5). */
export const API_PREFIX = '/api'
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000

const log = createLogger('loop.rest')

export interface LoopRestClientOptions {
  /** `http(s)://host[:port]` without `/api`, e.g. `resolveLoopUrls(LOOP_HOST).base` */
  baseUrl: string
  username?: string
  password?: string
  /** PEM CA bundle trusted for every TLS call (the contents of LOOP_SSL_CERT_PATH) */
  ca?: string
  /** path of a PEM CA bundle; read once here, so a bad path fails at startup */
  caFile?: string
  /** default timeout of one request attempt, body included; default 60 s */
  timeoutMs?: number
  /** 429 handling; see DEFAULT_RATE_LIMIT_POLICY */
  rateLimit?: Partial<RateLimitPolicy>
  /** request counts by status, retries, latency */
  metrics?: MetricsRegistry
  /** jitter source (tests make it deterministic) */
  random?: () => number
  /** waits between 429 retries; tests pass one that records the delays instead of waiting */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}

export interface LoopCallOptions {
  /** log in first and relogin once on 401 (default true, as upstream) */
  requiresLogin?: boolean
  /** timeout of each attempt, body included; default: the client's (60 s) */
  timeoutMs?: number
  /** a ready query string (`state=complete`) or values to encode */
  query?: string | Record<string, string | number | boolean | undefined>
  headers?: Record<string, string>
  /** the caller's cancellation; also interrupts a 429 wait */
  signal?: AbortSignal
  body?: LoopBody
  /** wait and retry on 429 within the client's budget (default true); false returns the 429 answer */
  retryOn429?: boolean
}

/**
 * REST client to the Learning Loop (§3.5) on `fetch`: form login with a cookie jar, one relogin + retry on
 * 401, 429 handled with Retry-After or jittered exponential backoff within a budget (then a `rate_limited`
 * LoopError — unlike upstream, which hands the last 429 back), a timeout on every attempt (also without
 * login, unlike upstream) and the CA bundle on every TLS call.
 *
 * `request` returns any answer as a Response; `send` and the JSON helpers turn non-2xx into a LoopError.
 * A timeout also bounds reading the body: it fires while a caller still streams it after `timeoutMs`.
 */
export class LoopRestClient {
  readonly baseUrl: string
  /** the CA bundle, for other TLS clients to the same Loop (socket.io) */
  readonly ca?: string
  private readonly username: string
  private readonly password: string
  private readonly timeoutMs: number
  private readonly rateLimit: RateLimitPolicy
  private readonly random: () => number
  private readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  private readonly jar = new CookieJar()
  private loginInFlight?: Promise<void>
  private loginGeneration = 0
  private readonly metrics?: { requests: Counter; retries: Counter; duration: Histogram }

  constructor(options: LoopRestClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.username = options.username ?? ''
    this.password = options.password ?? ''
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.rateLimit = { ...DEFAULT_RATE_LIMIT_POLICY, ...options.rateLimit }
    this.random = options.random ?? Math.random
    this.sleep = options.sleep
    this.ca = options.ca ?? (options.caFile !== undefined ? readCaFile(options.caFile) : undefined)
    if (options.metrics) {
      this.metrics = {
        requests: options.metrics.counter('loop_requests_total', 'HTTP requests to the Loop by method and status (timeout/network/aborted when there was no answer)'),
        retries: options.metrics.counter('loop_request_retries_total', 'Loop requests repeated, by reason (401 relogin, 429 rate limit)'),
        duration: options.metrics.histogram('loop_request_duration_seconds', 'time until the response headers of one Loop request attempt'),
      }
    }
  }

  /** Builds a client from the node settings (LOOP_HOST, LOOP_USERNAME, LOOP_PASSWORD, LOOP_SSL_CERT_PATH …). */
  static fromSettings(settings: {
    loopHost: string
    username?: string
    password?: string
    sslCertPath?: string
    requestTimeoutMs?: number
  }, extra: Omit<Partial<LoopRestClientOptions>, 'baseUrl'> = {}): LoopRestClient {
    return new LoopRestClient({
      baseUrl: resolveLoopUrls(settings.loopHost).base,
      username: settings.username,
      password: settings.password,
      caFile: settings.sslCertPath,
      timeoutMs: settings.requestTimeoutMs,
      ...extra,
    })
  }

  /** ws(s) origin of the same Loop, for the socket.io client. */
  get websocketUrl(): string {
    return resolveLoopUrls(this.baseUrl).websocket
  }

  /** true while the jar holds a session cookie */
  get hasSession(): boolean {
    return this.jar.size() > 0
  }

  /** `Cookie` header value of the current session (empty when logged out), e.g. for the socket handshake. */
  cookieHeader(): string {
    return this.jar.header()
  }

  /**
   * Logs in with a form POST to /api/login unless a session exists; `relogin` forces a fresh login.
   * Concurrent callers share one login. Non-200 → LoopError `login`.
   */
  ensureLogin(relogin = false): Promise<void> {
    if (this.loginInFlight) return this.loginInFlight
    if (!relogin && this.jar.size() > 0) return Promise.resolve()
    this.loginInFlight = this.login().finally(() => {
      this.loginInFlight = undefined
    })
    return this.loginInFlight
  }

  /** POST /api/logout with the session, then forgets it (also when the Loop refuses). */
  async logout(): Promise<void> {
    if (this.jar.size() === 0) return
    try {
      await this.send('POST', '/logout', { requiresLogin: false })
    } finally {
      this.jar.clear()
    }
  }

  /** GET /api/status without login: true for 200. Never throws; one attempt, no 429 retries. */
  async backendReady(timeoutMs = 5_000): Promise<boolean> {
    try {
      const response = await this.request('GET', '/status', { requiresLogin: false, timeoutMs, retryOn429: false })
      await response.body?.cancel()
      return response.status === 200
    } catch (error) {
      log.debug('backend not ready', { error: errorMessage(error) })
      return false
    }
  }

  /**
   * One call with login, 401 relogin, 429 backoff and timeout. Returns the answer whatever its status;
   * throws LoopError for timeout, network failure, a missing upload file, login failure and an exhausted 429 budget.
   */
  async request(method: string, path: string, options: LoopCallOptions = {}): Promise<Response> {
    const ctx: RequestContext = { method, path: API_PREFIX + path, timeoutMs: options.timeoutMs ?? this.timeoutMs }
    const requiresLogin = options.requiresLogin ?? true
    if (options.body && 'multipart' in options.body) await assertFilesExist(options.body.multipart, ctx)
    const url = this.url(path, options.query)
    let relogged = false
    let rateLimitRetries = 0
    let waitedMs = 0
    for (;;) {
      if (requiresLogin) await this.ensureLogin()
      const generation = this.loginGeneration
      const response = await this.attempt(url, ctx, options)
      if (response.status === 401 && requiresLogin && !relogged) {
        await response.body?.cancel()
        relogged = true
        this.metrics?.retries.inc({ reason: '401' })
        log.info('session rejected, logging in again', { method, path: ctx.path })
        // another call may already have renewed the session meanwhile
        if (generation === this.loginGeneration) await this.ensureLogin(true)
        continue
      }
      if (response.status === 429 && options.retryOn429 !== false) {
        const body = await response.text().catch(() => '')
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'))
        const decision = decideRateLimitRetry({ retriesSoFar: rateLimitRetries, waitedMs, retryAfterMs, policy: this.rateLimit, random: this.random })
        if (!decision.retry) {
          const error = new LoopError({ kind: 'rate_limited', method, path: ctx.path, status: 429, detail: `rate limited (429): ${decision.reason}`, body, retryAfterMs })
          log.warn('giving up on rate-limited request', { method, path: ctx.path, retries: rateLimitRetries, waited_ms: waitedMs, error: error.message })
          throw error
        }
        rateLimitRetries++
        waitedMs += decision.delayMs
        this.metrics?.retries.inc({ reason: '429' })
        log.info('rate limited, waiting', { method, path: ctx.path, delay_ms: decision.delayMs, retry: rateLimitRetries, retry_after_ms: retryAfterMs })
        if (this.sleep) await this.sleep(decision.delayMs, options.signal)
        else await sleepUnlessAborted(decision.delayMs, options.signal, ctx)
        if (options.signal?.aborted) throw toLoopError(options.signal.reason, ctx, options.signal)
        continue
      }
      return response
    }
  }

  /** Like `request`, but a non-2xx answer becomes LoopError `http` with status and body excerpt. */
  async send(method: string, path: string, options: LoopCallOptions = {}): Promise<Response> {
    const response = await this.request(method, path, options)
    if (response.ok) return response
    const ctx = { method, path: API_PREFIX + path, timeoutMs: options.timeoutMs ?? this.timeoutMs }
    const body = await readText(response, ctx).catch(() => '')
    const error = new LoopError({ kind: 'http', method, path: ctx.path, status: response.status, detail: `failed with ${response.status} ${response.statusText}`.trimEnd(), body })
    log.warn('Loop request failed', { method, path: ctx.path, status: response.status, error: error.message })
    throw error
  }

  /** A successful answer for the caller to stream (`response.body`); the timeout also bounds the stream. */
  download(path: string, options: LoopCallOptions = {}): Promise<Response> {
    return this.send('GET', path, options)
  }

  /** Sends, checks 2xx, parses JSON (empty body → null) and validates it with `schema` when given. */
  async requestJson<S extends TSchema>(method: string, path: string, options: LoopCallOptions & { schema?: S } = {}): Promise<Static<S>> {
    const response = await this.send(method, path, options)
    const ctx = { method, path: API_PREFIX + path, timeoutMs: options.timeoutMs ?? this.timeoutMs }
    const text = await readText(response, ctx)
    let parsed: unknown = null
    if (text.trim() !== '') {
      try {
        parsed = JSON.parse(text)
      } catch (error) {
        throw new LoopError({ kind: 'invalid_response', method, path: ctx.path, status: response.status, detail: `answered with malformed JSON (${errorMessage(error)})`, body: text, cause: error })
      }
    }
    if (!options.schema) return parsed as Static<S>
    try {
      return decode(options.schema, parsed)
    } catch (error) {
      if (!(error instanceof ContractError)) throw error
      const failure = new LoopError({ kind: 'invalid_response', method, path: ctx.path, status: response.status, detail: `answered with ${error.message}`, cause: error })
      log.warn('Loop answer does not match the contract', { method, path: ctx.path, error: failure.message })
      throw failure
    }
  }

  getJson<S extends TSchema>(path: string, schema: S, options?: LoopCallOptions): Promise<Static<S>>
  getJson(path: string, schema?: undefined, options?: LoopCallOptions): Promise<unknown>
  getJson(path: string, schema?: TSchema, options: LoopCallOptions = {}): Promise<unknown> {
    return this.requestJson('GET', path, { ...options, schema })
  }

  postJson<S extends TSchema>(path: string, body: unknown, schema: S, options?: LoopCallOptions): Promise<Static<S>>
  postJson(path: string, body: unknown, schema?: undefined, options?: LoopCallOptions): Promise<unknown>
  postJson(path: string, body: unknown, schema?: TSchema, options: LoopCallOptions = {}): Promise<unknown> {
    return this.requestJson('POST', path, { ...options, schema, body: { json: body } })
  }

  putJson<S extends TSchema>(path: string, body: unknown, schema: S, options?: LoopCallOptions): Promise<Static<S>>
  putJson(path: string, body: unknown, schema?: undefined, options?: LoopCallOptions): Promise<unknown>
  putJson(path: string, body: unknown, schema?: TSchema, options: LoopCallOptions = {}): Promise<unknown> {
    return this.requestJson('PUT', path, { ...options, schema, body: { json: body } })
  }

  /** Form-encoded POST; 2xx answer or LoopError. */
  postForm(path: string, fields: Record<string, string>, options: LoopCallOptions = {}): Promise<Response> {
    return this.send('POST', path, { ...options, body: { form: fields } })
  }

  /** Multipart upload (every part named `files` unless said otherwise); 2xx answer or LoopError. */
  sendMultipart(method: 'POST' | 'PUT', path: string, files: MultipartFile[], options: LoopCallOptions = {}): Promise<Response> {
    return this.send(method, path, { ...options, body: { multipart: files } })
  }

  delete(path: string, options: LoopCallOptions = {}): Promise<Response> {
    return this.send('DELETE', path, options)
  }

  private async login(): Promise<void> {
    this.jar.clear()
    const path = `${API_PREFIX}/login`
    // a failure without an answer was already logged by the request itself
    const response = await this.request('POST', '/login', { requiresLogin: false, body: { form: { username: this.username, password: this.password } } })
    const body = await readText(response, { method: 'POST', path, timeoutMs: this.timeoutMs }).catch(() => '')
    if (response.status !== 200) {
      this.jar.clear()
      const error = new LoopError({ kind: 'login', method: 'POST', path, status: response.status, detail: `login failed with response ${response.status}`, body })
      log.warn('login failed', { status: response.status, error: error.message })
      throw error
    }
    if (this.jar.size() === 0) log.warn('login answered 200 without a session cookie; the next call logs in again')
    this.loginGeneration++
    log.debug('logged in', { username: this.username })
  }

  private url(path: string, query: LoopCallOptions['query']): string {
    if (!path.startsWith('/')) throw new Error(`Loop path must start with "/": ${path}`)
    let search = ''
    if (typeof query === 'string') search = query.replace(/^\?/, '')
    else if (query) {
      const params = new URLSearchParams()
      for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
      search = params.toString()
    }
    return `${this.baseUrl}${API_PREFIX}${path}${search ? `?${search}` : ''}`
  }

  /** One fetch: cookies in, cookies out, timeout, metrics. */
  private async attempt(url: string, ctx: RequestContext, options: LoopCallOptions): Promise<Response> {
    const timeout = AbortSignal.timeout(ctx.timeoutMs)
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout
    const headers = new Headers(options.headers)
    const cookie = this.jar.header()
    if (cookie) headers.set('cookie', cookie)
    const started = performance.now()
    let response: Response
    try {
      // inside the try: a file that vanished since assertFilesExist fails this attempt like a failed send
      const body = await buildBody(options.body, headers)
      response = await fetch(url, { method: ctx.method, headers, body, signal, redirect: 'manual', ...(this.ca ? { tls: { ca: this.ca } } : {}) })
    } catch (error) {
      const failure = toLoopError(error, ctx, options.signal)
      this.metrics?.requests.inc({ method: ctx.method, status: failure.kind })
      log.warn('Loop request got no answer', { method: ctx.method, path: ctx.path, kind: failure.kind, error: failure.message })
      throw failure
    }
    this.metrics?.duration.observe((performance.now() - started) / 1000, { method: ctx.method })
    this.metrics?.requests.inc({ method: ctx.method, status: String(response.status) })
    const setCookies = response.headers.getSetCookie()
    if (setCookies.length > 0) this.jar.store(setCookies)
    return attachAbortMapping(response, ctx, options.signal)
  }
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new ConfigError(`LOOP_SSL_CERT_PATH=${JSON.stringify(path)} cannot be read: ${errorMessage(error)}`)
  }
}

function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined, ctx: RequestContext): Promise<void> {
  if (!signal) return sleep(ms)
  if (signal.aborted) return Promise.reject(toLoopError(signal.reason, ctx, signal))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(toLoopError(signal.reason, ctx, signal))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
