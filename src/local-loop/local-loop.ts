import type { Elysia } from 'elysia'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { LoopImageState, ProjectGeneratorRequest } from '../contract/index.ts'
import { createSocketIo, serve, type RunningServer } from '../node/http-server.ts'
import { createLogger, type Logger } from '../foundation/log.ts'
import { MetricsRegistry } from '../foundation/metrics.ts'
import type { ImageSummary, LocalLoopAdmin, LoopStats, ModelUploadRequest, NodeStatusSummary, ProjectSummary, StartTrainingRequest } from './local-loop-admin.ts'
import { notFound } from './loop-errors.ts'
import { buildLoopApp, RequestTraffic } from './loop-http-app.ts'
import { LoopOperations, type GeneratedProject } from './loop-operations.ts'
import { LoopStore, type StoredModel, type StoredTraining } from './loop-store.ts'
import { NodeHub, type ConnectedNode, type NodeSelector, type ReceivedStatus, type ReceivedTrainingUpdate } from './node-hub.ts'
import type { RateLimit } from './rate-limiter.ts'
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

const DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024
const STOP_GRACE_MS = 2_000

export class LocalLoop implements LocalLoopAdmin {
  readonly url: string
  readonly port: number
  readonly dataFolder: string
  private readonly startedAt = Date.now()
  private stopped = false

  private constructor(
    readonly store: LoopStore,
    readonly operations: LoopOperations,
    readonly metrics: MetricsRegistry,
    private readonly sessions: SessionStore,
    private readonly hub: NodeHub,
    private readonly traffic: RequestTraffic,
    private readonly server: RunningServer,
    private readonly log: Logger,
    private readonly app: Elysia,
  ) {
    this.url = server.url
    this.port = server.port
    this.dataFolder = store.dataFolder
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
      const traffic = new RequestTraffic(metrics.counter('local_loop_requests_total', 'HTTP requests by route and status'), options.rateLimit)
      const socketIo = createSocketIo({ log: log.child('socket.io'), metrics })
      const hub = new NodeHub(socketIo.io, {
        store, sessions, log: log.child('sockets'), requireLogin: options.requireSocketLogin ?? true, ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
        handshakeCounter: metrics.counter('local_loop_socket_handshakes_total', 'socket.io connection attempts by result'),
        eventCounter: metrics.counter('local_loop_socket_events_total', 'socket.io events received by event and result'),
      })
      const operations = new LoopOperations(store, log.child('operations'))
      const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES
      // the instance is needed by the admin routes, which are needed by the server; bind late
      let instance: LocalLoop | undefined
      const app = buildLoopApp({
        traffic, metrics, operations, store, sessions, log, maxUploadBytes, version: options.version ?? '0.0.0', getAdmin: () => instance!,
      })
      const running = serve(
        app,
        { port: options.port ?? 0, hostname: options.hostname ?? '127.0.0.1', socketIo, maxRequestBodyBytes: maxUploadBytes + 1024 * 1024, onRefusal: (request, refusal) => {
          traffic.count(refusal.status === 431 ? '(headers too large)' : '(too large)', refusal.status)
          log.warn('request refused', { method: request.method, path: new URL(request.url).pathname, status: refusal.status, detail: refusal.message })
        } },
      )
      instance = new LocalLoop(store, operations, metrics, sessions, hub, traffic, running, log, app)
      const loopback = ['127.0.0.1', 'localhost', '::1'].includes(options.hostname ?? '127.0.0.1')
      if (!loopback && !credentials) log.warn('listening beyond loopback without credentials: anyone who can reach the port can log in and use the admin API', { hostname: options.hostname })
      log.info('local loop listening', { url: running.url, dataFolder, credentials: credentials ? 'configured' : 'any', rateLimit: traffic.rateLimit() })
      return instance
    } catch (error) {
      store.close()
      throw error
    }
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

  /** The routes the loop serves, as Elysia registered them (with their docs); `/openapi.json` documents each. */
  get routes(): Elysia['routes'] {
    return this.app.routes
  }

  // ---------------------------------------------------------------- rate limit and stats

  setRateLimit(limit: number | RateLimit | null): void {
    this.traffic.setRateLimit(limit)
  }

  rateLimit(): RateLimit | null {
    return this.traffic.rateLimit()
  }

  stats(): LoopStats {
    return {
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      requests: this.traffic.snapshot(),
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

  listProjects(): ProjectSummary[] {
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

