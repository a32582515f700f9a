import { mkdir, readdir, rm } from 'node:fs/promises'
import {
  OPERATION_MODES, isOneOf, type AboutResponse, type ImageMetadata, type InferenceInfo, type ModelVersionResponse, type OperationMode, type OutboxMode,
} from '../contract/index.ts'
import type { NodeConfig } from '../config/node-config.ts'
import { ConfigError } from '../config/read-settings.ts'
import { DataExchange } from '../loop/data-exchange.ts'
import { builtinModelDir } from '../inference/builtin-model.ts'
import { createLogger, errorMessage, quoteInput, type Logger } from '../foundation/log.ts'
import { LoopConnection } from '../node/loop-connection.ts'
import { LocalLoop } from '../local-loop/local-loop.ts'
import { NodeRuntime, settledWithin } from '../node/node-runtime.ts'
import { resolveNodeHome } from '../node/node-identity.ts'
import type { ImageInput } from '../inference/image-decoding.ts'
import { ActiveDetector } from './active-detector.ts'
import { DetectionService, type DetectOptions, type LastDetection, type UploadItem } from './detection-service.ts'
import type { DetectorApi, DetectorStatusData } from './detector-api.ts'
import { OnnxDetectorFactory, type DetectorLogic, type DetectorLogicFactory } from './detector-logic.ts'
import { ModelStore } from './model-store.ts'
import { ModelUpdater } from './model-updater.ts'
import { Outbox, type OutboxOptions } from './outbox.ts'
import { RelevanceFilter } from './relevance-filter.ts'
import { registerDetectorRoutes } from './rest-routes.ts'
import { registerDetectorEvents } from './socket-events.ts'
import { registerStatusPage } from './status-page.ts'
import { CameraManager } from './cameras/camera-manager.ts'
import { registerCameraRoutes } from './cameras/camera-routes.ts'
import { cameraSocketHandlers, publishDetectionsTo } from './cameras/camera-socket-events.ts'
import type { CameraTimings } from './cameras/camera-state.ts'

export const DEFAULT_DETECTOR_PORT = 8004
/** Of the shutdown's time, what is kept for disposing the model and closing the Loop connection. */
const DISPOSE_RESERVE_MS = 1_000
/** …and of that, what is kept for closing the Loop connection (an embedded local loop stops there). */
const LOOP_CLOSE_RESERVE_MS = 300

export interface DetectorNodeOptions {
  config: NodeConfig
  name?: string
  /** builds a DetectorLogic per model version; default: ONNX packages on the inference engine */
  factory?: DetectorLogicFactory
  /** model served until the Loop deploys one; default: the built-in face model; `null`: none */
  fallbackModelDir?: string | null
  /** outbox tuning (upload interval, limits over OUTBOX_MAX_ITEMS/BYTES, write queue); defaults as upstream: every 5 s, batches of 20 */
  outbox?: Pick<OutboxOptions, 'intervalMs' | 'batchSize' | 'limits' | 'minFreeDiskBytes' | 'writeConcurrency' | 'writeBacklog'>
  log?: Logger
  /** camera watchdog and backoff timings (tests shorten them) */
  cameraTimings?: Partial<CameraTimings>
}

/**
 * The detector node (§7): REST and socket.io on one port, model version control with zero-downtime swaps,
 * the relevance filter and a crash-safe outbox. With no LOOP_HOST it runs an embedded local loop.
 */
export class DetectorNode implements DetectorApi {
  operationMode: OperationMode = 'startup'
  private constructor(
    readonly runtime: NodeRuntime,
    readonly loop: LoopConnection,
    readonly dataFolder: string,
    readonly store: ModelStore,
    readonly active: ActiveDetector,
    readonly outbox: Outbox,
    readonly detections: DetectionService,
    readonly updater: ModelUpdater,
    readonly cameras: CameraManager,
    private readonly options: DetectorNodeOptions,
  ) {}

  static async start(options: DetectorNodeOptions): Promise<DetectorNode> {
    const node = await DetectorNode.create(options)
    await node.runtime.start()
    return node
  }

  /** Everything but listening; `runtime.start()` starts it (the CLI installs signal handlers in between). */
  static async create(options: DetectorNodeOptions): Promise<DetectorNode> {
    const { config } = options
    // a detector serves one project of its Loop; without one every call went to /api//projects//…
    if (config.loop.urls && (!config.loop.organization || !config.loop.project)) {
      throw new ConfigError(`LOOP_ORGANIZATION and LOOP_PROJECT must be set when LOOP_HOST is (${config.loop.urls.base}): the detector serves one project of that Loop`)
    }
    const log = options.log ?? createLogger('detector')
    const name = options.name ?? 'detector'
    const { dataFolder, uuid } = await resolveNodeHome({ configured: config.dataFolder, name, log })
    const runtime = new NodeRuntime({
      name, uuid, nodeType: 'detector', port: config.port ?? DEFAULT_DETECTOR_PORT, hostname: config.hostname,
      socketIo: true, skipRepeatOnStart: config.skipRepeatOnStart, log,
    })
    // a bad cameras file stops the start before anything is opened; the cameras start once the model is loaded
    const cameras = await CameraManager.open({
      dataFolder, camerasFile: config.detector.camerasFile, log: log.child('cameras'), metrics: runtime.metrics, timings: options.cameraTimings,
      detect: (image, detectOptions) => detections.detect(image, detectOptions, 'camera'),
    })
    const loop = await LoopConnection.open({
      config, dataFolder, nodeType: 'detector', socket: false, log, metrics: runtime.metrics, startEmbeddedLoop: (loopOptions) => LocalLoop.start(loopOptions),
    })
    const exchange = new DataExchange(loop.rest, loop.context)
    const factory = options.factory ?? new OnnxDetectorFactory({
      backend: config.inference.backend as never, threads: config.inference.threads, workers: config.inference.workers, ortLibDir: config.inference.ortLibDir,
      spinWait: config.inference.spinWait, maxImagePixels: config.inference.maxImagePixels,
      batchWindowMs: config.inference.batchWindowMs, maxBatch: config.inference.maxBatch,
      metrics: runtime.metrics, modelFormat: config.detector.modelFormat,
    })
    const store = new ModelStore(dataFolder)
    const active = new ActiveDetector()
    // images go up over the node's Loop connection: its CA bundle and, when logged in, its session cookie
    const uploadTarget = { baseUrl: loop.rest.baseUrl, ...loop.context, ca: loop.rest.ca, cookie: () => loop.rest.cookieHeader() }
    const outbox = await Outbox.open({
      ...options.outbox, limits: { ...config.detector.outboxLimits, ...options.outbox?.limits },
      dataFolder, loop: uploadTarget, metrics: runtime.metrics, logger: log.child('outbox'),
    })
    const filter = new RelevanceFilter({ minUncertain: config.detector.minUncertainThreshold, maxUncertain: config.detector.maxUncertainThreshold })
    const detections = new DetectionService({
      active, filter, outbox, log, metrics: runtime.metrics, track: (w) => runtime.track(w), maxImagePixels: config.inference.maxImagePixels,
      defaultSource: name,
    })
    let node: DetectorNode | undefined
    const updater = new ModelUpdater({
      store, active, factory, exchange, log, metrics: runtime.metrics,
      versionControlDefault: config.detector.versionControlDefault,
      syncCycles: config.detector.syncCycles,
      exclusiveModelBuild: config.detector.exclusiveModelBuild,
      operationMode: () => node?.operationMode ?? 'startup',
      errors: runtime.status.errors ?? (runtime.status.errors = {}),
      statusBase: () => ({ uuid, name, state: 'online', uptime: runtime.uptimeSeconds, operation_mode: node?.operationMode ?? 'startup' }),
    })
    node = new DetectorNode(runtime, loop, dataFolder, store, active, outbox, detections, updater, cameras, options)
    node.wire()
    return node
  }

  get url(): string {
    return this.runtime.url
  }

  /** AboutResponse (§6.8). */
  about(): AboutResponse {
    const logic = this.active.logic
    return {
      operation_mode: this.operationMode,
      state: 'online',
      model_info: logic ? { ...logic.modelInfo, model_root_path: this.active.version ? this.store.versionFolder(this.active.version) : null } : null,
      target_model: this.updater.target?.version ?? null,
      version_control: this.updater.mode,
      ...(logic?.pool ? { inference: inferenceInfo(logic) } : {}),
    }
  }

  detect(image: ImageInput, options: DetectOptions, route: string): Promise<ImageMetadata> {
    return this.detections.detect(image, options, route)
  }

  detectBatch(images: ImageInput[], options: DetectOptions, route: string): Promise<ImageMetadata[]> {
    return this.detections.detectBatch(images, options, route)
  }

  upload(images: ImageInput | UploadItem[], metadata: ImageMetadata, priority: boolean): Promise<void> {
    return this.detections.upload(images, metadata, priority)
  }

  lastDetection(): Promise<LastDetection | undefined> {
    return this.detections.lastDetection()
  }

  updatingTo(): string | undefined {
    return this.active.updatingTo
  }

  /** ModelVersionResponse (§6.8): current, target, Loop and local versions. */
  async modelVersions(): Promise<ModelVersionResponse> {
    return this.updater.versionResponse(await this.store.localVersions())
  }

  setVersionMode(raw: unknown): Promise<void> {
    return this.updater.setVersionMode(raw)
  }

  outboxMode(): OutboxMode {
    return this.outbox.getMode()
  }

  async setOutboxMode(mode: string): Promise<void> {
    await this.outbox.setMode(mode)
  }

  /** What the status page polls: model, modes, outbox and the last detection's metadata. */
  statusData(): DetectorStatusData {
    const { outbox } = this
    const logic = this.active.logic
    return {
      now: Date.now(),
      model: logic ? { version: logic.modelInfo.version, backend: logic.backend, categories: logic.modelInfo.categories?.length ?? 0 } : null,
      inference: logic?.pool ? inferenceInfo(logic) : null,
      operation_mode: this.operationMode,
      version_control: this.updater.mode,
      target_version: this.updater.target?.version ?? null,
      outbox: {
        mode: outbox.getMode(), priority: outbox.count('priority'), normal: outbox.count('normal'), bytes: outbox.bytes(),
        uploaded: outbox.totals.uploaded, rejected: outbox.totals.rejected, dropped: outbox.totals.dropped,
      },
      last: this.detections.lastDetectionMetadata() ?? null,
      cameras: this.cameras.list(),
    }
  }

  /** `PUT /operation_mode`: `detecting` blocks model updates; a change is synced with the Loop at once. */
  async setOperationMode(raw: string): Promise<void> {
    const mode = raw.trim().replace(/^"|"$/g, '')
    if (!isOneOf(OPERATION_MODES, mode)) throw new RangeError(`operation mode must be one of ${OPERATION_MODES.join(', ')}, got ${quoteInput(mode)}`)
    if (mode === this.operationMode) return
    this.operationMode = mode
    await this.updater.syncStatus()
  }

  /** Backdoor `POST /reset`: wipe and recreate the data folder; the outbox and the active model keep working. */
  async reset(): Promise<boolean> {
    try {
      for (const entry of await readdir(this.dataFolder)) {
        if (entry === 'local-loop') continue // the embedded loop's own data lives here while it runs
        await rm(`${this.dataFolder}/${entry}`, { recursive: true, force: true })
      }
      await mkdir(this.dataFolder, { recursive: true })
      await this.outbox.reset()
      this.updater.target = null
      this.updater.mode = this.options.config.detector.versionControlDefault
      return true
    } catch (error) {
      this.runtime.log.error('reset failed', { error: errorMessage(error) })
      return false
    }
  }

  async stop(): Promise<void> {
    await this.runtime.shutdown('stop requested')
  }

  /** The active model's pool in /metrics; a custom logic without one leaves them out. */
  private registerPoolGauges(): void {
    const { metrics } = this.runtime
    const pool = () => this.active.logic?.pool
    const workers = metrics.gauge('detector_inference_workers', 'inference workers serving the active model, by state (planned, live)')
    workers.collect(() => {
      const serving = pool()
      if (serving) for (const [state, value] of [['planned', serving.workers], ['live', serving.liveWorkers]] as const) workers.set(value, { state })
    })
    const threads = metrics.gauge('detector_inference_threads_per_worker', 'intra-op threads of each inference worker of the active model')
    threads.collect(() => void (pool() && threads.set(pool()!.threadsPerWorker)))
    const cores = metrics.gauge('detector_usable_cores', 'CPU cores this process may use (host cores, affinity, cgroup quota) as the thread policy counted them')
    cores.collect(() => void (pool() && cores.set(pool()!.usableCores)))
    const runTime = metrics.gauge('detector_inference_measured_run_seconds', 'fastest session run of the active model timed at load (/about names its threads and the one-thread time)')
    runTime.collect(() => void (pool()?.measurement && runTime.set(pool()!.measurement!.runMs / 1000)))
  }

  private wire(): void {
    const { runtime } = this
    registerStatusPage(runtime.app, this)
    registerDetectorRoutes(runtime.app, this, runtime, { backdoor: this.options.config.useBackdoorControls })
    registerDetectorEvents(runtime.socketIo!.io, this, runtime, cameraSocketHandlers(this.cameras))
    registerCameraRoutes(runtime.app, this.cameras, runtime)
    publishDetectionsTo(runtime.socketIo!.io, this.cameras)
    const backend = runtime.metrics.gauge('detector_model_info', 'the model serving detections (always 1), with its version and backend')
    backend.collect(() => {
      const logic = this.active.logic
      if (logic) backend.set(1, { version: logic.modelInfo.version, backend: logic.backend })
    })
    this.registerPoolGauges()
    runtime.setHooks({
      onStartup: async () => {
        const fallback = this.options.fallbackModelDir === null ? undefined : (this.options.fallbackModelDir ?? safeBuiltinModelDir(runtime.log))
        await this.updater.loadInitialModel(fallback)
        this.operationMode = 'idle'
        this.cameras.start()
      },
      onRepeat: () => this.updater.cycle(),
      // clients following camera events get the end of their stream, not a wait until the connections are cut
      onDraining: () => this.cameras.endSubscriptions(),
      onShutdown: async (deadline) => {
        const left = () => deadline - performance.now()
        // cameras first: their ffmpeg children end and no new frame reaches the model
        await this.cameras.stop()
        // an upload cut off here is not lost: its images stay queued and go at the next start
        await this.outbox.stop(left() / 2)
        // a model build can take long on a slow machine; the process ends beside it
        if (!(await settledWithin(this.updater.settled(), left() - DISPOSE_RESERVE_MS))) runtime.log.warn('a model update was still running at shutdown')
        const closed = this.active.close(left() - DISPOSE_RESERVE_MS).then(
          (cutOff) => cutOff > 0 && runtime.log.warn('detections still running at shutdown were cut off', { requests: cutOff }),
          (error: unknown) => runtime.log.error('freeing the model failed', { error: errorMessage(error) }),
        )
        // a model stuck in its dispose must not keep the Loop connection (or an embedded local loop) open
        if (!(await settledWithin(closed, left() - LOOP_CLOSE_RESERVE_MS))) runtime.log.error('the model could not be freed in time')
        await this.loop.close()
      },
      notReadyReason: () => (this.active.logic ? undefined : this.active.updatingTo ? `updating model to version ${this.active.updatingTo}` : 'no model loaded'),
    })
  }
}

/** How the active model is served, for /about and the status page (the log line at load says the same). */
function inferenceInfo(logic: DetectorLogic): InferenceInfo {
  const pool = logic.pool!
  return {
    backend: logic.backend, workers: pool.workers, live_workers: pool.liveWorkers, threads_per_worker: pool.threadsPerWorker,
    usable_cores: pool.usableCores, reason: pool.reason,
    measured_threads: pool.measurement?.threads ?? null, measured_run_ms: pool.measurement?.runMs ?? null,
    single_thread_run_ms: pool.measurement?.singleThreadRunMs ?? null,
  }
}

function safeBuiltinModelDir(log: Logger): string | undefined {
  try {
    return builtinModelDir()
  } catch (error) {
    log.warn('no built-in model', { error: errorMessage(error) })
    return undefined
  }
}
