/**
 * The main-thread face of inference: one worker per engine (one session per worker), requests
 * queued inside the worker and served one at a time, so concurrent `detect` calls are safe and the
 * event loop stays free. Images travel as a private copy whose buffer is transferred (the caller
 * keeps its bytes, e.g. for the outbox, and a view into a large buffer never drags the whole buffer
 * along); bytes in a SharedArrayBuffer (the cameras' recycled frames) are shared, not copied. The worker is unref'd while idle, so a forgotten engine never keeps the process alive.
 */
import { createLogger, errorMessage } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import { parseBackendChoice } from './backend-choice.ts'
import type { BackendChoice, BackendName } from '../config/inference-settings.ts'
import type { ImageDecoderChoice, ImageInput } from './image-decoding.ts'
import { deserializeError, ImageInputError, InferenceUnavailableError, type BackendRejection } from './inference-errors.ts'
import type { ModelInformationWithFormat } from './model-package.ts'
import type { DetectionOutput, DetectionRequestOptions, WorkerRequest, WorkerResponse } from './worker-protocol.ts'
import { startModuleWorker, type ModuleWorker } from '../runtime/module-worker.ts'

const log = createLogger('inference')

export interface InferenceEngineOptions {
  /** folder with model.json (at its root or in one sub-folder) and the ONNX file */
  modelDir: string
  backend?: BackendChoice
  /** intra-op (onnxruntime-node) or wasm threads; default: all cores */
  threads?: number
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
  /** images accepted but not yet answered before `detect` refuses more (default 64) */
  maxPendingImages?: number
  metrics?: MetricsRegistry
}

export interface InferenceEngine {
  readonly backend: BackendName
  /** backends tried and not chosen, with the reason (an error, or `slower on this model` with `fastest`) */
  readonly rejected: BackendRejection[]
  /** model.json of the package; the name DetectorLogic gives it, so an engine is a DetectorLogic as it is */
  readonly modelInfo: ModelInformationWithFormat
  /** the network input size */
  readonly inputSize: { width: number; height: number }
  detect(image: ImageInput, options?: DetectionRequestOptions): Promise<DetectionOutput>
  detectBatch(images: ImageInput[], options?: DetectionRequestOptions): Promise<DetectionOutput[]>
  dispose(): Promise<void>
}


interface Pending {
  images: number
  resolve(outputs: DetectionOutput[]): void
  reject(error: Error): void
}

function engineMetrics(registry: MetricsRegistry | undefined) {
  if (!registry) return undefined
  return {
    images: registry.counter('inference_images_total', 'images run through the inference engine'),
    failures: registry.counter('inference_failures_total', 'failed inference requests by kind'),
    stages: registry.histogram('inference_stage_seconds', 'time per inference stage (decode, preprocess, inference, postprocess)'),
  }
}

function failureKind(error: Error): string {
  if (error instanceof ImageInputError) return 'image_input'
  if (error instanceof InferenceUnavailableError) return 'unavailable'
  return 'inference'
}

class WorkerInferenceEngine implements InferenceEngine {
  backend!: BackendName
  rejected: BackendRejection[] = []
  modelInfo!: ModelInformationWithFormat
  inputSize = { width: 0, height: 0 }
  private readonly pending = new Map<number, Pending>()
  private pendingImages = 0
  private nextId = 1
  private closed?: Error
  private loadWaiter?: { resolve(): void; reject(error: Error): void }
  private disposeWaiter?: () => void
  private readonly metrics: ReturnType<typeof engineMetrics>

  constructor(private readonly worker: ModuleWorker, private readonly options: InferenceEngineOptions) {
    this.metrics = engineMetrics(options.metrics)
    worker.addEventListener('message', (event: MessageEvent<WorkerResponse>) => this.receive(event.data))
    worker.addEventListener('error', (event: ErrorEvent) => this.fail(new InferenceUnavailableError(`the inference worker crashed: ${event.message}`)))
    worker.addEventListener('close', () => this.fail(new InferenceUnavailableError('the inference worker has stopped')))
  }

  async load(): Promise<void> {
    const backend = parseBackendChoice(this.options.backend)
    const loaded = new Promise<void>((resolve, reject) => { this.loadWaiter = { resolve, reject } })
    this.post({
      type: 'load',
      options: {
        modelDir: this.options.modelDir, backend, threads: this.options.threads, ortLibDir: this.options.ortLibDir, spinWait: this.options.spinWait,
        verify: this.options.verify ?? true, confidenceThreshold: this.options.confidenceThreshold,
        iouThreshold: this.options.iouThreshold, imageDecoder: this.options.imageDecoder ?? 'native', maxImagePixels: this.options.maxImagePixels,
      },
    })
    try {
      await loaded
    } finally {
      this.loadWaiter = undefined
    }
    this.releaseWhenIdle()
    // one line per reason: both WebGPU backends fail for the same one when there is no Vulkan
    const byReason = new Map<string, string[]>()
    for (const { backend: name, reason } of this.rejected) byReason.set(reason, [...(byReason.get(reason) ?? []), name])
    for (const [reason, backends] of byReason) log.info('inference backend rejected', { backends, reason })
    log.info('inference backend chosen', { backend: this.backend, model: this.modelInfo.version, rejected: this.rejected.map((r) => r.backend) })
  }

  detect(image: ImageInput, options: DetectionRequestOptions = {}): Promise<DetectionOutput> {
    return this.request([image], options).then((outputs) => outputs[0]!)
  }

  detectBatch(images: ImageInput[], options: DetectionRequestOptions = {}): Promise<DetectionOutput[]> {
    return images.length === 0 ? Promise.resolve([]) : this.request(images, options)
  }

  async dispose(): Promise<void> {
    if (this.closed) return
    let timer: ReturnType<typeof setTimeout> | undefined
    // a worker stuck in native code must not hold dispose (and process exit) forever
    const done = new Promise<void>((resolve) => {
      this.disposeWaiter = resolve
      timer = setTimeout(resolve, 5_000)
    })
    this.worker.ref()
    this.post({ type: 'dispose' })
    await done
    clearTimeout(timer)
    this.fail(new InferenceUnavailableError('the inference engine was disposed'))
  }

  private request(images: ImageInput[], options: DetectionRequestOptions): Promise<DetectionOutput[]> {
    if (this.closed) return this.refuse(new InferenceUnavailableError(this.closed.message))
    const limit = this.options.maxPendingImages ?? 64
    if (this.pendingImages + images.length > limit) {
      return this.refuse(new InferenceUnavailableError(`the inference queue is full (${this.pendingImages} images waiting, limit ${limit})`))
    }
    const copies: ImageInput[] = []
    const transfer: ArrayBuffer[] = []
    for (const image of images) {
      if (!image || typeof image !== 'object' || !(image.bytes instanceof Uint8Array)) {
        return this.refuse(new ImageInputError('an image must be { kind: "encoded", bytes } or { kind: "raw", bytes, dtype, shape } with bytes as a Uint8Array'))
      }
      // bytes in shared memory (camera frames) go as they are: no copy, and the caller keeps them unchanged until
      // the detection resolves
      if (image.bytes.buffer instanceof SharedArrayBuffer) {
        copies.push(image)
        continue
      }
      // a copy of its own: a Buffer's slice() is a view, and transferring its buffer would empty the caller's (and pooled) bytes
      const bytes = new Uint8Array(image.bytes)
      copies.push({ ...image, bytes })
      transfer.push(bytes.buffer as ArrayBuffer)
    }
    const id = this.nextId++
    return new Promise<DetectionOutput[]>((resolve, reject) => {
      this.pending.set(id, { images: images.length, resolve, reject })
      this.pendingImages += images.length
      this.worker.ref()
      this.post({ type: 'detect', id, images: copies, ...(options.keepDecoded ? { keepDecoded: true } : {}) }, transfer)
    })
  }

  private refuse(error: Error): Promise<never> {
    this.metrics?.failures.inc({ kind: failureKind(error) })
    log.warn('detection refused', { error: error.message })
    return Promise.reject(error)
  }

  private post(message: WorkerRequest, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer)
  }

  private receive(message: WorkerResponse): void {
    switch (message.type) {
      case 'loaded':
        this.backend = message.backend
        this.rejected = message.rejected
        this.modelInfo = message.model
        this.inputSize = message.inputSize
        this.loadWaiter?.resolve()
        break
      case 'load-failed':
        this.loadWaiter?.reject(deserializeError(message.error))
        break
      case 'detected':
      case 'detect-failed': {
        const pending = this.pending.get(message.id)
        if (!pending) return
        this.pending.delete(message.id)
        this.pendingImages -= pending.images
        if (message.type === 'detected') {
          this.metrics?.images.inc({ backend: this.backend }, message.outputs.length)
          for (const { timings } of message.outputs) this.observeTimings(timings)
          pending.resolve(message.outputs)
        } else {
          const error = deserializeError(message.error)
          this.metrics?.failures.inc({ kind: failureKind(error) })
          log.warn('detection failed', { error: error.message, kind: failureKind(error) })
          pending.reject(error)
        }
        break
      }
      case 'disposed':
        this.disposeWaiter?.()
        break
    }
    this.releaseWhenIdle()
  }

  /** An idle engine must not keep the process alive; `request` refs the worker again. */
  private releaseWhenIdle(): void {
    if (!this.closed && this.pending.size === 0 && !this.loadWaiter && !this.disposeWaiter) this.worker.unref()
  }

  private observeTimings(timings: DetectionOutput['timings']): void {
    if (!this.metrics) return
    this.metrics.stages.observe(timings.decodeMs / 1000, { stage: 'decode' })
    this.metrics.stages.observe(timings.preprocessMs / 1000, { stage: 'preprocess' })
    this.metrics.stages.observe(timings.inferenceMs / 1000, { stage: 'inference' })
    this.metrics.stages.observe(timings.postprocessMs / 1000, { stage: 'postprocess' })
  }

  /** Ends the engine: every waiting request fails with `error`, the worker is terminated. */
  private fail(error: Error): void {
    if (this.closed) return
    this.closed = error
    this.loadWaiter?.reject(error)
    for (const pending of this.pending.values()) pending.reject(error)
    if (this.pending.size > 0) {
      this.metrics?.failures.inc({ kind: 'unavailable' }, this.pending.size)
      log.error('inference requests failed', { error: error.message, requests: this.pending.size })
    }
    this.pending.clear()
    this.pendingImages = 0
    this.disposeWaiter?.()
    this.worker.terminate()
  }
}

/**
 * Starts a worker, loads the model and picks a backend (see backend-choice.ts for the `auto` order).
 * Throws ModelPackageError for a bad model folder and NoBackendError (naming every backend's reason)
 * when nothing can run it.
 */
export async function createInferenceEngine(options: InferenceEngineOptions): Promise<InferenceEngine> {
  const worker = startModuleWorker(new URL('./inference-worker.ts', import.meta.url))
  const engine = new WorkerInferenceEngine(worker, options)
  try {
    await engine.load()
  } catch (error) {
    log.error('inference engine failed to start', { modelDir: options.modelDir, error: errorMessage(error) })
    options.metrics?.counter('inference_failures_total', 'failed inference requests by kind').inc({ kind: 'load' })
    worker.terminate()
    throw error
  }
  return engine
}
