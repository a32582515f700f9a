import { io, type Socket } from 'socket.io-client'
import { SOCKET_IO_PATH, SocketResponse, socketFailure, toSocketResponse, tryDecode } from '../contract/index.ts'
import { clipText, createLogger, errorMessage, MAX_ERROR_ANSWER_CHARACTERS, quoteInput } from '../foundation/log.ts'
import type { Counter, Gauge, MetricsRegistry } from '../foundation/metrics.ts'
import { LoopSocketError } from './loop-error.ts'
import type { LoopRestClient } from './loop-rest-client.ts'
import { backoffDelayMs, type BackoffPolicy } from '../foundation/backoff.ts'

const log = createLogger('loop.socket')

/** `nodeType` handshake header values (§3.3). */
export type LoopNodeType = 'trainer' | 'annotation_node' | 'detector' | 'node' | (string & {})

/** What the cookie callback learns about the coming connection attempt. */
export interface ConnectAttempt {
  /** 1 for the very first attempt of this LoopSocket */
  attempt: number
  /** attempts that failed since the last stable connection */
  consecutiveFailures: number
  /** false only for the first attempt: every later one follows a failure or a lost connection */
  reconnect: boolean
}

export interface LoopSocketOptions {
  /** ws(s)://host[:port] of the Loop (LoopRestClient.websocketUrl); the Engine.IO path is /ws/socket.io */
  url: string
  organization: string
  project: string
  nodeType: LoopNodeType
  /**
   * Called before every connection attempt; returns the `Cookie` header for the handshake. It may log in
   * again (the Loop drops sessions when it restarts). A throw counts as a failed attempt.
   */
  refreshCookies?: (attempt: ConnectAttempt) => Promise<string | undefined> | string | undefined
  /** PEM CA bundle for wss (LOOP_SSL_CERT_PATH) */
  ca?: string
  /**
   * reconnect delays: full jitter below a cap that doubles from 1 s to 30 s, never below `minMs`
   * (default initialMs / 4), so even unlucky draws allow at most one attempt per 250 ms by default
   */
  backoff?: Partial<Pick<BackoffPolicy, 'initialMs' | 'maxMs' | 'minMs'>>
  /** a connection that lasted this long counts as stable and resets the backoff; default 10 s */
  stableAfterMs?: number
  /** give up one attempt after this long; default 20 s (upstream request_timeout) */
  connectTimeoutMs?: number
  /** the Loop's `restart` event (§5.2); the node is expected to exit with status 0 */
  onRestart?: () => void
  metrics?: MetricsRegistry
  random?: () => number
  /** Engine.IO transports; default polling, then upgrade to websocket (as upstream) */
  transports?: ('polling' | 'websocket')[]
}

export interface LoopSocketCounters {
  connectAttempts: number
  connects: number
  connectErrors: number
  disconnects: number
  /** most attempts ever in flight at once; 1 by construction, kept to prove it */
  maxAttemptsInFlight: number
}

/** A Loop → node event handler; its result (or throw) becomes the §5.1 ack. */
export type LoopEventHandler = (...args: any[]) => unknown

const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'restart'])
const DEFAULT_ACK_TIMEOUT_MS = 30_000

/**
 * The node's socket.io connection to the Loop. Exactly ONE reconnection mechanism: socket.io-client's own
 * is switched off and this class runs a single loop — refresh cookies, one attempt, wait for its outcome,
 * and while disconnected sleep a fully jittered exponential delay. Attempts never overlap, which is what
 * upstream's two competing mechanisms got wrong (reconnect storms answered with 429, §15.17).
 */
export class LoopSocket {
  private readonly options: LoopSocketOptions
  private readonly policy: BackoffPolicy
  private readonly handlers = new Map<string, LoopEventHandler>()
  private readonly connectHooks = new Set<() => void | Promise<void>>()
  private readonly disconnectHooks = new Set<(reason: string) => void | Promise<void>>()
  private readonly counts: LoopSocketCounters = { connectAttempts: 0, connects: 0, connectErrors: 0, disconnects: 0, maxAttemptsInFlight: 0 }
  private attemptsInFlight = 0
  private socket?: Socket
  private running?: Promise<void>
  private stopped = false
  private wake?: () => void
  private readonly stopWaiters = new Set<() => void>()
  private readonly metrics?: { attempts: Counter; connects: Counter; connectErrors: Counter; disconnects: Counter; connected: Gauge; handlerErrors: Counter }

  constructor(options: LoopSocketOptions) {
    this.options = options
    const initialMs = options.backoff?.initialMs ?? 1_000
    this.policy = { initialMs, maxMs: options.backoff?.maxMs ?? 30_000, minMs: options.backoff?.minMs ?? initialMs / 4, jitter: 'full' }
    if (options.metrics) {
      const m = options.metrics
      this.metrics = {
        attempts: m.counter('loop_socket_connect_attempts_total', 'socket.io connection attempts to the Loop'),
        connects: m.counter('loop_socket_connects_total', 'successful socket.io connections to the Loop'),
        connectErrors: m.counter('loop_socket_connect_errors_total', 'failed socket.io connection attempts to the Loop'),
        disconnects: m.counter('loop_socket_disconnects_total', 'lost socket.io connections to the Loop'),
        connected: m.gauge('loop_socket_connected', '1 while connected to the Loop over socket.io'),
        handlerErrors: m.counter('loop_socket_handler_errors_total', 'Loop events whose handler failed, by event'),
      }
      this.metrics.connected.set(0)
    }
  }

  /**
   * A socket that shares the REST client's Loop, CA bundle and session: the first attempt reuses the
   * session (logging in if there is none), every reconnect logs in afresh as upstream does. `login: false`
   * sends whatever cookies exist without logging in.
   */
  static forRestClient(rest: LoopRestClient, options: Omit<LoopSocketOptions, 'url' | 'refreshCookies'> & { login?: boolean }): LoopSocket {
    const { login = true, ...rest_ } = options
    return new LoopSocket({
      url: rest.websocketUrl,
      ca: rest.ca,
      ...rest_,
      refreshCookies: async ({ reconnect }) => {
        if (login) await rest.ensureLogin(reconnect)
        return rest.cookieHeader() || undefined
      },
    })
  }

  get connected(): boolean {
    return this.socket?.connected ?? false
  }

  /** A snapshot of the connection counters. */
  get counters(): LoopSocketCounters {
    return { ...this.counts }
  }

  /** Runs `hook` after every successful connect; returns a function that removes it. */
  onConnect(hook: () => void | Promise<void>): () => void {
    this.connectHooks.add(hook)
    return () => this.connectHooks.delete(hook)
  }

  /** Runs `hook(reason)` after every lost connection; returns a function that removes it. */
  onDisconnect(hook: (reason: string) => void | Promise<void>): () => void {
    this.disconnectHooks.add(hook)
    return () => this.disconnectHooks.delete(hook)
  }

  /**
   * Handles a Loop → node event. The handler's return value — sync or async — or its throw becomes the
   * §5.1 ack: string → payload, boolean → success, thrown error → error_msg. Replaces an earlier handler.
   */
  on(event: string, handler: LoopEventHandler): this {
    if (RESERVED_EVENTS.has(event)) throw new Error(`"${event}" is handled by LoopSocket itself; use onConnect/onDisconnect/onRestart`)
    this.handlers.set(event, handler)
    return this
  }

  off(event: string): this {
    this.handlers.delete(event)
    return this
  }

  /**
   * Calls a Loop event and resolves with the Loop's acknowledgement (§5.3). Fails fast with
   * LoopSocketError `not_connected` instead of buffering; `ack_timeout` after `timeoutMs`.
   */
  async emitWithAck(event: string, args: unknown[] = [], timeoutMs = DEFAULT_ACK_TIMEOUT_MS): Promise<unknown> {
    const socket = this.socket
    if (!socket?.connected) throw new LoopSocketError('not_connected', event, `cannot emit "${event}": not connected to the Loop`)
    try {
      return await socket.timeout(timeoutMs).emitWithAck(event, ...args)
    } catch (error) {
      const message = errorMessage(error)
      const failure = /timed out/i.test(message)
        ? new LoopSocketError('ack_timeout', event, `the Loop did not acknowledge "${event}" within ${timeoutMs} ms`, { cause: error })
        : new LoopSocketError('disconnected', event, `connection lost before the Loop acknowledged "${event}": ${message}`, { cause: error })
      log.warn('emit failed', { event, kind: failure.kind, error: failure.message })
      throw failure
    }
  }

  /**
   * `emitWithAck` for calls whose reply is a SocketResponse (update_training, update_trainer …): resolves
   * with it when `success` is true; LoopSocketError `rejected` (carrying the Loop's error_msg) when false,
   * `invalid_reply` when the reply has another shape.
   */
  async emitExpectingSuccess(event: string, args: unknown[] = [], timeoutMs = DEFAULT_ACK_TIMEOUT_MS): Promise<SocketResponse> {
    const reply = await this.emitWithAck(event, args, timeoutMs)
    const decoded = tryDecode(SocketResponse, reply)
    if (!decoded.ok) {
      const failure = new LoopSocketError('invalid_reply', event, `the Loop answered "${event}" with ${quoteInput(reply, 200)}, not a SocketResponse`)
      log.warn('unexpected reply from the Loop', { event, error: failure.message })
      throw failure
    }
    if (!decoded.value.success) {
      const failure = new LoopSocketError('rejected', event, `the Loop rejected "${event}": ${decoded.value.error_msg ?? 'no error message'}`)
      log.warn('the Loop rejected a call', { event, error: failure.message })
      throw failure
    }
    return decoded.value
  }

  /** Starts the connection loop (idempotent). Use `waitUntilConnected` to wait for the first connection. */
  start(): void {
    if (this.stopped) throw new Error('LoopSocket was shut down; create a new one')
    this.running ??= this.runConnectionLoop().catch((error) => {
      log.error('connection loop crashed', { error: errorMessage(error) })
    })
  }

  /** Resolves once connected; rejects after `timeoutMs` or when shut down. */
  async waitUntilConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return
    if (this.stopped) throw new Error('LoopSocket was shut down')
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`not connected to the Loop within ${timeoutMs} ms`)), timeoutMs)
      const removeHook = this.onConnect(() => finish())
      const onStop = () => finish(new Error('LoopSocket was shut down'))
      this.stopWaiters.add(onStop)
      const finish = (error?: Error) => {
        clearTimeout(timer)
        removeHook()
        this.stopWaiters.delete(onStop)
        if (error) reject(error)
        else resolve()
      }
    })
  }

  /** Disconnects and stops reconnecting for good. */
  async shutdown(): Promise<void> {
    if (this.stopped) return this.running
    this.stopped = true
    this.wake?.()
    for (const waiter of [...this.stopWaiters]) waiter()
    this.socket?.disconnect()
    await this.running
  }

  private async runConnectionLoop(): Promise<void> {
    let consecutiveFailures = 0
    let reconnect = false
    while (!this.stopped) {
      const result = await this.attemptConnection({ attempt: this.counts.connectAttempts + 1, consecutiveFailures, reconnect })
      reconnect = true
      if (result.connected) {
        const connectedAt = performance.now()
        await result.closed
        const stable = performance.now() - connectedAt >= (this.options.stableAfterMs ?? 10_000)
        consecutiveFailures = stable ? 0 : consecutiveFailures + 1
      } else {
        consecutiveFailures++
      }
      if (this.stopped) break
      const delayMs = backoffDelayMs(consecutiveFailures, this.policy, this.options.random)
      log.debug('reconnecting after delay', { delay_ms: delayMs, consecutive_failures: consecutiveFailures })
      await this.sleep(delayMs)
    }
  }

  private async attemptConnection(info: ConnectAttempt): Promise<{ connected: true; closed: Promise<void> } | { connected: false }> {
    this.counts.connectAttempts++
    this.metrics?.attempts.inc()
    this.attemptsInFlight++
    this.counts.maxAttemptsInFlight = Math.max(this.counts.maxAttemptsInFlight, this.attemptsInFlight)
    try {
      return await this.connectOnce(info)
    } finally {
      this.attemptsInFlight--
    }
  }

  private async connectOnce(info: ConnectAttempt): Promise<{ connected: true; closed: Promise<void> } | { connected: false }> {
    let cookie: string | undefined
    try {
      cookie = (await this.options.refreshCookies?.(info)) ?? undefined
    } catch (error) {
      this.recordConnectError(info, `could not refresh the session: ${errorMessage(error)}`)
      return { connected: false }
    }
    if (this.stopped) return { connected: false }

    const extraHeaders: Record<string, string> = {
      organization: this.options.organization,
      project: this.options.project,
      nodeType: this.options.nodeType,
    }
    if (cookie) extraHeaders.cookie = cookie
    const socket = io(this.options.url, {
      path: SOCKET_IO_PATH,
      forceNew: true,
      reconnection: false,
      autoConnect: false,
      timeout: this.options.connectTimeoutMs ?? 20_000,
      extraHeaders,
      ...(this.options.transports ? { transports: this.options.transports } : {}),
      ...(this.options.ca ? { ca: this.options.ca } : {}),
    })
    this.socket = socket
    // handlers are looked up in the Map as events arrive: late ones are found, and an unknown one is answered
    socket.onAny((event: string, ...args: unknown[]) => void this.dispatch(event, args))

    const closed = new Promise<void>((resolve) => {
      socket.once('disconnect', (reason) => {
        this.counts.disconnects++
        this.metrics?.disconnects.inc()
        this.metrics?.connected.set(0)
        log.warn('disconnected from the Loop', { reason })
        for (const hook of this.disconnectHooks) this.runHook('disconnect', () => hook(reason))
        resolve()
      })
    })

    const outcome = await new Promise<'connected' | string>((resolve) => {
      const onStop = () => finish('shut down')
      const finish = (result: string) => {
        this.stopWaiters.delete(onStop)
        socket.off('connect', onConnect)
        socket.off('connect_error', onError)
        resolve(result)
      }
      const onConnect = () => finish('connected')
      const onError = (error: Error) => finish(errorMessage(error))
      socket.once('connect', onConnect)
      socket.once('connect_error', onError)
      this.stopWaiters.add(onStop)
      socket.connect()
    })

    if (outcome !== 'connected') {
      socket.removeAllListeners()
      socket.disconnect()
      if (!this.stopped) this.recordConnectError(info, outcome)
      return { connected: false }
    }
    this.counts.connects++
    this.metrics?.connects.inc()
    this.metrics?.connected.set(1)
    log.info('connected to the Loop', { url: this.options.url, attempt: info.attempt, transport: socket.io.engine?.transport?.name })
    for (const hook of this.connectHooks) this.runHook('connect', hook)
    return { connected: true, closed }
  }

  private recordConnectError(info: ConnectAttempt, reason: string): void {
    this.counts.connectErrors++
    this.metrics?.connectErrors.inc()
    const fields = { url: this.options.url, attempt: info.attempt, consecutive_failures: info.consecutiveFailures + 1, reason }
    // one warning per outage; the following attempts of the same outage are info
    if (info.consecutiveFailures === 0) log.warn('could not connect to the Loop', fields)
    else log.info('could not connect to the Loop', fields)
  }

  private async dispatch(event: string, args: unknown[]): Promise<void> {
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (response: SocketResponse) => void) : undefined
    if (event === 'restart') return this.handleRestart(ack)
    const handler = this.handlers.get(event)
    if (!handler) {
      log.warn('unknown event from the Loop', { event: quoteInput(event), acked: ack !== undefined })
      ack?.(socketFailure(`unknown event ${quoteInput(event)}; this node handles ${[...this.handlers.keys(), 'restart'].join(', ')}`))
      return
    }
    let response: SocketResponse
    try {
      response = toSocketResponse(await handler(...args))
      if (!response.success && response.error_msg) log.warn('Loop event handled with failure', { event, error: response.error_msg })
    } catch (error) {
      response = socketFailure(clipText(errorMessage(error), MAX_ERROR_ANSWER_CHARACTERS))
      this.metrics?.handlerErrors.inc({ event })
      log.error('Loop event handler failed', { event, error: errorMessage(error) })
    }
    ack?.(response)
  }

  private handleRestart(ack: ((response: SocketResponse) => void) | undefined): void {
    log.warn('the Loop asked this node to restart')
    ack?.(toSocketResponse(true))
    if (this.options.onRestart) this.options.onRestart()
    else log.error('restart requested by the Loop, but no onRestart handler is set; ignoring it')
  }

  private runHook(kind: string, hook: () => void | Promise<void>): void {
    try {
      Promise.resolve(hook()).catch((error) => log.error(`${kind} hook failed`, { error: errorMessage(error) }))
    } catch (error) {
      log.error(`${kind} hook failed`, { error: errorMessage(error) })
    }
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.wake = done
    })
    this.wake = undefined
  }
}
