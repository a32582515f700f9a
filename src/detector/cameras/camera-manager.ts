import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CAMERA_PHASES, type CameraConfig, type CameraDetections, type CameraStatus, type ImageMetadata } from '../../contract/index.ts'
import { writeFileAtomic } from '../../foundation/atomic-file.ts'
import { errorMessage, type Logger } from '../../foundation/log.ts'
import type { MetricsRegistry } from '../../foundation/metrics.ts'
import type { ImageInput } from '../../inference/image-decoding.ts'
import type { DetectOptions } from '../detection-service.ts'
import { CameraConfigError, parseCameraConfig, parseCamerasFile } from './camera-config.ts'
import { DEFAULT_CAMERA_TIMINGS, type CameraTimings } from './camera-state.ts'
import { CameraStream, type CameraFrame } from './camera-stream.ts'

/** `GET/DELETE /cameras/<id>` of a camera that does not exist: 404. */
export class UnknownCameraError extends Error {
  constructor(id: string) {
    super(`no camera ${JSON.stringify(id)}`)
    this.name = 'UnknownCameraError'
  }
}

export type DetectionsListener = (detections: CameraDetections) => void
/** Every camera's detections: the key a listener of all cameras subscribes under. */
export const ALL_CAMERAS = '*'

export interface CameraManagerOptions {
  dataFolder: string
  /** `--cameras` / `CAMERAS_FILE`: read at start when the data folder holds no cameras of its own yet */
  camerasFile?: string
  detect(image: ImageInput, options: DetectOptions): Promise<ImageMetadata>
  log: Logger
  metrics: MetricsRegistry
  timings?: Partial<CameraTimings>
}

/**
 * The detector's cameras: their configuration (persisted in `<data>/cameras.json` at every change), one
 * CameraStream each, and the listeners of their detections. Changing a camera restarts that camera only.
 */
export class CameraManager {
  private readonly streams = new Map<string, CameraStream>()
  private readonly listeners = new Map<string, Set<DetectionsListener>>()
  /** what each subscription does when its camera goes away or the node stops (an SSE stream ends) */
  private readonly endings = new Map<DetectionsListener, { id: string; end: () => void }>()
  private changes: Promise<unknown> = Promise.resolve()
  private running = false
  private readonly timings: CameraTimings
  private readonly frames
  private readonly reconnects

  private constructor(private readonly options: CameraManagerOptions, private configs: CameraConfig[]) {
    this.timings = { ...DEFAULT_CAMERA_TIMINGS, ...options.timings }
    this.frames = options.metrics.counter('detector_camera_frames_total', 'camera frames by camera and outcome: received from ffmpeg, detected, dropped (a newer frame replaced it before the model was free), failed')
    this.reconnects = options.metrics.counter('detector_camera_reconnects_total', 'camera connections started again after a loss, by camera')
    const state = options.metrics.gauge('detector_camera_state', 'camera state by camera and state (1: the state it is in)')
    state.collect(() => {
      state.clear()
      for (const stream of this.streams.values()) {
        for (const phase of CAMERA_PHASES) state.set(stream.phase === phase ? 1 : 0, { camera: stream.config.id, state: phase })
      }
    })
  }

  /** Reads the cameras (data folder first, else the cameras file); a bad file is a CameraConfigError naming the field. */
  static async open(options: CameraManagerOptions): Promise<CameraManager> {
    const persisted = join(options.dataFolder, 'cameras.json')
    let configs: CameraConfig[] = []
    const text = await readFile(persisted, 'utf8').catch(() => undefined)
    if (text !== undefined) configs = parseCamerasFile(text, persisted)
    else if (options.camerasFile) {
      const given = await readFile(options.camerasFile, 'utf8').catch((error: unknown) => {
        throw new CameraConfigError(`the cameras file ${options.camerasFile} cannot be read: ${errorMessage(error)}`)
      })
      configs = parseCamerasFile(given, options.camerasFile)
    }
    return new CameraManager(options, configs)
  }

  /** Starts every camera (the node calls it once its model is loaded). */
  start(): void {
    this.running = true
    for (const config of this.configs) this.startStream(config)
  }

  private startStream(config: CameraConfig): void {
    const stream = new CameraStream(config, {
      detect: this.options.detect,
      publish: (detections) => this.publish(detections),
      count: (camera, what) => (what === 'reconnect' ? this.reconnects.inc({ camera }) : this.frames.inc({ camera, outcome: what })),
      log: this.options.log,
      timings: this.timings,
    })
    this.streams.set(config.id, stream)
    stream.start()
  }

  list(): CameraStatus[] {
    return this.configs.map((config) => this.streams.get(config.id)?.status() ?? this.idleStatus(config))
  }

  get(id: string): CameraStatus {
    const config = this.configs.find((c) => c.id === id)
    if (!config) throw new UnknownCameraError(id)
    return this.streams.get(id)?.status() ?? this.idleStatus(config)
  }

  private idleStatus(config: CameraConfig): CameraStatus {
    return {
      id: config.id, config, state: config.enabled ? 'connecting' : 'disabled', error: null, detection_error: null, frame_size: null,
      frames_received: 0, frames_detected: 0, frames_dropped: 0, reconnects: 0, retry_at: null, last_frame_at: null,
    }
  }

  /** The last detected frame of camera `id`, its pixels copied (the camera's own buffer is used again). */
  lastFrame(id: string): CameraFrame | undefined {
    if (!this.configs.some((c) => c.id === id)) throw new UnknownCameraError(id)
    const last = this.streams.get(id)?.last
    if (!last) return undefined
    return { ...last, image: { ...last.image, bytes: new Uint8Array(last.image.bytes) } }
  }

  /**
   * Adds or replaces a camera (`id` from the path wins; a different one in the body is refused). An unchanged
   * camera keeps running; a changed one restarts alone. Resolves once the change is persisted.
   */
  put(id: string, raw: unknown): Promise<{ created: boolean; status: CameraStatus }> {
    const body = raw && typeof raw === 'object' && !Array.isArray(raw) ? raw as Record<string, unknown> : undefined
    if (!body) return Promise.reject(new CameraConfigError('camera: expected a JSON object'))
    if (body.id !== undefined && body.id !== id) return Promise.reject(new CameraConfigError(`id: ${JSON.stringify(body.id)} differs from the camera's path id ${JSON.stringify(id)}`))
    let config: CameraConfig
    try {
      config = parseCameraConfig({ ...body, id })
    } catch (error) {
      return Promise.reject(error)
    }
    return this.change(async () => {
      const index = this.configs.findIndex((c) => c.id === id)
      const before = this.configs[index]
      if (before && JSON.stringify(before) === JSON.stringify(config)) return { created: false, status: this.get(id) }
      const configs = [...this.configs]
      if (index >= 0) configs[index] = config
      else configs.push(config)
      await this.persist(configs)
      await this.streams.get(id)?.stop()
      this.streams.delete(id)
      if (this.running) this.startStream(config)
      return { created: index < 0, status: this.get(id) }
    })
  }

  remove(id: string): Promise<void> {
    return this.change(async () => {
      if (!this.configs.some((c) => c.id === id)) throw new UnknownCameraError(id)
      await this.persist(this.configs.filter((c) => c.id !== id))
      await this.streams.get(id)?.stop()
      this.streams.delete(id)
      this.endSubscriptions(id)
    })
  }

  /** Changes run one after another, so the file and the running cameras never disagree. */
  private change<T>(work: () => Promise<T>): Promise<T> {
    const next = this.changes.then(work)
    this.changes = next.catch(() => undefined)
    return next
  }

  private async persist(configs: CameraConfig[]): Promise<void> {
    await writeFileAtomic(join(this.options.dataFolder, 'cameras.json'), `${JSON.stringify({ cameras: configs }, null, 2)}\n`)
    this.configs = configs
  }

  /** Calls `listener` with every detection of camera `id` (ALL_CAMERAS: of every camera); returns the unsubscribe. */
  subscribe(id: string, listener: DetectionsListener, onEnd?: () => void): () => void {
    if (id !== ALL_CAMERAS && !this.configs.some((c) => c.id === id)) throw new UnknownCameraError(id)
    let set = this.listeners.get(id)
    if (!set) this.listeners.set(id, (set = new Set()))
    set.add(listener)
    if (onEnd) this.endings.set(listener, { id, end: onEnd })
    return () => {
      set.delete(listener)
      this.endings.delete(listener)
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id)
    }
  }

  /** Ends the subscriptions of camera `id` (undefined: all of them: the node is stopping). */
  endSubscriptions(id?: string): void {
    for (const [listener, ending] of [...this.endings]) {
      if (id !== undefined && ending.id !== id) continue
      this.endings.delete(listener)
      this.listeners.get(ending.id)?.delete(listener)
      ending.end()
    }
  }

  private publish(detections: CameraDetections): void {
    for (const key of [detections.camera_id, ALL_CAMERAS]) {
      for (const listener of this.listeners.get(key) ?? []) {
        try {
          listener(detections)
        } catch (error) {
          this.options.log.warn('a detections listener failed', { error: errorMessage(error) })
        }
      }
    }
  }

  /** Ends every camera's ffmpeg and detection loop. */
  async stop(): Promise<void> {
    this.running = false
    this.endSubscriptions()
    await this.changes
    await Promise.all([...this.streams.values()].map((stream) => stream.stop()))
    this.streams.clear()
  }
}
