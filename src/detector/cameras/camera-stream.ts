import { formatCreated, type CameraConfig, type CameraDetections, type CameraStatus, type ImageMetadata } from '../../contract/index.ts'
import { errorMessage, type Logger } from '../../foundation/log.ts'
import type { ImageInput } from '../../inference/image-decoding.ts'
import type { DetectOptions } from '../detection-service.ts'
import { initialCameraState, nextCameraState, watchdogVerdict, type CameraEvent, type CameraState, type CameraTimings } from './camera-state.ts'
import { ffmpegArguments } from './ffmpeg-arguments.ts'
import { FFMPEG_INSTALL_HINT, FfmpegProcess, findFfmpeg } from './ffmpeg-process.ts'
import { FramePool, FrameSlot } from './frame-slot.ts'

/** A frame as it waits for the model: raw RGB, as ffmpeg wrote it. */
interface Frame {
  rgb: Uint8Array
  width: number
  height: number
  number: number
  at: number
}

/** The last detected frame of a camera, for the status page. */
export interface CameraFrame {
  image: ImageInput
  metadata: ImageMetadata
  at: number
}

/** What a camera needs of the detector: the detection path of /detect, and where the detections go. */
export interface CameraHost {
  detect(image: ImageInput, options: DetectOptions): Promise<ImageMetadata>
  publish(detections: CameraDetections): void
  /** counts a frame by outcome (received, detected, dropped, failed) and a reconnect */
  count(camera: string, what: 'received' | 'detected' | 'dropped' | 'failed' | 'reconnect'): void
  log: Logger
  timings: CameraTimings
}

const WATCHDOG_INTERVAL_MS = 250
/** A failing detection (no model yet, a model swap) is logged at most this often per camera. */
const DETECT_ERROR_LOG_INTERVAL_MS = 30_000

/**
 * One camera: keeps an ffmpeg child connected (watchdog, jittered backoff), hands its frames to the model one
 * at a time through a latest-frame-wins slot, and publishes what the model found. It never throws at its owner:
 * every problem becomes its state and error.
 */
export class CameraStream {
  private state: CameraState
  private ffmpeg: FfmpegProcess | undefined
  private readonly slot = new FrameSlot<Frame>()
  private pool: FramePool | undefined
  private watchdog: ReturnType<typeof setInterval> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private stopped = false
  private frameSize: { width: number; height: number } | null = null
  private frameNumber = 0
  private lastDetectErrorLog = 0
  private detectionError: string | null = null
  readonly totals = { received: 0, detected: 0, dropped: 0 }
  /** the last detected frame: its pixels are a pooled buffer, valid until the next one is detected */
  last: CameraFrame | undefined
  private lastFrame: Frame | undefined

  constructor(readonly config: CameraConfig, private readonly host: CameraHost) {
    this.state = initialCameraState(Date.now(), config.enabled)
  }

  start(): void {
    if (!this.config.enabled) return
    void this.detectLoop()
    this.watchdog = setInterval(() => this.checkWatchdog(), WATCHDOG_INTERVAL_MS)
    this.connect()
  }

  get phase(): CameraState['phase'] {
    return this.state.phase
  }

  status(): CameraStatus {
    const { state } = this
    return {
      id: this.config.id, config: this.config, state: state.phase, error: state.error, detection_error: this.detectionError, frame_size: this.frameSize,
      frames_received: this.totals.received, frames_detected: this.totals.detected, frames_dropped: this.totals.dropped,
      reconnects: state.reconnects, retry_at: state.retryAt, last_frame_at: state.lastFrameAt,
    }
  }

  private apply(event: CameraEvent): void {
    const before = this.state
    this.state = nextCameraState(before, event, this.host.timings)
    if (this.state.phase === before.phase) return
    const { log } = this.host
    if (this.state.phase === 'stalled') {
      log.warn('camera stalled', { camera: this.config.id, error: this.state.error, retry_in_ms: (this.state.retryAt ?? 0) - event.at })
    } else {
      log.info(`camera ${this.state.phase}`, { camera: this.config.id })
    }
    if (this.state.phase === 'connecting' && before.connections > 0) this.host.count(this.config.id, 'reconnect')
  }

  private connect(): void {
    if (this.stopped) return
    this.apply({ type: 'connect', at: Date.now() })
    const ffmpeg = findFfmpeg()
    if (!ffmpeg) {
      this.lost(FFMPEG_INSTALL_HINT)
      return
    }
    let args: string[]
    try {
      args = ffmpegArguments(this.config)
    } catch (error) {
      this.lost(errorMessage(error))
      return
    }
    const generation = this.state.connections
    const current = () => this.state.connections === generation && !this.stopped
    try {
      this.ffmpeg = this.startFfmpeg(ffmpeg, args, current)
    } catch (error) {
      // a runtime may refuse to start a program at all (Deno without --allow-run): the camera says so and retries
      this.lost(`ffmpeg could not start: ${errorMessage(error)}`)
    }
  }

  private startFfmpeg(ffmpeg: string, args: string[], current: () => boolean): FfmpegProcess {
    return new FfmpegProcess(ffmpeg, args, {
      onFrameSize: (size) => {
        if (current()) this.frameSize = size
      },
      allocateFrame: (bytes) => {
        if (this.pool?.frameBytes !== bytes) this.pool = new FramePool(bytes)
        return this.pool.acquire()
      },
      onFrame: (rgb, size) => {
        if (!current()) return
        const at = Date.now()
        this.apply({ type: 'frame', at })
        this.totals.received++
        this.host.count(this.config.id, 'received')
        const displaced = this.slot.offer({ rgb, width: size.width, height: size.height, number: ++this.frameNumber, at })
        if (displaced) {
          this.release(displaced)
          this.totals.dropped++
          this.host.count(this.config.id, 'dropped')
        }
      },
      onExit: (reason) => {
        if (current()) this.lost(reason)
      },
    }, this.host.log.child(`camera:${this.config.id}`))
  }

  /** The connection is gone or given up: end ffmpeg, and come back after the backoff. */
  private lost(reason: string): void {
    this.apply({ type: 'lost', at: Date.now(), reason })
    const ffmpeg = this.ffmpeg
    this.ffmpeg = undefined
    void ffmpeg?.stop()
    clearTimeout(this.retryTimer)
    if (this.stopped || this.state.retryAt === null) return
    this.retryTimer = setTimeout(() => this.connect(), Math.max(0, this.state.retryAt - Date.now()))
  }

  /** A frame nothing reads any more goes back to the pool. */
  private release(frame: Frame): void {
    this.pool?.release(frame.rgb)
  }

  private checkWatchdog(): void {
    const verdict = watchdogVerdict(this.state, Date.now(), this.host.timings)
    if (verdict) this.lost(verdict)
  }

  private async detectLoop(): Promise<void> {
    const options = (): DetectOptions => ({
      cameraId: this.config.id, tags: this.config.tags, autoupload: this.config.autoupload ?? 'filtered', creationDate: formatCreated(),
    })
    for (;;) {
      const frame = await this.slot.take()
      if (!frame) return
      const image: ImageInput = { kind: 'raw', bytes: frame.rgb, dtype: 'uint8', shape: [frame.height, frame.width, 3] }
      let metadata: ImageMetadata
      try {
        metadata = await this.host.detect(image, options())
      } catch (error) {
        this.release(frame)
        this.detectionError = errorMessage(error)
        this.host.count(this.config.id, 'failed')
        if (Date.now() - this.lastDetectErrorLog > DETECT_ERROR_LOG_INTERVAL_MS) {
          this.lastDetectErrorLog = Date.now()
          this.host.log.warn('camera frame could not be detected', { camera: this.config.id, error: errorMessage(error) })
        }
        continue
      }
      if (this.stopped) return
      this.detectionError = null
      this.totals.detected++
      this.host.count(this.config.id, 'detected')
      const at = Date.now()
      // the frame before stays readable until this one replaces it (the status page reads the last one)
      const before = this.lastFrame
      this.lastFrame = frame
      if (before) this.release(before)
      this.last = { image, metadata, at }
      this.host.publish({ camera_id: this.config.id, frame: frame.number, at, width: frame.width, height: frame.height, detections: metadata })
    }
  }

  /**
   * Ends ffmpeg and the detection loop; resolves when ffmpeg is gone. A detection in flight is not waited for (a
   * stuck model must not hold a camera change or the shutdown); its answer is dropped when it comes.
   */
  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.watchdog)
    clearTimeout(this.retryTimer)
    this.slot.close()
    const ffmpeg = this.ffmpeg
    this.ffmpeg = undefined
    await ffmpeg?.stop()
  }
}
