/**
 * The main-thread face of inference: a pool of workers per model version (one session each, worker-pool.ts), sized
 * at load from the usable cores and a short measurement of the model (thread-policy.ts). Concurrent `detect` calls
 * are safe and the event loop stays free.
 */
import type { BackoffPolicy } from '../foundation/backoff.ts'
import { createLogger, errorMessage } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import { parseBackendChoice } from './backend-choice.ts'
import type { BackendChoice, BackendName } from '../config/inference-settings.ts'
import type { ImageDecoderChoice, ImageInput } from './image-decoding.ts'
import type { BackendRejection } from './inference-errors.ts'
import type { ModelInformationWithFormat } from './model-package.ts'
import { readUsableCores } from './cpu-limits.ts'
import { choosePoolPlan, concurrentLoads, firstWorkerThreads, needsSingleThreadRun, type PoolOverrides, type ThreadMeasurement } from './thread-policy.ts'
import { WorkerConnection, type LoadedModel } from './worker-connection.ts'
import { WorkerPool, type PoolStatus } from './worker-pool.ts'
import type { DetectionOutput, DetectionRequestOptions, WorkerLoadOptions } from './worker-protocol.ts'

const log = createLogger('inference')

export interface InferenceEngineOptions {
  /** folder with model.json (at its root or in one sub-folder) and the ONNX file */
  modelDir: string
  backend?: BackendChoice
  /** intra-op (onnxruntime-node) or wasm threads per worker; default: chosen at load (thread-policy.ts) */
  threads?: number
  /** inference workers (a session each); default: chosen at load from the usable cores and the model */
  workers?: number
  /** the cores to plan for; default: read from the machine (affinity, cgroup quota) */
  usableCores?: number
  /** folder with libonnxruntime_providers_{shared,cuda}.so (or a whole libonnxruntime.so.1) */
  ortLibDir?: string
  /** onnxruntime-node threads busy-wait between ops (default false; see BackendSessionOptions) */
  spinWait?: boolean
  /** warm-up run and, for GPU backends, a CPU comparison before the backend is accepted (default true) */
  verify?: boolean
  confidenceThreshold?: number
  iouThreshold?: number
  /** `portable` decodes JPEG with jpeg-js instead of @napi-rs/image (default native) */
  imageDecoder?: ImageDecoderChoice
  /** most pixels (width × height) per image, checked from the header before decoding (default 50 MP) */
  maxImagePixels?: number
  /**
   * dynamic batching, for a model whose input has a dynamic batch dimension: concurrent images wait up to this long
   * (ms) to share one session run (default 2 on GPU backends, 0 — off — on cpu and wasm; 0 turns it off)
   */
  batchWindowMs?: number
  /** the most images in one batched run (default 8; 1 turns batching off) */
  maxBatch?: number
  /** images accepted but not yet answered, over all workers, before `detect` refuses more (default 64) */
  maxPendingImages?: number
  metrics?: MetricsRegistry
  /** how a worker that failed to load in place of a crashed one is tried again (default: 1 s doubling to 1 min) */
  replacementRetry?: BackoffPolicy
}

export interface InferenceEngine {
  readonly backend: BackendName
  /** backends tried and not chosen, with the reason (an error, or `slower on this model` with `fastest`) */
  readonly rejected: BackendRejection[]
  /** model.json of the package; the name DetectorLogic gives it, so an engine is a DetectorLogic as it is */
  readonly modelInfo: ModelInformationWithFormat
  /** the network input size */
  readonly inputSize: { width: number; height: number }
  /** concurrent images are stacked into one session run (a dynamic batch dimension, batching on) */
  readonly dynamicBatch: boolean
  /** workers × threads, why, and what the load measured */
  readonly pool: PoolStatus
  detect(image: ImageInput, options?: DetectionRequestOptions): Promise<DetectionOutput>
  detectBatch(images: ImageInput[], options?: DetectionRequestOptions): Promise<DetectionOutput[]>
  dispose(): Promise<void>
}


/** Runs per worker when timing the model: at least the first, up to the second while the time budget lasts. */
const MEASURED_RUNS = { least: 3, most: 7 }
const MEASURING_BUDGET_MS = 1_500

/** A plain grey frame of the network's size: the measurement times the session, not the image decoder. */
function measurementFrame({ width, height }: { width: number; height: number }): ImageInput {
  return { kind: 'raw', bytes: new Uint8Array(width * height * 3).fill(114), dtype: 'uint8', shape: [height, width, 3] }
}

/**
 * The fastest session run of each worker, their runs alternating so that load on the machine hits all alike. The
 * fastest, not the median: other work on the machine only ever adds time, and a median of a few runs on a busy
 * machine once put one thread at 3.3× the time of two.
 */
async function fastestRunMs(connections: WorkerConnection[], frame: ImageInput): Promise<number[]> {
  const fastest = connections.map(() => Number.POSITIVE_INFINITY)
  const started = performance.now()
  for (let run = 0; run < MEASURED_RUNS.most && (run < MEASURED_RUNS.least || performance.now() - started < MEASURING_BUDGET_MS); run++) {
    for (const [index, connection] of connections.entries()) {
      const [output] = await connection.run([frame], false)
      fastest[index] = Math.min(fastest[index]!, output!.timings.inferenceMs)
    }
  }
  return fastest.map((ms) => Math.round(ms * 100) / 100)
}

function logBackendChoice(loaded: LoadedModel): void {
  // one line per reason: both WebGPU backends fail for the same one when there is no Vulkan
  const byReason = new Map<string, string[]>()
  for (const { backend: name, reason } of loaded.rejected) byReason.set(reason, [...(byReason.get(reason) ?? []), name])
  for (const [reason, backends] of byReason) log.info('inference backend rejected', { backends, reason })
  log.info('inference backend chosen', { backend: loaded.backend, model: loaded.model.version, rejected: loaded.rejected.map((r) => r.backend), dynamicBatch: loaded.dynamicBatch ?? false })
}

/**
 * Starts the first worker, which loads the model and picks a backend (see backend-choice.ts for the `auto` order),
 * times the model (on a CPU backend also on one thread, unless INFERENCE_WORKERS/THREADS decide), chooses workers ×
 * threads (thread-policy.ts) and starts the rest of the pool with that backend, a few at a time (concurrentLoads). Throws
 * ModelPackageError for a bad model folder and NoBackendError (naming every backend's reason) when nothing can run it.
 */
export async function createInferenceEngine(options: InferenceEngineOptions): Promise<InferenceEngine> {
  const startedAt = performance.now()
  const backendChoice = parseBackendChoice(options.backend)
  const cores = options.usableCores ?? await readUsableCores()
  const overrides: PoolOverrides = {
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
  }
  const load = (backend: BackendChoice, threads: number): WorkerLoadOptions => ({
    modelDir: options.modelDir, backend, threads, ortLibDir: options.ortLibDir, spinWait: options.spinWait,
    verify: options.verify ?? true, confidenceThreshold: options.confidenceThreshold,
    iouThreshold: options.iouThreshold, imageDecoder: options.imageDecoder ?? 'native', maxImagePixels: options.maxImagePixels,
    batchWindowMs: options.batchWindowMs, maxBatch: options.maxBatch,
  })
  const started: { connection: WorkerConnection; threads: number }[] = []
  try {
    const firstThreads = firstWorkerThreads(cores, overrides)
    const { connection: first, loaded } = await WorkerConnection.start(load(backendChoice, firstThreads))
    started.push({ connection: first, threads: firstThreads })
    logBackendChoice(loaded)
    let measurement: ThreadMeasurement | undefined
    try {
      const frame = measurementFrame(loaded.inputSize)
      if (needsSingleThreadRun(loaded.backend, firstThreads, overrides)) {
        const { connection: single } = await WorkerConnection.start(load(loaded.backend, 1))
        started.push({ connection: single, threads: 1 })
        const [runMs, singleThreadRunMs] = await fastestRunMs([first, single], frame)
        measurement = { threads: firstThreads, runMs: runMs!, singleThreadRunMs: singleThreadRunMs! }
      } else {
        measurement = { threads: firstThreads, runMs: (await fastestRunMs([first], frame))[0]! }
      }
    } catch (error) {
      // the pool can still be sized from the cores; a model that cannot run will say so on its first request
      log.warn('the model could not be timed at load', { model: loaded.model.version, error: errorMessage(error) })
    }
    const plan = choosePoolPlan({ cores, backend: loaded.backend, overrides, measurement })
    const kept: WorkerConnection[] = []
    for (const { connection, threads } of started) {
      // a worker that died while the model was timed is not kept; a fresh one takes its place below
      if (threads === plan.threadsPerWorker && kept.length < plan.workers && connection.alive) kept.push(connection)
      else await connection.dispose()
    }
    const workerLoad = load(loaded.backend, plan.threadsPerWorker)
    while (kept.length < plan.workers) {
      const loads = Math.min(concurrentLoads(cores), plan.workers - kept.length)
      const results = await Promise.allSettled(Array.from({ length: loads }, () => WorkerConnection.start(workerLoad)))
      for (const result of results) {
        if (result.status === 'fulfilled') {
          started.push({ connection: result.value.connection, threads: plan.threadsPerWorker })
          kept.push(result.value.connection)
        }
      }
      const failed = results.find((result) => result.status === 'rejected')
      if (failed) throw failed.reason
    }
    log.info('inference pool started', {
      model: loaded.model.version, backend: loaded.backend, workers: plan.workers, threadsPerWorker: plan.threadsPerWorker,
      usableCores: cores, reason: plan.reason, measurement, ms: Math.round(performance.now() - startedAt),
    })
    return new WorkerPool(loaded, kept, {
      load: workerLoad, plan, maxPendingImages: options.maxPendingImages, metrics: options.metrics, replacementRetry: options.replacementRetry,
    })
  } catch (error) {
    await Promise.all(started.map(({ connection }) => connection.dispose()))
    log.error('inference engine failed to start', { modelDir: options.modelDir, error: errorMessage(error) })
    options.metrics?.counter('inference_failures_total', 'failed inference requests by kind').inc({ kind: 'load' })
    throw error
  }
}
