import type { Context, Detections, ImageData, TrainingOut } from '../contract/index.ts'
import type { DataExchange } from '../loop/data-exchange.ts'
import { LoopError, LoopSocketError } from '../loop/loop-error.ts'
import type { LoopSocket } from '../loop/loop-socket.ts'
import { backoffDelayMs } from '../foundation/backoff.ts'
import { errorMessage, type Logger } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import type { TrainerLoopPort } from './loop-trainer-steps.ts'
import { CriticalError, sleepUnlessCancelled, throwIfCancelled } from './training-errors.ts'

/** How long the Loop gets to acknowledge `update_training` (upstream: the library default, 60 s). */
export const UPDATE_TRAINING_TIMEOUT_MS = 60_000
/** An answer that is quick but still "no answer" this many times in a row is a real error, not an outage. */
const MAX_QUICK_RECOVERIES = 3

export interface LoopReachabilityOptions {
  /** `GET /api/status` without login; true for 200, never throws (LoopRestClient.backendReady) */
  backendReady(): Promise<boolean>
  /** the socket to the Loop now; it is replaced after `PUT /socketio off/on` */
  socket(): LoopSocket | undefined
  /** first wait while the Loop is unreachable (default 500 ms); doubles up to `maxWaitMs` */
  initialWaitMs?: number
  /** longest wait between two checks (default 10 s) */
  maxWaitMs?: number
  /** how often the socket's state is looked at while waiting for it (default 250 ms; it reconnects by itself) */
  socketPollMs?: number
  log: Logger
  metrics?: MetricsRegistry
}

/**
 * Whether the trainer can reach its Loop, and waiting until it can (fix of §15.13: a trainer resumes its
 * training at start even when the Loop is down; steps that need the Loop wait here instead of burning their
 * bounded retries). Shared by every training of a node, so an outage is logged once, not per call.
 */
export class LoopReachability {
  private outageSince: number | undefined
  private readonly initialWaitMs: number
  private readonly maxWaitMs: number
  private readonly socketPollMs: number
  private readonly waits: ReturnType<MetricsRegistry['counter']> | undefined

  constructor(private readonly options: LoopReachabilityOptions) {
    this.initialWaitMs = Math.max(1, options.initialWaitMs ?? 500)
    this.maxWaitMs = Math.max(this.initialWaitMs, options.maxWaitMs ?? 10_000)
    this.socketPollMs = Math.max(1, options.socketPollMs ?? 250)
    if (options.metrics) {
      this.waits = options.metrics.counter('trainer_loop_unreachable_total', 'Times a training step found the Loop unreachable and waited for it, by what it needed (rest, socket)')
      const gauge = options.metrics.gauge('trainer_loop_reachable', '0 while a training step waits for an unreachable Loop, else 1')
      gauge.collect(() => gauge.set(this.outageSince === undefined ? 1 : 0))
    }
  }

  /** True when `error` says the Loop gave no usable answer (down, unreachable, a gateway in front of it failing). */
  static isUnreachable(error: unknown): boolean {
    if (error instanceof LoopError) return error.kind === 'network' || error.kind === 'timeout' || (error.status !== null && [502, 503, 504].includes(error.status))
    if (error instanceof LoopSocketError) return error.kind === 'not_connected' || error.kind === 'disconnected' || error.kind === 'ack_timeout'
    return false
  }

  get socketConnected(): boolean {
    return this.options.socket()?.connected ?? false
  }

  /**
   * Resolves when `GET /api/status` answers 200, checking with a doubling wait in between; rejects with
   * StepCancelledError when `signal` fires. Returns whether it had to wait at all.
   */
  async waitForRest(signal: AbortSignal, why: string): Promise<boolean> {
    throwIfCancelled(signal)
    if (await this.options.backendReady()) return false
    this.beginOutage('rest', why)
    for (let retry = 0; ; retry++) {
      await sleepUnlessCancelled(backoffDelayMs(retry, { initialMs: this.initialWaitMs, maxMs: this.maxWaitMs }), signal)
      if (await this.options.backendReady()) break
    }
    this.endOutage('rest')
    return true
  }

  /** Resolves once the socket to the Loop is connected (it reconnects by itself, with its own backoff). */
  async waitForSocket(signal: AbortSignal, why: string): Promise<void> {
    throwIfCancelled(signal)
    if (this.socketConnected) return
    this.beginOutage('socket', why)
    while (!this.socketConnected) await sleepUnlessCancelled(this.socketPollMs, signal)
    this.endOutage('socket')
  }

  private beginOutage(need: string, why: string): void {
    this.waits?.inc({ need })
    if (this.outageSince !== undefined) return
    this.outageSince = Date.now()
    this.options.log.warn('the Loop is unreachable; the training waits for it', { need, why })
  }

  private endOutage(need: string): void {
    if (this.outageSince === undefined) return
    this.options.log.info('the Loop is reachable again; the training goes on', { need, waited_ms: Date.now() - this.outageSince })
    this.outageSince = undefined
  }
}

export interface LoopTrainerPortOptions {
  exchange: DataExchange
  reachability: LoopReachability
  /** the socket to the Loop now (for `update_training`) */
  socket(): LoopSocket | undefined
  /**
   * A pause before every model and detection upload request. A test knob: it makes the upload states last
   * long enough to kill the node in them, at a moment when the progress files are up to date. Default 0.
   */
  uploadPauseMs?: number
  updateTrainingTimeoutMs?: number
  log: Logger
}

/**
 * The trainer's Loop calls for one project (TrainerLoopPort) over the real REST client and socket: every REST
 * call that finds the Loop unreachable waits for it (unbounded, cancellable) and is then repeated; answers
 * that are errors are thrown for the state machine's bounded retries. A model upload the Loop refuses with a
 * 4xx is a CriticalError, as upstream (§8.8): retrying the same files cannot change the answer.
 */
export class LoopTrainerPort implements TrainerLoopPort {
  readonly context: Context

  constructor(private readonly options: LoopTrainerPortOptions) {
    this.context = options.exchange.context
  }

  fetchImageIds(query: string, signal: AbortSignal = neverAborted()): Promise<string[]> {
    return this.call(`GET data?${query}`, signal, () => this.options.exchange.fetchImageIds(query, { signal }))
  }

  fetchImageData(ids: readonly string[], signal: AbortSignal = neverAborted()): Promise<ImageData[]> {
    return this.call(`GET images (${ids.length} ids)`, signal, () => this.options.exchange.fetchImageData(ids, { signal }))
  }

  downloadImage(id: string, signal: AbortSignal): Promise<Uint8Array> {
    return this.call(`GET image ${id}`, signal, () => this.options.exchange.fetchImageBytes(id, signal))
  }

  downloadModel(modelId: string, format: string, targetDir: string, signal: AbortSignal): Promise<string[]> {
    return this.call(`GET model ${modelId} (${format})`, signal, () => this.options.exchange.downloadModel(modelId, format, targetDir, { signal }))
  }

  async uploadModel(trainingNumber: number, format: string, files: readonly string[], signal: AbortSignal): Promise<string> {
    await this.pauseBeforeUpload(signal)
    try {
      return await this.call(`PUT model of training ${trainingNumber} (${format})`, signal, () => this.options.exchange.uploadModel(trainingNumber, format, files, { signal }))
    } catch (error) {
      if (error instanceof LoopError && error.kind === 'http' && isClientError(error.status)) {
        throw new CriticalError(`the Loop refused the ${format} model of training ${trainingNumber}: ${error.message}`, { cause: error })
      }
      throw error
    }
  }

  async uploadDetections(batch: readonly Detections[], signal: AbortSignal): Promise<void> {
    await this.pauseBeforeUpload(signal)
    await this.call(`POST ${batch.length} detections`, signal, () => this.options.exchange.uploadDetections(batch, { signal }))
  }

  /** Fails at once when the socket is down: during training the periodic sync must never block the process watch. */
  async updateTraining(out: TrainingOut, signal: AbortSignal): Promise<void> {
    throwIfCancelled(signal)
    const socket = this.options.socket()
    if (!socket) throw new LoopSocketError('not_connected', 'update_training', 'SocketIO client is not connected')
    const { organization, project } = this.context
    const reply = socket.emitExpectingSuccess('update_training', [organization, project, out], this.options.updateTrainingTimeoutMs ?? UPDATE_TRAINING_TIMEOUT_MS)
    await raceWithSignal(reply, signal)
  }

  waitForConnection(signal: AbortSignal): Promise<void> {
    return this.options.reachability.waitForSocket(signal, `update_training for ${this.context.organization}/${this.context.project}`)
  }

  private async pauseBeforeUpload(signal: AbortSignal): Promise<void> {
    const pause = this.options.uploadPauseMs ?? 0
    if (pause > 0) await sleepUnlessCancelled(pause, signal)
  }

  private async call<T>(what: string, signal: AbortSignal, request: () => Promise<T>): Promise<T> {
    let quickRecoveries = 0
    for (;;) {
      throwIfCancelled(signal)
      try {
        return await request()
      } catch (error) {
        throwIfCancelled(signal)
        if (!LoopReachability.isUnreachable(error)) throw error
        const waited = await this.options.reachability.waitForRest(signal, `${what}: ${errorMessage(error)}`)
        // the Loop answers its status but not this call: not an outage, so the step's own retries decide
        if (!waited && ++quickRecoveries >= MAX_QUICK_RECOVERIES) throw error
      }
    }
  }
}

function isClientError(status: number | null): boolean {
  return status !== null && status >= 400 && status < 500 && status !== 408 && status !== 429
}

function neverAborted(): AbortSignal {
  return new AbortController().signal
}

async function raceWithSignal<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throwIfCancelled(signal)
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      try {
        throwIfCancelled(signal)
      } catch (error) {
        reject(error)
      }
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([work, aborted])
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort)
    work.catch(() => undefined)
  }
}
