/**
 * Image decoding off the main thread, for a DetectorLogic of one's own that needs pixels: `decodeImage` on the main
 * thread blocks the event loop for the whole decode (a 640×480 JPEG ~3 ms, 12 MP ~70 ms), so every request waits
 * for every other's decode. An ImageDecodePool decodes in up to `size` workers (default: the cores this process
 * may use), started on demand and unref'd while idle, so an idle pool neither costs threads nor keeps the process
 * alive (on Bun; Deno's Workers cannot be unref'd, so there an idle worker keeps the process until `dispose` or
 * `process.exit`). `decodeImageInWorker` uses one pool shared by the process.
 */
import { availableParallelism } from 'node:os'
import { startModuleWorker, type ModuleWorker } from '../runtime/module-worker.ts'
import type { DecodeOptions, ImageInput, RgbImage } from './image-decoding.ts'
import { deserializeError, ImageInputError, InferenceUnavailableError, type SerializedError } from './inference-errors.ts'

/** What a decode worker is told: everything but `targetSize`, a function that cannot cross threads. */
export type WorkerDecodeOptions = Omit<DecodeOptions, 'targetSize'>

export interface DecodeRequest { id: number; image: ImageInput; options: WorkerDecodeOptions }
export interface DecodeResponse { id: number; image?: RgbImage; error?: SerializedError }

interface Waiter { resolve(image: RgbImage): void; reject(error: Error): void }

interface DecodeWorker { worker: ModuleWorker; pending: Map<number, Waiter> }

export interface ImageDecodePoolOptions {
  /** most decode workers (default: os.availableParallelism(), which honours the process's CPU affinity) */
  size?: number
}

export class ImageDecodePool {
  readonly size: number
  private readonly workers: DecodeWorker[] = []
  private nextId = 1
  private disposed = false

  constructor(options: ImageDecodePoolOptions = {}) {
    this.size = Math.max(1, Math.floor(options.size ?? availableParallelism()))
  }

  /** Decodes `image` (as `decodeImage` does) in a worker; the caller keeps its bytes. */
  decode(image: ImageInput, options: WorkerDecodeOptions = {}): Promise<RgbImage> {
    if (this.disposed) return Promise.reject(new InferenceUnavailableError('the image decode pool was disposed'))
    if (!image || typeof image !== 'object' || !(image.bytes instanceof Uint8Array)) {
      return Promise.reject(new ImageInputError('an image must be { kind: "encoded", bytes } or { kind: "raw", bytes, dtype, shape } with bytes as a Uint8Array'))
    }
    // a copy of its own to move: the caller's bytes (maybe a view into a pooled Buffer) stay as they are
    const bytes = new Uint8Array(image.bytes)
    const target = this.leastBusy()
    const id = this.nextId++
    return new Promise<RgbImage>((resolve, reject) => {
      target.pending.set(id, { resolve, reject })
      target.worker.ref()
      target.worker.postMessage({ id, image: { ...image, bytes }, options: { decoder: options.decoder, maxPixels: options.maxPixels } } satisfies DecodeRequest, [bytes.buffer as ArrayBuffer])
    })
  }

  /** workers started so far */
  get started(): number {
    return this.workers.length
  }

  async dispose(): Promise<void> {
    this.disposed = true
    for (const entry of [...this.workers]) this.end(entry, new InferenceUnavailableError('the image decode pool was disposed'))
  }

  /** An idle worker, else a new one while under `size`, else the one with the fewest images waiting. */
  private leastBusy(): DecodeWorker {
    const idle = this.workers.find((entry) => entry.pending.size === 0)
    if (idle) return idle
    if (this.workers.length < this.size) return this.start()
    return this.workers.reduce((best, entry) => (entry.pending.size < best.pending.size ? entry : best))
  }

  private start(): DecodeWorker {
    const entry: DecodeWorker = { worker: startModuleWorker(new URL('./image-decode-worker.ts', import.meta.url)), pending: new Map() }
    entry.worker.addEventListener('message', (event: MessageEvent<DecodeResponse>) => {
      const { id, image, error } = event.data
      const waiter = entry.pending.get(id)
      entry.pending.delete(id)
      if (entry.pending.size === 0) entry.worker.unref()
      if (image) waiter?.resolve(image)
      else waiter?.reject(deserializeError(error ?? { name: 'Error', message: 'the decode worker answered without an image' }))
    })
    entry.worker.addEventListener('error', (event: ErrorEvent) => this.end(entry, new InferenceUnavailableError(`a decode worker crashed: ${event.message}`)))
    this.workers.push(entry)
    return entry
  }

  /** Ends one worker: what it was decoding fails with `error`; the next decode starts a fresh one. */
  private end(entry: DecodeWorker, error: Error): void {
    const at = this.workers.indexOf(entry)
    if (at >= 0) this.workers.splice(at, 1)
    for (const waiter of entry.pending.values()) waiter.reject(error)
    entry.pending.clear()
    entry.worker.terminate()
  }
}

let shared: ImageDecodePool | undefined

/**
 * `decodeImage` in a worker of a pool shared by the process: the same pixels and the same errors (ImageInputError
 * for a bad image), without blocking the event loop. For a DetectorLogic that needs pixels.
 */
export function decodeImageInWorker(image: ImageInput, options: WorkerDecodeOptions = {}): Promise<RgbImage> {
  shared ??= new ImageDecodePool()
  return shared.decode(image, options)
}
