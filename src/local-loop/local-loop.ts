import { Elysia } from 'elysia'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { LoopImageState, ProjectGeneratorRequest } from '../contract/index.ts'
import { createSocketIo, serve, type RunningServer } from '../node/http-server.ts'
import { clipText, createLogger, errorMessage, MAX_ERROR_ANSWER_CHARACTERS, type Logger } from '../foundation/log.ts'
import { MetricsRegistry, type Counter } from '../foundation/metrics.ts'
import { createAdminRoutes } from './admin-routes.ts'
import { createApiRoutes } from './api-routes.ts'
import { checkDeclaredLength, json } from './http-body.ts'
import { asLoopRequestError, LoopRequestError, notFound } from './loop-errors.ts'
import { LoopOperations, type GeneratedProject } from './loop-operations.ts'
import { LoopStore, type StoredModel, type StoredTraining } from './loop-store.ts'
import { NodeHub, type ConnectedNode, type NodeSelector, type ReceivedStatus, type ReceivedTrainingUpdate, type SocketCounters } from './node-hub.ts'
import { RateLimiter, type RateLimit } from './rate-limiter.ts'
import { SessionStore } from './session-store.ts'

/**
 * An embedded Learning Loop speaking the node-facing API (REST §4 + socket.io §5) on one port, persisted
 * in `dataFolder` (SQLite + files). The default peer when no LOOP_HOST is set and in every integration test.
 *
 *   const loop = await LocalLoop.start({ port: 0, hostname: '127.0.0.1', dataFolder })
 *   …  loop.url, loop.createProject(…), loop.emitToNode(…)
 *   await loop.stop()
 */
export interface LocalLoopOptions {
  dataFolder: string
  /** 0 (default) picks a free port */
  port?: number
  /** default 127.0.0.1 */
  hostname?: string
  /** with both set, only these credentials log in; otherwise any credentials do (sessions still required) */
  username?: string
  password?: string
  /** requests per second per client on /api (a number, or {perSecond, burst}); unset: unlimited */
  rateLimit?: number | RateLimit | null
  /** project created on first start (a fresh data folder); default local/demo, false for none */
  seedProject?: { organization: string; project: string } | false
  /** largest multipart upload in bytes (default 256 MiB); larger requests get 413 */
  maxUploadBytes?: number
  /** how long emitToNode waits for a node's ack (default 10 s) */
  ackTimeoutMs?: number
  /** refuse socket.io connections without a session cookie (default true) */
  requireSocketLogin?: boolean
  /** reported by GET /api/status */
  version?: string
}

export interface RequestCounts {
  total: number
  rate_limited: number
  by_route: Record<string, number>
  by_status: Record<string, number>
}

export interface LoopStats {
  uptime_seconds: number
  requests: RequestCounts
  sockets: SocketCounters & { connected: number }
  sessions: number
  rate_limit: RateLimit | null
}

export interface ImageSummary {
  id: string
  /** the uploaded JPEG's file name (null for generated images) */
  file_name: string | null
  state: LoopImageState
  set: 'train' | 'test'
  tags: string[]
  width: number
  height: number
  created: string
  source: string | null
  box_annotations: number
  point_annotations: number
  segmentation_annotations: number
  box_detections: number
  point_detections: number
  segmentation_detections: number
  classification_detections: number
  has_trainer_detections: boolean
}

export interface NodeStatusSummary {
  nodeId: string
  event: ReceivedStatus['event']
  status: unknown
  receivedAt: number
  connected: boolean
  sid: string
}

export interface ModelUploadRequest {
  format: string
  /** a zip whose entries are the format's files (and optionally model.json) */
  zip?: Uint8Array
  /** or the files themselves */
  files?: Record<string, Uint8Array | string>
  /** default: the project's newest training (training 1 is created when there is none) */
  trainingNumber?: number
  /** add the format to this model instead (or replace it) */
  modelId?: string
  comment?: string | null
}

export interface StartTrainingRequest {
  node: NodeSelector
  modelVariant?: string
  hyperparameters?: Record<string, unknown>
  baseModelUuid?: string | null
  timeoutMs?: number
}

const DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024
const MAX_JSON_BYTES = 16 * 1024 * 1024
const STOP_GRACE_MS = 2_000
const MAX_ROUTES_COUNTED = 200

export class LocalLoop {
  readonly url: string
  readonly port: number
  readonly dataFolder: string
  readonly operations: LoopOperations
  readonly metrics: MetricsRegistry
  private rateLimiter: RateLimiter | undefined
  private readonly requestCounts: RequestCounts = { total: 0, rate_limited: 0, by_route: {}, by_status: {} }
  private readonly startedAt = Date.now()
  private stopped = false

  private constructor(
    readonly store: LoopStore,
    private readonly sessions: SessionStore,
    private readonly hub: NodeHub,
    private readonly server: RunningServer,
    operations: LoopOperations,
    metrics: MetricsRegistry,
    rateLimiter: RateLimiter | undefined,
    private readonly log: Logger,
  ) {
    this.url = server.url
    this.port = server.port
    this.dataFolder = store.dataFolder
    this.operations = operations
    this.metrics = metrics
    this.rateLimiter = rateLimiter
  }

  static async start(options: LocalLoopOptions): Promise<LocalLoop> {
    const log = createLogger('local-loop')
    const dataFolder = resolve(options.dataFolder)
    const firstStart = !existsSync(join(dataFolder, 'loop.sqlite'))
    const store = await LoopStore.open(dataFolder)
    try {
      const seed = options.seedProject ?? { organization: 'local', project: 'demo' }
      if (firstStart && seed) store.ensureProject(seed.organization, seed.project)
      const credentials = options.username !== undefined && options.password !== undefined && (options.username !== '' || options.password !== '')
        ? { username: options.username, password: options.password }
        : undefined
      const sessions = new SessionStore(credentials)
      const metrics = new MetricsRegistry()
      const requestCounter = metrics.counter('local_loop_requests_total', 'HTTP requests by route and status')
      const socketIo = createSocketIo({ log: log.child('socket.io'), metrics })
      const hub = new NodeHub(socketIo.io, {
        store, sessions, log: log.child('sockets'), requireLogin: options.requireSocketLogin ?? true, ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
        handshakeCounter: metrics.counter('local_loop_socket_handshakes_total', 'socket.io connection attempts by result'),
        eventCounter: metrics.counter('local_loop_socket_events_total', 'socket.io events received by event and result'),
      })
      const operations = new LoopOperations(store, log.child('operations'))
      const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES
      const rateLimiter = toRateLimiter(options.rateLimit)
      // the instance is needed by the admin routes, which are needed by the server; bind late
      let instance: LocalLoop | undefined
      const running = serve(
        LocalLoop.buildApp(requestCounter, {
          getInstance: () => instance!, operations, store, sessions, log, maxUploadBytes, version: options.version ?? '0.0.0',
        }),
        { port: options.port ?? 0, hostname: options.hostname ?? '127.0.0.1', socketIo, maxRequestBodyBytes: maxUploadBytes + 1024 * 1024, onRefusal: (request, refusal) => {
          instance?.countRequest(refusal.status === 431 ? '(headers too large)' : '(too large)', refusal.status, requestCounter)
          log.warn('request refused', { method: request.method, path: new URL(request.url).pathname, status: refusal.status, detail: refusal.message })
        } },
      )
      instance = new LocalLoop(store, sessions, hub, running, operations, metrics, rateLimiter, log)
      const loopback = ['127.0.0.1', 'localhost', '::1'].includes(options.hostname ?? '127.0.0.1')
      if (!loopback && !credentials) log.warn('listening beyond loopback without credentials: anyone who can reach the port can log in and use the admin API', { hostname: options.hostname })
      log.info('local loop listening', { url: running.url, dataFolder, credentials: credentials ? 'configured' : 'any', rateLimit: rateLimiter ? { perSecond: rateLimiter.perSecond, burst: rateLimiter.burst } : null })
      return instance
    } catch (error) {
      store.close()
      throw error
    }
  }

  private static buildApp(requestCounter: Counter, deps: {
    getInstance: () => LocalLoop; operations: LoopOperations; store: LoopStore; sessions: SessionStore; log: Logger; maxUploadBytes: number; version: string
  }): Elysia {
    const { log } = deps
    const count = (route: string, status: number) => deps.getInstance().countRequest(route, status, requestCounter)
    const app = new Elysia()
      // body caps and rate limits apply to the REST and admin APIs; socket.io and /metrics pass untouched
      .onRequest(({ request, server }) => {
        const path = new URL(request.url).pathname
        const isApi = path.startsWith('/api/')
        if (!isApi && !path.startsWith('/admin/')) return
        try {
          checkDeclaredLength(request, deps.maxUploadBytes)
        } catch (error) {
          count('(too large)', 413)
          const refused = asLoopRequestError(error)
          return json(refused.status, { detail: refused.message })
        }
        if (!isApi) return
        const loop = deps.getInstance()
        const client = server?.requestIP(request)?.address ?? 'unknown'
        const decision = loop.rateLimiter?.take(client, Date.now())
        if (decision && !decision.allowed) {
          count('(rate limited)', 429)
          loop.requestCounts.rate_limited++
          return json(429, { detail: `too many requests from ${client}: retry after ${decision.retryAfterSeconds} s` }, { 'retry-after': String(decision.retryAfterSeconds) })
        }
      })
      .onAfterHandle({ as: 'global' }, ({ request, route, response, set }) => {
        const status = response instanceof Response ? response.status : typeof set.status === 'number' ? set.status : 200
        count(`${request.method} ${route}`, status)
      })
      .onError({ as: 'global' }, ({ request, route, code, error }) => {
        let refused: LoopRequestError
        if (code === 'NOT_FOUND') refused = notFound(`no route ${request.method} ${new URL(request.url).pathname}`)
        else if (code === 'PARSE') refused = new LoopRequestError(400, `malformed request body: ${errorMessage(error)}`)
        else if (code === 'VALIDATION') refused = new LoopRequestError(422, errorMessage(error))
        else refused = asLoopRequestError(error)
        count(route ? `${request.method} ${route}` : '(no route)', refused.status)
        if (refused.status >= 500) log.error('request failed', { method: request.method, route, error })
        else if (refused.status !== 404 && refused.status !== 401) log.warn('request refused', { method: request.method, route, status: refused.status, detail: refused.message })
        return json(refused.status, { detail: clipText(refused.message, MAX_ERROR_ANSWER_CHARACTERS) }, refused.headers)
      })
      .get('/metrics', () => new Response(deps.getInstance().metrics.render(), { headers: { 'content-type': 'text/plain; version=0.0.4' } }))
      .use(createApiRoutes({ operations: deps.operations, store: deps.store, sessions: deps.sessions, log, maxUploadBytes: deps.maxUploadBytes, maxJsonBytes: MAX_JSON_BYTES, version: deps.version }))
      .use(createAdminRoutes({ getLoop: deps.getInstance, sessions: deps.sessions, maxUploadBytes: deps.maxUploadBytes, maxJsonBytes: MAX_JSON_BYTES }))
    return app as unknown as Elysia
  }

  private countRequest(route: string, status: number, counter: Counter): void {
    const counts = this.requestCounts
    counts.total++
    // bounded: unknown paths all count as one route
    const key = route in counts.by_route || Object.keys(counts.by_route).length < MAX_ROUTES_COUNTED ? route : '(other)'
    counts.by_route[key] = (counts.by_route[key] ?? 0) + 1
    counts.by_status[String(status)] = (counts.by_status[String(status)] ?? 0) + 1
    counter.inc({ route: key, status: String(status) })
  }

  /** Stops accepting requests, disconnects nodes, waits briefly for in-flight requests, closes the store. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.hub.disconnectAll()
    let timer: ReturnType<typeof setTimeout> | undefined
    const graceful = this.server.stop().then(() => true, () => true)
    const finished = await Promise.race([graceful, new Promise<false>((done) => { timer = setTimeout(() => done(false), STOP_GRACE_MS) })])
    // a pending timer would keep a CLI process alive after everything else closed
    clearTimeout(timer)
    if (!finished) await this.server.stop(true).catch(() => undefined)
    this.store.close()
    this.log.info('local loop stopped', { url: this.url })
  }

  // ---------------------------------------------------------------- rate limit and stats

  setRateLimit(limit: number | RateLimit | null): void {
    this.rateLimiter = toRateLimiter(limit)
  }

  rateLimit(): RateLimit | null {
    return this.rateLimiter ? { perSecond: this.rateLimiter.perSecond, burst: this.rateLimiter.burst } : null
  }

  stats(): LoopStats {
    const counts = this.requestCounts
    return {
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      requests: { total: counts.total, rate_limited: counts.rate_limited, by_route: { ...counts.by_route }, by_status: { ...counts.by_status } },
      sockets: { ...this.hub.counts(), connected: this.hub.connectedNodes().length },
      sessions: this.sessions.size,
      rate_limit: this.rateLimit(),
    }
  }

  // ---------------------------------------------------------------- projects, images, models

  /** Generates a project (§4 T2) in `organization`. */
  createProject(organization: string, request: ProjectGeneratorRequest, options: { seed?: number | null } = {}): Promise<GeneratedProject> {
    return this.operations.generateProject(organization, request, options.seed)
  }

  deleteProject(organization: string, project: string, options: { keepImages?: boolean } = {}): Promise<boolean> {
    return this.store.deleteProject(organization, project, options.keepImages ?? false)
  }

  listProjects(): { organization: string; project: string; counts: Record<string, number>; categories: number; models: number }[] {
    return this.store.listProjects().map((p) => ({
      organization: p.organization, project: p.project, counts: this.store.images.counts(p.organization, p.project),
      categories: this.store.categories(p.organization, p.project).length, models: this.store.models(p.organization, p.project).length,
    }))
  }

  listImages(organization: string, project: string, state?: LoopImageState): ImageSummary[] {
    this.store.requireProject(organization, project)
    return this.store.images.list(organization, project, state).map((image) => ({
      id: image.id, file_name: image.fileName, state: image.state, set: image.set, tags: image.tags, width: image.width, height: image.height,
      created: image.created, source: image.source,
      box_annotations: image.box_annotations.length, point_annotations: image.point_annotations.length,
      segmentation_annotations: image.segmentation_annotations.length,
      box_detections: image.box_detections.length, point_detections: image.point_detections.length,
      segmentation_detections: image.segmentation_detections.length, classification_detections: image.classification_detections.length,
      has_trainer_detections: image.trainer_detections !== null,
    }))
  }

  /** Adds an image directly (as the Loop's web upload would), with the given id or a new one; returns the id. */
  addImage(organization: string, project: string, image: { jpeg: Uint8Array; id?: string; state?: LoopImageState; tags?: string[]; source?: string | null }): Promise<string> {
    return this.operations.addImage(organization, project, image)
  }

  /** Full image data as §4 #5 returns it. */
  imageData(organization: string, project: string, id: string): Record<string, unknown> {
    this.store.requireProject(organization, project)
    const image = this.store.images.get(organization, project, id)
    if (!image) throw notFound(`image ${id} does not exist in ${organization}/${project}`)
    return this.operations.imageData(image)
  }

  models(organization: string, project: string): { models: Record<string, unknown>[] } {
    return this.operations.modelsListing(organization, project, new URL(this.url).host)
  }

  /** Stores one model format, as a trainer upload (#8) would, or adds it to `modelId`. */
  async uploadModel(organization: string, project: string, upload: ModelUploadRequest): Promise<StoredModel> {
    this.store.requireProject(organization, project)
    let target: { trainingNumber: number } | { modelId: string }
    if (upload.modelId) {
      target = { modelId: upload.modelId }
    } else if (upload.trainingNumber !== undefined) {
      target = { trainingNumber: upload.trainingNumber }
    } else {
      const newest = this.store.trainings(organization, project)[0] ?? this.store.createTraining(organization, project, { state: 'imported' })
      target = { trainingNumber: newest.number }
    }
    if (upload.zip) return (await this.operations.uploadModelZip(organization, project, target, upload.format, upload.zip, upload.comment)).model
    const parts = Object.entries(upload.files ?? {}).map(([fileName, content]) => ({
      fileName, bytes: typeof content === 'string' ? new TextEncoder().encode(content) : content,
    }))
    return (await this.operations.uploadModelFiles(organization, project, target, upload.format, parts, { requireModelJson: false, comment: upload.comment })).model
  }

  /** Sets the model detectors should deploy (§4 #10), by id or version (a bare string is tried as both). */
  setDeploymentTarget(organization: string, project: string, which: string | { modelId?: string | null; version?: string | null }): StoredModel {
    const selector = typeof which === 'string'
      ? (this.store.model(organization, project, which) ? { modelId: which } : { version: which })
      : which
    const model = this.operations.resolveModel(organization, project, selector)
    return this.store.setDeploymentTarget(organization, project, model.id)
  }

  clearDeploymentTarget(organization: string, project: string): void {
    this.store.requireProject(organization, project)
    this.store.clearDeploymentTarget(organization, project)
  }

  deploymentTarget(organization: string, project: string): StoredModel | undefined {
    return this.store.deploymentTarget(organization, project)
  }

  trainings(organization: string, project: string): StoredTraining[] {
    this.store.requireProject(organization, project)
    return this.store.trainings(organization, project)
  }

  detectorStatuses(organization: string, project: string): { uuid: string; status: unknown; receivedAt: number }[] {
    this.store.requireProject(organization, project)
    return this.store.detectorStatuses(organization, project)
  }

  // ---------------------------------------------------------------- nodes

  connectedNodes(): ConnectedNode[] {
    return this.hub.connectedNodes()
  }

  /** Every status received from `nodeId` (or from all nodes), oldest first. */
  statusHistory(nodeId?: string): ReceivedStatus[] {
    return this.hub.statusHistory(nodeId)
  }

  /** The latest status of every node that ever sent one, and whether it is connected now. */
  nodeStatuses(): NodeStatusSummary[] {
    const latest = new Map<string, ReceivedStatus>()
    for (const entry of this.hub.statusHistory()) latest.set(entry.nodeId, entry)
    const connected = new Set(this.hub.connectedNodes().map((n) => n.sid))
    return [...latest.values()].map((entry) => ({
      nodeId: entry.nodeId, event: entry.event, status: entry.status, receivedAt: entry.receivedAt, sid: entry.sid, connected: connected.has(entry.sid),
    }))
  }

  /** `update_training` payloads received, oldest first. */
  trainingUpdates(): ReceivedTrainingUpdate[] {
    return this.hub.receivedTrainingUpdates()
  }

  /** Sends `event` with `args` to a connected node and resolves with its ack (rejects after the ack timeout). */
  emitToNode(target: NodeSelector, event: string, ...args: unknown[]): Promise<unknown> {
    return this.hub.emit(target, event, args)
  }

  /** emitToNode with a timeout of its own, or without waiting for an ack (`restart`). */
  emit(target: NodeSelector, event: string, args: unknown[], options: { timeoutMs?: number; expectAck?: boolean } = {}): Promise<unknown> {
    return this.hub.emit(target, event, args, options)
  }

  /**
   * Creates training n+1 in the project and sends `begin_training(org, project, details)` (§5.2) to the
   * trainer; returns the training and the trainer's ack.
   */
  async startTraining(organization: string, project: string, request: StartTrainingRequest): Promise<{ training: StoredTraining; ack: unknown }> {
    this.store.requireProject(organization, project)
    const node = this.hub.findNode(request.node)
    const training = this.store.createTraining(organization, project, {
      state: 'begin_training sent', trainerId: node.nodeId ?? node.sid, modelVariant: request.modelVariant ?? '',
      hyperparameters: request.hyperparameters ?? {}, baseModelUuid: request.baseModelUuid ?? null,
    })
    const details = {
      id: training.id, categories: this.store.categories(organization, project), hyperparameters: training.hyperparameters,
      training_number: training.number, model_variant: training.modelVariant, base_model_uuid: training.baseModelUuid,
    }
    let ack: unknown
    try {
      ack = await this.hub.emit(node.sid, 'begin_training', [organization, project, details], { timeoutMs: request.timeoutMs })
    } catch (error) {
      this.store.updateTraining(organization, project, training.number, { state: 'begin_training not acknowledged' })
      throw error
    }
    const accepted = typeof ack === 'object' && ack !== null && (ack as { success?: unknown }).success === true
    this.store.updateTraining(organization, project, training.number, { state: accepted ? 'running' : 'refused by trainer' })
    return { training: this.store.training(organization, project, training.number)!, ack }
  }

  stopTraining(target: NodeSelector, timeoutMs?: number): Promise<unknown> {
    return this.hub.emit(target, 'stop_training', [], { timeoutMs })
  }

  abortTraining(target: NodeSelector, timeoutMs?: number): Promise<unknown> {
    return this.hub.emit(target, 'abort_training', [], { timeoutMs })
  }
}

function toRateLimiter(limit: number | RateLimit | null | undefined): RateLimiter | undefined {
  if (limit === null || limit === undefined) return undefined
  return new RateLimiter(typeof limit === 'number' ? { perSecond: limit } : limit)
}
