/**
 * The main thread's end of one inference worker (one session): loads the model, sends requests and matches the
 * answers, and notices when the worker dies. Requests queue inside the worker and run one at a time. Images travel
 * as a private copy whose buffer is transferred (the caller keeps its bytes, e.g. for the outbox or a retry on
 * another worker, and a view into a large buffer never drags the whole buffer along). The worker is unref'd while
 * idle, so a forgotten engine never keeps the process alive.
 */
import { createLogger } from '../foundation/log.ts'
import { startModuleWorker, type ModuleWorker } from '../runtime/module-worker.ts'
import { threadEnded } from '../runtime/worker-thread.ts'
import type { BackendName } from '../config/inference-settings.ts'
import type { ImageInput } from './image-decoding.ts'
import { deserializeError, engineDisposed, ImageInputError, InferenceUnavailableError, type BackendRejection } from './inference-errors.ts'
import type { ModelInformationWithFormat } from './model-package.ts'
import type { DetectionOutput, WorkerLoadOptions, WorkerRequest, WorkerResponse } from './worker-protocol.ts'

/** A request was lost because its worker crashed or stopped; the pool may run it again on another worker. */
export class WorkerLostError extends InferenceUnavailableError {
  constructor(message: string) {
    super(message)
    this.name = 'WorkerLostError'
  }
}

export interface LoadedModel {
  backend: BackendName
  rejected: BackendRejection[]
  model: ModelInformationWithFormat
  inputSize: { width: number; height: number }
  /** the model's input has a dynamic batch dimension, so the worker may stack concurrent requests */
  dynamicBatch?: boolean
}

interface Pending {
  images: number
  resolve(outputs: DetectionOutput[]): void
  reject(error: Error): void
}

const log = createLogger('inference')

/**
 * How long dispose waits for the worker to release its session (it finishes the run in progress first). A worker
 * still running then is left to finish on its own: terminating a thread while onnxruntime-node has native work in
 * flight aborts the whole process (`terminate called after throwing an instance of 'Napi::Error'`).
 */
const DISPOSE_WAIT_MS = 5_000

export class WorkerConnection {
  private readonly pending = new Map<number, Pending>()
  private inFlight = 0
  private nextId = 1
  private ended?: Error
  private loadWaiter?: { resolve(loaded: LoadedModel): void; reject(error: Error): void }
  /** resolves once the worker has released its session after a dispose request, or has ended */
  private releasedSession?: Promise<void>
  private disposeWaiter?: () => void
  private lostListener?: (error: WorkerLostError) => void
  /** the worker's OS thread, where the runtime tears a terminated worker down after `terminate()` returns (Deno) */
  private thread?: number
  private threadGone: Promise<void> = Promise.resolve()

  private constructor(private readonly worker: ModuleWorker) {
    worker.addEventListener('message', (event: MessageEvent<WorkerResponse>) => this.receive(event.data))
    worker.addEventListener('error', (event: ErrorEvent) => this.end(new WorkerLostError(`the inference worker crashed: ${event.message}`)))
    worker.addEventListener('close', () => this.end(new WorkerLostError('the inference worker stopped')))
  }

  /** Starts a worker and loads the model; throws the worker's load error (ModelPackageError, NoBackendError …). */
  static async start(options: WorkerLoadOptions): Promise<{ connection: WorkerConnection; loaded: LoadedModel }> {
    const connection = new WorkerConnection(startModuleWorker(new URL('./inference-worker.ts', import.meta.url)))
    const loaded = new Promise<LoadedModel>((resolve, reject) => { connection.loadWaiter = { resolve, reject } })
    connection.worker.postMessage({ type: 'load', options } satisfies WorkerRequest)
    try {
      return { connection, loaded: await loaded }
    } catch (error) {
      connection.end(new InferenceUnavailableError('the inference worker failed to load the model'))
      throw error
    } finally {
      connection.loadWaiter = undefined
      connection.releaseWhenIdle()
    }
  }

  /** Images sent and not yet answered: what "least busy" compares. */
  get busyImages(): number {
    return this.inFlight
  }

  get alive(): boolean {
    return !this.ended
  }

  /** Called once when the worker dies on its own (not after dispose); its in-flight requests fail with the same error. */
  onLost(listener: (error: WorkerLostError) => void): void {
    this.lostListener = listener
  }

  /** Runs `images` (checked by the caller to be ImageInputs) on this worker. */
  run(images: ImageInput[], keepDecoded: boolean): Promise<DetectionOutput[]> {
    if (this.ended) return Promise.reject(this.ended)
    const copies: ImageInput[] = []
    const transfer: ArrayBuffer[] = []
    for (const image of images) {
      // bytes in shared memory (the cameras' recycled frames) go as they are: no copy, and the caller keeps them
      // unchanged until the detection resolves
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
    try {
      this.worker.postMessage({ type: 'detect', id, images: copies, ...(keepDecoded ? { keepDecoded: true } : {}) } satisfies WorkerRequest, transfer)
    } catch (error) {
      // structured clone refused something of the caller's (a function, a symbol): nothing was sent, nothing waits
      return Promise.reject(new ImageInputError(`the image cannot be sent to the inference worker: ${(error as Error).message}`))
    }
    this.worker.ref()
    this.inFlight += images.length
    return new Promise<DetectionOutput[]>((resolve, reject) => this.pending.set(id, { images: images.length, resolve, reject }))
  }

  /**
   * Frees the session and ends the worker: requests not yet started fail with InferenceUnavailableError, the run in
   * progress finishes first. A run still going after `waitMs` (a large model on a slow CPU) fails its requests too,
   * and the worker ends by itself once the run is done (the thread is never terminated mid-run, see DISPOSE_WAIT_MS).
   */
  async dispose(waitMs = DISPOSE_WAIT_MS): Promise<void> {
    if (this.ended) return
    const released = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), waitMs)
      void this.release().then(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
    this.end(engineDisposed(), false, released)
    if (!released) {
      log.warn('an inference worker had not released its model after the dispose wait (a run still going); its thread ends once it has', { waitMs })
      this.worker.unref()
      // no wait for the thread's teardown here (see worker-thread.ts): on Deno with WebGPU a process that exits during
      // it may still crash, a risk left to this give-up path only
      void this.release().then(() => this.worker.terminate())
      return
    }
    // a process that exits while the thread still frees its GPU device crashes in the driver's exit handlers
    await this.threadGone
  }

  /**
   * Ends the worker as a crash does for its owner: its requests are lost and the pool is told, through the same path
   * as a close event. For tests of that path; nothing in the product calls it. The thread itself is ended only once
   * it has released its session (see DISPOSE_WAIT_MS).
   */
  terminateAsIfCrashed(): void {
    if (this.ended) return
    this.end(new WorkerLostError('the inference worker stopped'), true, false)
    void this.release().then(() => this.worker.terminate())
  }

  /** Asks the worker (once) to stop starting detections and release its session; resolves on its answer. */
  private release(): Promise<void> {
    this.releasedSession ??= new Promise<void>((resolve) => {
      this.disposeWaiter = resolve
      this.worker.ref()
      this.worker.postMessage({ type: 'dispose' } satisfies WorkerRequest)
    })
    return this.releasedSession
  }

  private receive(message: WorkerResponse): void {
    if ((message.type === 'loaded' || message.type === 'load-failed') && message.thread !== undefined) this.thread = message.thread
    switch (message.type) {
      case 'loaded':
        this.loadWaiter?.resolve({
          backend: message.backend, rejected: message.rejected, model: message.model, inputSize: message.inputSize,
          ...(message.dynamicBatch !== undefined ? { dynamicBatch: message.dynamicBatch } : {}),
        })
        break
      case 'load-failed':
        this.loadWaiter?.reject(deserializeError(message.error))
        break
      case 'detected':
      case 'detect-failed': {
        const pending = this.pending.get(message.id)
        if (!pending) return
        this.pending.delete(message.id)
        this.inFlight -= pending.images
        if (message.type === 'detected') pending.resolve(message.outputs)
        else pending.reject(deserializeError(message.error))
        break
      }
      case 'disposed':
        this.disposeWaiter?.()
        break
    }
    this.releaseWhenIdle()
  }

  /** An idle worker must not keep the process alive; `run` refs it again. */
  private releaseWhenIdle(): void {
    if (!this.ended && this.pending.size === 0 && !this.loadWaiter && !this.disposeWaiter) this.worker.unref()
  }

  /** Ends the connection: every waiting request fails with `error`; the worker is terminated unless `terminate` is false. */
  private end(error: Error, lost = error instanceof WorkerLostError, terminate = true): void {
    if (this.ended) return
    this.ended = error
    this.loadWaiter?.reject(error)
    for (const pending of this.pending.values()) pending.reject(error)
    this.pending.clear()
    this.inFlight = 0
    if (terminate) {
      // the worker is gone (or going): nothing is left to release
      this.disposeWaiter?.()
      this.worker.terminate()
      if (this.thread !== undefined) this.threadGone = threadEnded(this.thread, DISPOSE_WAIT_MS)
    }
    if (lost && error instanceof WorkerLostError) this.lostListener?.(error)
  }
}
