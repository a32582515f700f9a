import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { imageFileName, type ImageData } from '../contract/index.ts'
import { backoffDelayMs } from '../foundation/backoff.ts'
import { createLogger, errorMessage, type Logger } from '../foundation/log.ts'
import { MetricsRegistry } from '../foundation/metrics.ts'
import { checkJpeg, looksLikeJpeg } from './jpeg-check.ts'
import { DownloadError, sleepUnlessCancelled, throwIfCancelled } from './training-errors.ts'

/**
 * Downloads what a training needs (§8.5 prepare): the ids of the complete images, their image data (≤100 ids
 * per request) and the image files, into the project's shared image cache.
 * Files already cached are kept; each new file is checked in-process (see jpeg-check.ts) and a corrupt one is
 * dropped and counted. Requests run at most `concurrency` at a time, retried with exponential backoff.
 * A file that keeps failing for a transient reason fails the step (DownloadError, retried by the state machine;
 * what was downloaded stays cached); one the Loop says does not exist (a 4xx) is skipped and counted.
 */

/** The Loop calls the downloader needs; a DataExchange (src/loop/) provides them. */
export interface TrainingDataSource {
  /** `GET …/data?<query>` → image ids */
  fetchImageIds(query: string, signal?: AbortSignal): Promise<string[]>
  /** `GET …/images?ids=…` for ≤100 ids */
  fetchImageData(ids: readonly string[], signal?: AbortSignal): Promise<ImageData[]>
  /** `GET …/images/{id}/main` → the JPEG bytes */
  downloadImage(id: string, signal: AbortSignal): Promise<Uint8Array>
}

/** Where the progress bar goes: a TTY gets a redrawn bar, anything else a plain line every 10 %. */
export interface ProgressOutput {
  isTTY?: boolean
  write(text: string): unknown
}

export interface DownloadOptions {
  imagesFolder: string
  signal?: AbortSignal
  /** image requests in flight at once (default 4) */
  concurrency?: number
  /** ids per image-data request, at most 100 (the Loop's limit) */
  chunkSize?: number
  /** tries per request, the first included (default 3) */
  attempts?: number
  /** wait before the second try; doubles after that (default 500 ms) */
  retryBaseMs?: number
  /** minimum time between the starts of two image requests, as upstream (default 20 ms) */
  minRequestSpacingMs?: number
  /** 0–0.5 while image data is fetched, 0.5–1 while files are downloaded (upstream's split) */
  onProgress?(progress: number): void
  /** default: process.stderr; null: no progress output */
  progressOutput?: ProgressOutput | null
  /** an image claiming more pixels is dropped as corrupt (MAX_IMAGE_PIXELS, default 50 MP) */
  maxImagePixels?: number
  log?: Logger
  metrics?: MetricsRegistry
}

export interface ImageFilesResult {
  /** ids whose file is in the cache now, in the order asked */
  present: string[]
  downloaded: number
  alreadyCached: number
  /** downloaded but not a complete JPEG: deleted */
  corrupt: number
  /** the Loop has no such image (4xx) */
  missing: number
}

export interface TrainingDataResult extends ImageFilesResult {
  /** image data of the images whose file is present (what the training uses) */
  imageData: ImageData[]
  /** images of the Loop the training cannot use */
  skippedImageCount: number
}

export const MAX_IDS_PER_REQUEST = 100

/** Why a request failed for good on the Loop's side: a client error other than timeout/rate limit. */
function isPermanent(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status
  return typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429
}

async function withRetries<T>(what: string, task: () => Promise<T>, options: { attempts: number; retryBaseMs: number; signal: AbortSignal; log: Logger }): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    throwIfCancelled(options.signal)
    try {
      return await task()
    } catch (error) {
      if (options.signal.aborted || isPermanent(error) || attempt >= options.attempts) throw error
      const delayMs = backoffDelayMs(attempt - 1, { initialMs: options.retryBaseMs, maxMs: Infinity })
      options.log.debug('request failed; retrying', { what, attempt, delay_ms: delayMs, error: errorMessage(error) })
      await sleepUnlessCancelled(delayMs, options.signal)
    }
  }
}

/** Draws a progress bar on a TTY, or writes a plain line at every 10 % otherwise. */
export class ProgressReporter {
  private lastDecile = -1
  private lastDrawn = ''

  constructor(private readonly output: ProgressOutput | null, private readonly label: string) {}

  update(done: number, total: number): void {
    if (!this.output || total <= 0) return
    const fraction = Math.min(1, done / total)
    if (this.output.isTTY) {
      const width = 30
      const filled = Math.round(fraction * width)
      const line = `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(fraction * 100)}% ${done}/${total}`
      if (line !== this.lastDrawn) this.output.write(line + (done >= total ? '\n' : ''))
      this.lastDrawn = line
      return
    }
    const decile = Math.floor(fraction * 10)
    if (decile > this.lastDecile) {
      this.lastDecile = decile
      this.output.write(`${this.label}: ${done}/${total} (${decile * 10}%)\n`)
    }
  }
}

async function cachedFileIsUsable(path: string): Promise<boolean> {
  try {
    if ((await stat(path)).size === 0) return false
    const handle = await open(path, 'r')
    try {
      const head = new Uint8Array(2)
      await handle.read(head, 0, 2, 0)
      return looksLikeJpeg(head)
    } finally {
      await handle.close()
    }
  } catch {
    return false
  }
}

/**
 * Makes sure `<imagesFolder>/<imageFileName(id)>` exists for each id (any Loop id; see image-file-name.ts): cached files are kept, the rest downloaded with
 * bounded parallelism, checked, and written under a temp name then renamed (a crash never leaves half a file).
 */
export async function downloadImageFiles(source: Pick<TrainingDataSource, 'downloadImage'>, ids: readonly string[], options: DownloadOptions & {
  onFilesProgress?(done: number, total: number): void
}): Promise<ImageFilesResult> {
  const signal = options.signal ?? new AbortController().signal
  const log = (options.log ?? createLogger('trainer')).child('downloader')
  const metrics = options.metrics ?? new MetricsRegistry()
  const images = metrics.counter('trainer_downloaded_images_total', 'Image files handled by the training data downloader, by result')
  await mkdir(options.imagesFolder, { recursive: true })

  const result: ImageFilesResult = { present: [], downloaded: 0, alreadyCached: 0, corrupt: 0, missing: 0 }
  const toFetch: string[] = []
  for (const id of ids) {
    if (await cachedFileIsUsable(join(options.imagesFolder, imageFileName(id)))) {
      result.present.push(id)
      result.alreadyCached++
    } else {
      toFetch.push(id)
    }
  }
  images.inc({ result: 'cached' }, result.alreadyCached)

  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 4))
  const spacingMs = options.minRequestSpacingMs ?? 20
  const retry = { attempts: Math.max(1, options.attempts ?? 3), retryBaseMs: options.retryBaseMs ?? 500, signal, log }
  const transientFailures: { id: string; error: string }[] = []
  let nextStartAt = 0
  let next = 0
  let done = 0
  const report = () => options.onFilesProgress?.(done, toFetch.length)

  const fetchOne = async (id: string) => {
    const target = join(options.imagesFolder, imageFileName(id))
    let bytes: Uint8Array
    try {
      bytes = await withRetries(`image ${id}`, async () => {
        const now = performance.now()
        const wait = Math.max(0, nextStartAt - now)
        nextStartAt = Math.max(now, nextStartAt) + spacingMs
        if (wait > 0) await sleepUnlessCancelled(wait, signal)
        return source.downloadImage(id, signal)
      }, retry)
    } catch (error) {
      throwIfCancelled(signal)
      if (isPermanent(error)) {
        result.missing++
        images.inc({ result: 'missing' })
        log.warn('the Loop has no file for an image; skipping it', { id, error: errorMessage(error) })
      } else {
        transientFailures.push({ id, error: errorMessage(error) })
        images.inc({ result: 'failed' })
      }
      return
    }
    const check = await checkJpeg(bytes, options.maxImagePixels)
    if (!check.ok) {
      result.corrupt++
      images.inc({ result: 'corrupt' })
      log.warn('dropping a corrupt image', { id, reason: check.reason, bytes: bytes.length })
      return
    }
    const temp = join(options.imagesFolder, `.${imageFileName(id)}.${crypto.randomUUID().slice(0, 8)}.part`)
    try {
      await writeFile(temp, bytes)
      await rename(temp, target)
    } catch (error) {
      await rm(temp, { force: true })
      throw error
    }
    result.present.push(id)
    result.downloaded++
    images.inc({ result: 'downloaded' })
  }

  const worker = async () => {
    while (next < toFetch.length) {
      throwIfCancelled(signal)
      const id = toFetch[next++]!
      await fetchOne(id)
      done++
      report()
    }
  }
  report()
  await Promise.all(Array.from({ length: Math.min(concurrency, toFetch.length) }, worker))
  throwIfCancelled(signal)
  if (transientFailures.length > 0) {
    const first = transientFailures[0]!
    throw new DownloadError(`${transientFailures.length} of ${toFetch.length} images could not be downloaded (first: ${first.id}: ${first.error})`)
  }
  if (result.corrupt > 0) log.warn('corrupt images were dropped', { corrupt: result.corrupt, total: ids.length })
  // in the order asked, not the order the downloads finished
  const present = new Set(result.present)
  result.present = ids.filter((id) => present.has(id))
  return result
}

/**
 * The prepare step's download (§8.5): ids (`query`, default `state=complete`), image data in chunks of ≤100,
 * then the files. Returns the image data of the usable images and how many were skipped.
 */
export async function downloadTrainingData(source: TrainingDataSource, options: DownloadOptions & { query?: string }): Promise<TrainingDataResult> {
  const signal = options.signal ?? new AbortController().signal
  const log = (options.log ?? createLogger('trainer')).child('downloader')
  const output = options.progressOutput === undefined ? process.stderr : options.progressOutput
  const chunkSize = Math.min(MAX_IDS_PER_REQUEST, Math.max(1, Math.floor(options.chunkSize ?? MAX_IDS_PER_REQUEST)))
  const retry = { attempts: Math.max(1, options.attempts ?? 3), retryBaseMs: options.retryBaseMs ?? 500, signal, log }
  const wrap = (what: string) => (error: unknown): never => {
    throwIfCancelled(signal)
    throw new DownloadError(`${what}: ${errorMessage(error)}`, { cause: error })
  }

  const ids = await withRetries('image ids', () => source.fetchImageIds(options.query ?? 'state=complete', signal), retry).catch(wrap('fetching the image ids failed'))
  options.onProgress?.(0)

  const imageData: ImageData[] = []
  const dataBar = new ProgressReporter(output, 'image data')
  for (let start = 0; start < ids.length; start += chunkSize) {
    const chunk = ids.slice(start, start + chunkSize)
    const answer = await withRetries(`image data ${start}`, () => source.fetchImageData(chunk, signal), retry).catch(wrap('fetching image data failed'))
    imageData.push(...answer)
    const done = Math.min(ids.length, start + chunk.length)
    dataBar.update(done, ids.length)
    options.onProgress?.((0.5 * done) / ids.length)
  }

  const filesBar = new ProgressReporter(output, 'images')
  const files = await downloadImageFiles(source, imageData.map((d) => d.id), {
    ...options,
    signal,
    onFilesProgress: (done, total) => {
      filesBar.update(done, total)
      options.onProgress?.(total > 0 ? 0.5 + (0.5 * done) / total : 0.5)
    },
  })
  options.onProgress?.(1)
  const present = new Set(files.present)
  const usable = imageData.filter((d) => present.has(d.id))
  log.info('training data ready', {
    images: ids.length, usable: usable.length, downloaded: files.downloaded, cached: files.alreadyCached, corrupt: files.corrupt, missing: files.missing,
  })
  return { ...files, imageData: usable, skippedImageCount: ids.length - usable.length }
}
