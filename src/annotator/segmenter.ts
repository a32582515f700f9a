/**
 * Runs box segmentation away from the main thread: one worker owns a small cache of decoded photos and
 * answers requests one at a time, so socket events, heartbeats and HTTP stay responsive while a cut runs.
 * The in-process variant does the same work inline (tests, runtimes without Workers).
 */
import { readFile } from 'node:fs/promises'
import { decodeEncodedImage, type RgbImage } from '../inference/image-decoding.ts'
import { ImageInputError } from '../inference/inference-errors.ts'
import { createLogger, errorMessage } from '../foundation/log.ts'
import { segmentBox, SegmentationInputError, type SegmentationRequest, type SegmentationResult } from './box-segmentation.ts'

const log = createLogger('annotator.segmenter')

export interface ImageSize {
  width: number
  height: number
}

export interface Segmenter {
  /** Decodes the photo (once; it stays cached) and returns its size. */
  imageSize(imagePath: string): Promise<ImageSize>
  segment(imagePath: string, request: SegmentationRequest): Promise<SegmentationResult>
  dispose(): Promise<void>
}

/** The segmentation worker stopped, timed out or was disposed. */
export class SegmenterUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SegmenterUnavailableError'
  }
}

/** Decoded photos by path, least recently used dropped first (a 12 MP photo is 36 MB of RGB). */
export class DecodedImageCache {
  private readonly entries = new Map<string, Promise<RgbImage>>()

  constructor(private readonly capacity = 4) {}

  get(path: string): Promise<RgbImage> {
    const cached = this.entries.get(path)
    if (cached) {
      this.entries.delete(path)
      this.entries.set(path, cached)
      return cached
    }
    const decoding = readFile(path).then(
      (bytes) => decodeEncodedImage(new Uint8Array(bytes)),
      (error: NodeJS.ErrnoException) => {
        throw new ImageInputError(error.code === 'ENOENT' ? `the image ${path} does not exist` : `the image ${path} cannot be read: ${error.message}`)
      },
    )
    // a failed decode is not cached: the file may be replaced by a good download
    decoding.catch(() => this.entries.delete(path))
    this.entries.set(path, decoding)
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!)
    return decoding
  }
}

export function createInProcessSegmenter(cacheSize = 4): Segmenter {
  const cache = new DecodedImageCache(cacheSize)
  return {
    async imageSize(imagePath) {
      const image = await cache.get(imagePath)
      return { width: image.width, height: image.height }
    },
    async segment(imagePath, request) {
      return segmentBox(await cache.get(imagePath), request)
    },
    async dispose() {},
  }
}

// ---------------------------------------------------------------- worker protocol

export type SegmenterRequest =
  | { type: 'size'; id: number; imagePath: string }
  | { type: 'segment'; id: number; imagePath: string; request: SegmentationRequest }

export type SegmenterResponse =
  | { type: 'size'; id: number; size: ImageSize }
  | { type: 'segmented'; id: number; result: SegmentationResult }
  | { type: 'failed'; id: number; error: { name: string; message: string } }

export function serializeSegmenterError(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) }
}

function deserializeSegmenterError(error: { name: string; message: string }): Error {
  if (error.name === 'SegmentationInputError') return new SegmentationInputError(error.message)
  if (error.name === 'ImageInputError') return new ImageInputError(error.message)
  const rebuilt = new Error(error.message)
  rebuilt.name = error.name
  return rebuilt
}

type RequestWithoutId = SegmenterRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never

/** Bun's Worker can be unref'd; the DOM typings hide that. */
type RefCountedWorker = Worker & { ref(): void; unref(): void }

interface Pending {
  resolve(value: unknown): void
  reject(error: Error): void
  timer: ReturnType<typeof setTimeout>
}

export interface WorkerSegmenterOptions {
  /** a request that takes longer ends the worker (a new one starts for the next request); default 30 s */
  timeoutMs?: number
}

/**
 * Segmentation in a worker. A crashed or stuck worker fails its requests with SegmenterUnavailableError
 * and is replaced on the next request; the worker is unref'd while idle.
 */
export function createWorkerSegmenter(options: WorkerSegmenterOptions = {}): Segmenter {
  const timeoutMs = options.timeoutMs ?? 30_000
  let worker: RefCountedWorker | undefined
  let nextId = 1
  let disposed = false
  const pending = new Map<number, Pending>()

  const failAll = (error: Error) => {
    for (const entry of pending.values()) {
      clearTimeout(entry.timer)
      entry.reject(error)
    }
    pending.clear()
  }
  const stopWorker = (reason: Error) => {
    const current = worker
    worker = undefined
    current?.terminate()
    failAll(reason)
  }
  const ensureWorker = (): RefCountedWorker => {
    if (worker) return worker
    const created = new Worker(new URL('./segmentation-worker.ts', import.meta.url).href, { type: 'module' }) as RefCountedWorker
    created.addEventListener('message', (event: MessageEvent<SegmenterResponse>) => {
      const message = event.data
      const entry = pending.get(message.id)
      if (!entry) return
      pending.delete(message.id)
      clearTimeout(entry.timer)
      if (message.type === 'failed') entry.reject(deserializeSegmenterError(message.error))
      else entry.resolve(message.type === 'size' ? message.size : message.result)
      if (pending.size === 0) created.unref()
    })
    created.addEventListener('error', (event: ErrorEvent) => {
      if (worker !== created) return
      log.error('segmentation worker crashed', { error: event.message })
      stopWorker(new SegmenterUnavailableError(`the segmentation worker crashed: ${event.message}`))
    })
    worker = created
    return created
  }
  const call = <T>(message: RequestWithoutId): Promise<T> => {
    if (disposed) return Promise.reject(new SegmenterUnavailableError('the segmenter was disposed'))
    const target = ensureWorker()
    const id = nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        log.error('segmentation took too long; restarting the worker', { timeout_ms: timeoutMs })
        stopWorker(new SegmenterUnavailableError(`segmentation did not finish within ${timeoutMs} ms`))
      }, timeoutMs)
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer })
      target.ref()
      try {
        target.postMessage({ ...message, id } as SegmenterRequest)
      } catch (error) {
        stopWorker(new SegmenterUnavailableError(`cannot reach the segmentation worker: ${errorMessage(error)}`))
      }
    })
  }
  return {
    imageSize: (imagePath) => call<ImageSize>({ type: 'size', imagePath }),
    segment: (imagePath, request) => call<SegmentationResult>({ type: 'segment', imagePath, request }),
    async dispose() {
      disposed = true
      stopWorker(new SegmenterUnavailableError('the segmenter was disposed'))
    },
  }
}
