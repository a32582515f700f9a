import { Type } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import { HealthAnswer, NotReadyAnswer, OnOff, ReadyAnswer, type NodeStatus } from '../contract/index.ts'
import { registerApiDocs } from './api-docs.ts'
import { jsonContent, routeDocs, textContent } from './route-docs.ts'
import { exitOnStopSignals } from './stop-signals.ts'
import { createLogger, errorMessage, getLogLevel, quoteInput, setLogLevel, type Logger } from '../foundation/log.ts'
import { MetricsRegistry } from '../foundation/metrics.ts'
import { RepeatLoop, REPEAT_INTERVAL_MS } from './repeat-loop.ts'
import { listenAddress, reachableFrom } from './listen-address.ts'
import { createSocketIo, serve, type RunningServer, type SocketIoBinding } from './http-server.ts'
import { MAX_SETTING_BODY_BYTES, readBodyText, refusalResponse, RequestTooLargeError } from './request-limits.ts'

/**
 * How long a graceful shutdown may take by default: with the hard exit below, the process is gone within 10 s
 * (docker's default stop timeout). A trainer asks for more, to let its training process save a checkpoint.
 */
export const SHUTDOWN_GRACE_MS = 8_000
/** Of the grace period, what is kept by default for `onShutdown` (persisting state) after in-flight work. */
const SHUTDOWN_PERSIST_RESERVE_MS = 3_000
/** In-flight requests get at least this long before the persisting share starts. */
const SHUTDOWN_MIN_DRAIN_MS = 2_000
/** After a signal the process exits this long after the grace period even if a shutdown step hangs. */
const SHUTDOWN_HARD_EXIT_AFTER_GRACE_MS = 1_500

/** Waits for `work` at most `ms`; true when it settled in time (either way). */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))))
  try {
    return await Promise.race([work.then(() => true, () => true), timedOut])
  } finally {
    clearTimeout(timer)
  }
}

export type NodeType = 'trainer' | 'annotation_node' | 'detector' | 'converter' | 'node'

export interface NodeRuntimeOptions {
  name: string
  uuid: string
  nodeType: NodeType
  port: number
  hostname?: string
  /** serve a socket.io server on the node's own port (the detector does) */
  socketIo?: boolean
  maxMessageBytes?: number
  /** the largest request body the server reads (default 128 MiB); larger ones get 413 */
  maxRequestBodyBytes?: number
  repeatIntervalMs?: number
  skipRepeatOnStart?: boolean
  capabilities?: string[]
  log?: Logger
  /**
   * what `onShutdown` needs to persist state (default 3 s); the grace period grows to give in-flight requests
   * their share too (at least SHUTDOWN_GRACE_MS in all)
   */
  shutdownPersistMs?: number
}

export interface NodeHooks {
  /** after the server listens; errors are logged and the node keeps running (upstream behaviour) */
  onStartup?(): Promise<void>
  /** every repeat cycle (5 s after the previous one finished) */
  onRepeat?(): Promise<void>
  /**
   * during graceful shutdown, after the server stopped accepting: persist state here. `deadline`
   * (a `performance.now()` time) is when the shutdown gives up waiting; bound every wait by it.
   */
  onShutdown?(deadline: number): Promise<void>
  /** at the start of a graceful shutdown: end responses that never finish by themselves (event streams), so the drain does not wait for them */
  onDraining?(): void
  /** `PUT /socketio off|on`: disconnect from / reconnect to the Loop */
  onLoopConnectionToggle?(on: boolean): Promise<void>
  /** extra readiness conditions; `undefined` = ready */
  notReadyReason?(): string | undefined
}

/**
 * What every node kind shares: identity and status, an Elysia app plus (optionally) socket.io on one port,
 * the generic routes of §3.4, /health, /ready, /metrics, the repeat loop and graceful shutdown.
 * Node kinds add their routes to `app` and their events to `socketIo` before `start()`.
 */
export class NodeRuntime {
  readonly app = new Elysia()
  readonly metrics = new MetricsRegistry()
  readonly log: Logger
  readonly status: NodeStatus
  readonly socketIo: SocketIoBinding | undefined
  readonly repeatLoop: RepeatLoop
  readonly startedAt = Date.now()
  private server: RunningServer | undefined
  private started = false
  private shuttingDown: Promise<void> | undefined
  private startupDone = false
  private hooks: NodeHooks = {}
  /** The whole graceful shutdown time, and of it what is kept for `onShutdown`. */
  get shutdownBudget(): { graceMs: number; persistMs: number } {
    const persistMs = this.options.shutdownPersistMs ?? SHUTDOWN_PERSIST_RESERVE_MS
    return { graceMs: Math.max(SHUTDOWN_GRACE_MS, persistMs + SHUTDOWN_MIN_DRAIN_MS), persistMs }
  }
  private readonly inFlight = new Set<Promise<unknown>>()

  constructor(readonly options: NodeRuntimeOptions) {
    this.log = options.log ?? createLogger(options.nodeType)
    this.status = { id: options.uuid, name: options.name, state: 'online', uptime: 0, errors: {}, capabilities: options.capabilities ?? [] }
    this.socketIo = options.socketIo ? createSocketIo({ maxMessageBytes: options.maxMessageBytes, log: this.log.child('socket.io'), metrics: this.metrics }) : undefined
    this.repeatLoop = new RepeatLoop(() => this.repeat(), options.repeatIntervalMs ?? REPEAT_INTERVAL_MS, this.log.child('repeat'))
    this.repeatLoop.muted = options.skipRepeatOnStart ?? false
    this.registerMetrics()
    this.registerGenericRoutes()
  }

  setHooks(hooks: NodeHooks): void {
    this.hooks = hooks
  }

  get port(): number {
    if (!this.server) throw new Error('node is not started')
    return this.server.port
  }
  get url(): string {
    if (!this.server) throw new Error('node is not started')
    return this.server.url
  }
  get uptimeSeconds(): number {
    return Math.round((Date.now() - this.startedAt) / 1000)
  }
  get isShuttingDown(): boolean {
    return this.shuttingDown !== undefined
  }

  /** Why the node is not ready, or undefined when it is. */
  notReadyReason(): string | undefined {
    if (this.shuttingDown) return 'shutting down'
    if (!this.startupDone) return 'starting'
    return this.hooks.notReadyReason?.()
  }

  /** Tracks work that a graceful shutdown must wait for (requests, socket events, uploads). */
  track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work)
    const done = () => this.inFlight.delete(work)
    work.then(done, done)
    return work
  }

  async start(): Promise<RunningServer> {
    if (this.started) throw new Error('node already started')
    this.started = true
    const hostname = this.options.hostname ?? '0.0.0.0'
    const requests = this.metrics.counter('http_requests_total', 'HTTP requests by route and status')
    this.server = serve(this.app, {
      port: this.options.port, hostname, socketIo: this.socketIo, maxRequestBodyBytes: this.options.maxRequestBodyBytes,
      onRefusal: (request, refusal) => {
        requests.inc({ route: '(refused)', method: request.method, status: String(refusal.status) })
        this.log.warn('request refused', { method: request.method, path: quoteInput(new URL(request.url).pathname), status: refusal.status, detail: refusal.message })
      },
    })
    this.log.info('listening', {
      address: listenAddress(hostname, this.server.port), url: this.server.url, reachableFrom: reachableFrom(hostname),
      node: this.options.name, uuid: this.options.uuid, pid: process.pid,
    })
    try {
      await this.hooks.onStartup?.()
    } catch (error) {
      this.log.error('fatal error during startup; the node keeps running', { error: errorMessage(error) })
      this.status.errors = { ...this.status.errors, startup: errorMessage(error) }
    }
    this.startupDone = true
    this.repeatLoop.start()
    return this.server
  }

  /**
   * Graceful shutdown: not ready, repeat loop stopped, no new connections, in-flight requests finished,
   * `onShutdown` (persist), done. Idempotent. Every wait is bounded: work still running when its share of
   * SHUTDOWN_GRACE_MS is over (a detection that never returns, a repeat cycle stuck in a model build) is
   * logged and abandoned, and connections are cut, so the node is gone within 10 s whatever hangs.
   */
  shutdown(reason = 'shutdown requested'): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.log.info('shutting down', { reason })
      const { graceMs, persistMs } = this.shutdownBudget
      const deadline = performance.now() + graceMs
      const drainDeadline = deadline - persistMs
      const left = (until: number) => until - performance.now()
      try {
        // no new connections from here on; the repeat cycle and the requests in flight finish side by side
        const serverStopped = this.server?.stop() ?? Promise.resolve()
        this.hooks.onDraining?.()
        const repeatStopped = this.repeatLoop.stop()
        const inFlight = this.inFlight.size
        if (!(await settledWithin(Promise.allSettled([...this.inFlight]), left(drainDeadline)))) {
          this.log.warn('in-flight work did not finish in time; abandoning it and closing connections', { abandoned: this.inFlight.size, of: inFlight })
        }
        if (!(await settledWithin(serverStopped, left(drainDeadline)))) await this.server?.stop(true)
        if (!(await settledWithin(repeatStopped, left(drainDeadline)))) {
          this.log.warn('the repeat cycle did not finish in time; shutting down beside it')
        }
        const persisted = this.hooks.onShutdown?.(deadline).catch((error: unknown) => this.log.error('error during shutdown', { error: errorMessage(error) }))
        if (persisted && !(await settledWithin(persisted, left(deadline)))) {
          this.log.error('persisting state on shutdown did not finish in time', { graceMs })
        }
      } catch (error) {
        this.log.error('error during shutdown', { error: errorMessage(error) })
      }
      this.log.info('stopped')
    })()
    return this.shuttingDown
  }

  /** SIGTERM/SIGINT → graceful shutdown → exit 0 (stop-signals.ts). */
  installSignalHandlers(exit: (code: number) => never = process.exit): void {
    exitOnStopSignals({
      stop: (reason) => this.shutdown(reason), hardExitMs: () => this.shutdownBudget.graceMs + SHUTDOWN_HARD_EXIT_AFTER_GRACE_MS, log: this.log, exit,
    })
  }

  private async repeat(): Promise<void> {
    this.status.uptime = this.uptimeSeconds
    await this.hooks.onRepeat?.()
  }

  private registerMetrics(): void {
    const uptime = this.metrics.gauge('node_uptime_seconds', 'seconds since the node process started')
    uptime.collect(() => uptime.set((Date.now() - this.startedAt) / 1000))
    const info = this.metrics.gauge('node_info', 'node identity (always 1)')
    info.collect(() => info.set(1, { node_type: this.options.nodeType, name: this.options.name, uuid: this.options.uuid }))
    const ready = this.metrics.gauge('node_ready', '1 when the node is ready to serve')
    ready.collect(() => ready.set(this.notReadyReason() === undefined ? 1 : 0))
    const failures = this.metrics.gauge('repeat_loop_failures', 'repeat-loop iterations that threw')
    failures.collect(() => failures.set(this.repeatLoop.failures))
  }

  private registerGenericRoutes(): void {
    const requests = this.metrics.counter('http_requests_total', 'HTTP requests by route and status')
    const latency = this.metrics.histogram('http_request_duration_seconds', 'HTTP request duration by route')
    const startTimes = new WeakMap<Request, number>()
    this.app
      .onRequest(({ request }) => {
        startTimes.set(request, performance.now())
      })
      // Elysia answers an unknown path or method with a bare NOT_FOUND; say which request had no route
      .onError(({ code, request, set }) => {
        if (code !== 'NOT_FOUND') return
        set.status = 404
        return { detail: `no route ${request.method} ${quoteInput(new URL(request.url).pathname)}` }
      })
      .onAfterResponse(({ request, route, set, response }) => {
        const started = startTimes.get(request)
        const labels = { route: route || 'unknown', method: request.method }
        // a handler that returns a Response (a 413 of a setting route) sets its status there, not in `set`
        requests.inc({ ...labels, status: String(response instanceof Response ? response.status : set.status ?? 200) })
        if (started !== undefined) latency.observe((performance.now() - started) / 1000, labels)
      })
      .get('/health', () => ({ status: 'ok', uptime_seconds: this.uptimeSeconds }), {
        detail: routeDocs({ summary: 'Liveness: the process answers', tags: ['node'], responses: { 200: jsonContent(HealthAnswer) } }),
      })
      .get('/ready', ({ set }) => {
        const reason = this.notReadyReason()
        if (reason) {
          set.status = 503
          return { ready: false, reason }
        }
        return { ready: true }
      }, { detail: routeDocs({ summary: 'Readiness: the node can do its job (a detector: model loaded and warmed)', tags: ['node'], responses: { 200: jsonContent(ReadyAnswer), 503: jsonContent(NotReadyAnswer, 'not ready, and why') } }) })
      .get('/metrics', ({ set }) => {
        set.headers['content-type'] = 'text/plain; version=0.0.4; charset=utf-8'
        return this.metrics.render()
      }, { detail: routeDocs({ summary: 'Prometheus metrics', tags: ['node'], responses: { 200: textContent(Type.String(), 'Prometheus text format 0.0.4') } }) })
      .put('/debug_logging', onOffRoute(this.log, async (on) => {
        setLogLevel(on ? 'debug' : 'info')
        this.log.info('log level changed', { level: getLogLevel() })
      }), { parse: 'none', detail: onOffDocs('Body "on"/"off": debug logging') })
      .put('/socketio', onOffRoute(this.log, async (on) => {
        this.repeatLoop.muted = !on
        await this.hooks.onLoopConnectionToggle?.(on)
      }), { parse: 'none', detail: onOffDocs('Body "on"/"off": connect to / disconnect from the Loop and (un)mute the repeat loop') })
    registerApiDocs(this.app, { title: `learning-loop-node ${this.options.nodeType === 'node' ? 'node' : this.options.nodeType.replace('_node', '')}`, description: 'The REST API of this node; its socket.io events are described in the README.' })
  }
}

const onOffDocs = (summary: string) => routeDocs({
  summary, tags: ['node'], body: [textContent(OnOff), jsonContent(OnOff)], responses: { 200: jsonContent(OnOff, 'the state now') },
})

/** A `PUT` route whose raw body is `on` or `off` (§3.4): answers the JSON string, or 400 `Invalid state`. */
function onOffRoute(log: Logger, apply: (on: boolean) => Promise<void>) {
  return async ({ request, set }: { request: Request; set: { status?: number | string } }) => {
    let body: string
    try {
      body = await readBodyText(request, MAX_SETTING_BODY_BYTES)
    } catch (error) {
      if (!(error instanceof RequestTooLargeError)) throw error
      log.warn('request refused', { method: request.method, path: new URL(request.url).pathname, status: error.status, detail: error.message })
      return refusalResponse(error)
    }
    const state = body.trim().replace(/^"|"$/g, '')
    if (state !== 'on' && state !== 'off') {
      set.status = 400
      return { detail: 'Invalid state' }
    }
    await apply(state === 'on')
    return Response.json(state)
  }
}
