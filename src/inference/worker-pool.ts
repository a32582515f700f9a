/**
 * One model version served by a pool of inference workers (a session each): every request goes to the least busy
 * worker. A worker that dies is replaced; the requests it held are run once more on another worker (or on its
 * replacement when it was the only one), and fail with InferenceUnavailableError when that fails too — never hang.
 */
import { backoffDelayMs, type BackoffPolicy } from '../foundation/backoff.ts'
import { createLogger, errorMessage } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import type { BackendName } from '../config/inference-settings.ts'
import type { ImageInput } from './image-decoding.ts'
import { engineDisposed, ImageInputError, InferenceUnavailableError, type BackendRejection } from './inference-errors.ts'
import type { ModelInformationWithFormat } from './model-package.ts'
import type { PoolPlan } from './thread-policy.ts'
import { WorkerConnection, WorkerLostError, type LoadedModel } from './worker-connection.ts'
import type { DetectionOutput, DetectionRequestOptions, WorkerLoadOptions } from './worker-protocol.ts'

const log = createLogger('inference')

/** Images accepted but not yet answered, over the whole pool, before `detect` refuses more (default). */
export const DEFAULT_MAX_PENDING_IMAGES = 64

const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64]

function poolMetrics(registry: MetricsRegistry | undefined) {
  if (!registry) return undefined
  return {
    images: registry.counter('inference_images_total', 'images run through the inference engine'),
    failures: registry.counter('inference_failures_total', 'failed inference requests by kind'),
    stages: registry.histogram('inference_stage_seconds', 'time per inference stage (decode, preprocess, inference, postprocess)'),
    crashes: registry.counter('inference_worker_crashes_total', 'inference workers that stopped unexpectedly (each is replaced at once)'),
    retries: registry.counter('inference_retries_total', 'requests run again on another worker after theirs crashed, by result'),
    batchSizes: registry.histogram('inference_batch_size', 'images in the session run each image went through, observed once per image (1: it ran alone)', BATCH_SIZE_BUCKETS),
  }
}

function failureKind(error: Error): string {
  if (error instanceof ImageInputError) return 'image_input'
  if (error instanceof InferenceUnavailableError) return 'unavailable'
  return 'inference'
}

/** What /about, /metrics and the status page show of a pool. */
export interface PoolStatus extends PoolPlan {
  liveWorkers: number
}

export interface WorkerPoolOptions {
  /** what each worker loads, with the backend the first one chose pinned */
  load: WorkerLoadOptions
  plan: PoolPlan
  maxPendingImages?: number
  metrics?: MetricsRegistry
  /** how a replacement that failed to load is tried again (default REPLACEMENT_RETRY) */
  replacementRetry?: BackoffPolicy
}

/** A replacement that failed to load is tried again after 1 s, 2 s, 4 s … up to a minute apart. */
export const REPLACEMENT_RETRY: BackoffPolicy = { initialMs: 1_000, maxMs: 60_000, jitter: 'equal' }

export class WorkerPool {
  readonly backend: BackendName
  readonly rejected: BackendRejection[]
  readonly modelInfo: ModelInformationWithFormat
  readonly inputSize: { width: number; height: number }
  readonly dynamicBatch: boolean
  private readonly connections: WorkerConnection[] = []
  /** replacements being started; a request finding no live worker waits for one */
  private readonly starting = new Set<Promise<WorkerConnection | undefined>>()
  /** replacements that failed to load, waiting for their next try */
  private readonly retryTimers = new Set<ReturnType<typeof setTimeout>>()
  private pendingImages = 0
  private closed?: Error
  private readonly metrics: ReturnType<typeof poolMetrics>

  constructor(first: LoadedModel, connections: WorkerConnection[], private readonly options: WorkerPoolOptions) {
    this.backend = first.backend
    this.rejected = first.rejected
    this.modelInfo = first.model
    this.inputSize = first.inputSize
    this.dynamicBatch = first.dynamicBatch ?? false
    this.metrics = poolMetrics(options.metrics)
    for (const connection of connections) this.adopt(connection)
  }

  /** The plan the pool was built to, and the workers serving now (fewer while a crashed one is being replaced). */
  get pool(): PoolStatus {
    return { ...this.options.plan, liveWorkers: this.connections.length }
  }

  detect(image: ImageInput, options: DetectionRequestOptions = {}): Promise<DetectionOutput> {
    return this.request([image], options).then((outputs) => outputs[0]!)
  }

  detectBatch(images: ImageInput[], options: DetectionRequestOptions = {}): Promise<DetectionOutput[]> {
    return images.length === 0 ? Promise.resolve([]) : this.request(images, options)
  }

  async dispose(): Promise<void> {
    if (this.closed) return
    this.closed = engineDisposed()
    for (const timer of this.retryTimers) clearTimeout(timer)
    this.retryTimers.clear()
    const starting = [...this.starting]
    await Promise.all(this.connections.splice(0).map((connection) => connection.dispose()))
    // a replacement that finishes loading now is freed by adopt()
    await Promise.all(starting)
  }

  /** The pool's workers, for tests that end one as a crash would (WorkerConnection.terminateAsIfCrashed). */
  workersForTest(): readonly WorkerConnection[] {
    return this.connections
  }

  private async request(images: ImageInput[], options: DetectionRequestOptions): Promise<DetectionOutput[]> {
    if (this.closed) return this.refuse(this.closed)
    const limit = this.options.maxPendingImages ?? DEFAULT_MAX_PENDING_IMAGES
    if (this.pendingImages + images.length > limit) {
      return this.refuse(new InferenceUnavailableError(`the inference queue is full (${this.pendingImages} images waiting, limit ${limit})`))
    }
    for (const image of images) {
      if (!image || typeof image !== 'object' || !(image.bytes instanceof Uint8Array)) {
        return this.refuse(new ImageInputError('an image must be { kind: "encoded", bytes } or { kind: "raw", bytes, dtype, shape } with bytes as a Uint8Array'))
      }
    }
    this.pendingImages += images.length
    try {
      const outputs = await this.runSpread(images, options.keepDecoded ?? false)
      this.metrics?.images.inc({ backend: this.backend }, outputs.length)
      for (const { timings, batchSize } of outputs) {
        this.observeTimings(timings)
        this.metrics?.batchSizes.observe(batchSize ?? 1)
      }
      return outputs
    } catch (error) {
      const failure = error instanceof ImageInputError ? error.forRequestOf(images.length) : error as Error
      this.metrics?.failures.inc({ kind: failureKind(failure) })
      log.warn('detection failed', { error: failure.message, kind: failureKind(failure) })
      throw failure
    } finally {
      this.pendingImages -= images.length
    }
  }

  /**
   * Several images (a `batch_detect`) are spread over the workers, each image to the one least busy counting those
   * already given out, so a batch uses the cores one request at a time would; each worker runs its share as one
   * batch. One worker, or one image: all of it to the least busy.
   */
  private async runSpread(images: ImageInput[], keepDecoded: boolean): Promise<DetectionOutput[]> {
    if (images.length === 1 || this.connections.length <= 1 || this.closed) return this.runWithRetry(images, keepDecoded)
    const load = this.connections.map((connection) => connection.busyImages)
    const shares = this.connections.map(() => [] as number[])
    for (let index = 0; index < images.length; index++) {
      const least = load.indexOf(Math.min(...load))
      load[least]!++
      shares[least]!.push(index)
    }
    const outputs = new Array<DetectionOutput>(images.length)
    // every share settles before the request does, so the pending count stays true when one share fails
    const settled = await Promise.allSettled(shares.map(async (share, worker) => {
      if (share.length === 0) return
      const answers = await this.runWithRetry(share.map((index) => images[index]!), keepDecoded, this.connections[worker])
      share.forEach((index, position) => { outputs[index] = answers[position]! })
    }))
    const failures = settled.flatMap((result, worker) => (result.status === 'rejected' ? [{ reason: result.reason as unknown, share: shares[worker]! }] : []))
    if (failures.length === 0) return outputs
    // a bad image is the answer whatever else failed (a retry cannot help such a request), and the first bad one of
    // the whole request, named by its place there, whichever worker it went to
    const badImages = failures.flatMap(({ reason, share }) =>
      (reason instanceof ImageInputError && reason.imageIndex !== undefined ? [new ImageInputError(reason.message, share[reason.imageIndex])] : []))
    if (badImages.length > 0) throw badImages.reduce((first, error) => (error.imageIndex! < first.imageIndex! ? error : first))
    throw failures[0]!.reason
  }

  private async runWithRetry(images: ImageInput[], keepDecoded: boolean, first?: WorkerConnection): Promise<DetectionOutput[]> {
    try {
      // sent in the caller's tick when a worker is live: a request made before dispose() reaches the worker before the
      // dispose does (and runs if the worker gets to it before the dispose arrives; otherwise it fails as disposed)
      return await (first ?? this.leastBusy() ?? await this.nextReplacement()).run(images, keepDecoded)
    } catch (error) {
      if (!(error instanceof WorkerLostError) || this.closed) throw error
      // the caller still holds its images (each run sends a copy), so they can go to another worker once
      try {
        const outputs = await (this.leastBusy() ?? await this.nextReplacement()).run(images, keepDecoded)
        this.metrics?.retries.inc({ result: 'ok' })
        return outputs
      } catch (again) {
        this.metrics?.retries.inc({ result: 'failed' })
        if (again instanceof WorkerLostError) throw new InferenceUnavailableError(`${error.message}, and again on a second worker: ${again.message}`)
        throw again
      }
    }
  }

  /** The live worker with the fewest images in flight. */
  private leastBusy(): WorkerConnection | undefined {
    if (this.closed) throw this.closed
    let best: WorkerConnection | undefined
    for (const connection of this.connections) if (!best || connection.busyImages < best.busyImages) best = connection
    return best
  }

  /** No worker is live (the only one crashed): the next replacement to finish loading. */
  private async nextReplacement(): Promise<WorkerConnection> {
    for (;;) {
      if (this.starting.size === 0) throw new InferenceUnavailableError('no inference worker is running: the last one crashed and its replacement failed to load')
      await Promise.race(this.starting)
      const live = this.leastBusy()
      if (live) return live
    }
  }

  private adopt(connection: WorkerConnection): void {
    if (this.closed) {
      void connection.dispose()
      return
    }
    this.connections.push(connection)
    connection.onLost((error) => this.replace(connection, error))
  }

  private replace(lost: WorkerConnection, error: WorkerLostError): void {
    const index = this.connections.indexOf(lost)
    if (index >= 0) this.connections.splice(index, 1)
    if (this.closed) return
    this.metrics?.crashes.inc()
    log.error('an inference worker stopped; starting a replacement', { error: error.message, model: this.modelInfo.version, live: this.connections.length })
    this.startReplacement(0)
  }

  /**
   * Starts a worker in place of a lost one. One that fails to load (the model folder went away, memory ran out) is
   * tried again with backoff, so a pool that lost its last worker serves again once the cause is gone instead of
   * answering 503 until the next model update.
   */
  private startReplacement(attempt: number): void {
    const started = WorkerConnection.start(this.options.load).then(
      ({ connection }) => {
        this.starting.delete(started)
        this.adopt(connection)
        if (!this.closed) log.info('inference worker replaced', { model: this.modelInfo.version, live: this.connections.length, attempts: attempt + 1 })
        return connection
      },
      (failure: unknown) => {
        this.starting.delete(started)
        this.metrics?.failures.inc({ kind: 'load' })
        if (this.closed) return undefined
        const retryInMs = backoffDelayMs(attempt, this.options.replacementRetry ?? REPLACEMENT_RETRY)
        log.error('the replacement inference worker failed to load; trying again', {
          error: errorMessage(failure), model: this.modelInfo.version, live: this.connections.length, attempt: attempt + 1, retryInMs,
        })
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer)
          if (!this.closed) this.startReplacement(attempt + 1)
        }, retryInMs)
        // a pending retry must not keep a process alive that has nothing else to do
        ;(timer as { unref?: () => void }).unref?.()
        this.retryTimers.add(timer)
        return undefined
      },
    )
    this.starting.add(started)
  }

  private refuse(error: Error): Promise<never> {
    this.metrics?.failures.inc({ kind: failureKind(error) })
    log.warn('detection refused', { error: error.message })
    return Promise.reject(error)
  }

  private observeTimings(timings: DetectionOutput['timings']): void {
    if (!this.metrics) return
    this.metrics.stages.observe(timings.decodeMs / 1000, { stage: 'decode' })
    this.metrics.stages.observe(timings.preprocessMs / 1000, { stage: 'preprocess' })
    this.metrics.stages.observe(timings.inferenceMs / 1000, { stage: 'inference' })
    this.metrics.stages.observe(timings.postprocessMs / 1000, { stage: 'postprocess' })
  }
}
