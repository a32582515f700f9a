import { mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  decode, decodeJson, DeploymentTarget, Detections, DetectorStatus, ImageDataResponse, ImageIdsResponse, imageFileName, LoopModelsResponse, ModelUploadResponse,
  type Context, type ImageData, type LoopModel,
} from '../contract/index.ts'
import { extractZip, type ZipLimits } from '../foundation/zip-archive.ts'
import { createLogger, errorMessage, quoteInput } from '../foundation/log.ts'
import { LoopError, toLoopError } from './loop-error.ts'
import { API_PREFIX, type LoopRestClient } from './loop-rest-client.ts'

const log = createLogger('loop.data')

/** The Loop accepts at most this many ids per `GET …/images?ids=` (§4 #5). */
export const IMAGE_DATA_CHUNK_SIZE = 100
/** The Loop accepts at most this many Detections per `POST …/detections` (§4 #9). */
export const DETECTIONS_PER_UPLOAD = 100
/** Model files are big; upstream asks 600 s for them (and silently got 60 s, §15.3). */
export const MODEL_TRANSFER_TIMEOUT_MS = 600_000

export interface Progress {
  done: number
  total: number
}

export interface ImageDownloadResult {
  /** ids written by this call */
  downloaded: string[]
  /** ids whose `<id>.jpg` already existed with content */
  skipped: string[]
  /** ids that could not be fetched; each was logged */
  failed: { id: string; error: string }[]
}

/**
 * The data a node exchanges with the Loop for one organization/project (§4 #4–#12): image ids and data,
 * image files, model archives up and down, detections, deployment target, models, detector status.
 */
export class DataExchange {
  constructor(private readonly client: LoopRestClient, readonly context: Context) {}

  /** `/{org}/projects/{project}` — the prefix of every project path (without /api). */
  get projectPath(): string {
    return `/${encodeURIComponent(this.context.organization)}/projects/${encodeURIComponent(this.context.project)}`
  }

  /** #4 `GET …/data?<query>`: the image ids, e.g. `fetchImageIds('state=complete')`; empty query = all images. */
  async fetchImageIds(query: string | Record<string, string> = '', options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const response = await this.client.getJson(`${this.projectPath}/data`, ImageIdsResponse, { query, ...(options.signal ? { signal: options.signal } : {}) })
    return response.image_ids
  }

  /** #5 `GET …/images?ids=a,b,c` in chunks of ≤100 ids, in the order asked. A failing chunk fails the call. */
  async fetchImageData(ids: readonly string[], options: { onProgress?: (progress: Progress) => void; signal?: AbortSignal } = {}): Promise<ImageData[]> {
    const images: ImageData[] = []
    for (let start = 0; start < ids.length; start += IMAGE_DATA_CHUNK_SIZE) {
      const chunk = ids.slice(start, start + IMAGE_DATA_CHUNK_SIZE)
      const query = `ids=${chunk.map(encodeURIComponent).join(',')}`
      const answer = await this.client.getJson(`${this.projectPath}/images`, ImageDataResponse, { query, ...(options.signal ? { signal: options.signal } : {}) })
      images.push(...answer.images)
      options.onProgress?.({ done: Math.min(ids.length, start + chunk.length), total: ids.length })
    }
    return images
  }

  /**
   * #6 `GET …/images/{id}/main` → `<folder>/<imageFileName(id)>` (`<id>.jpg` for the Loop's UUIDs), `concurrency` at a time. Each file is streamed to a
   * temp name and renamed, so a crash never leaves a half image under the final name; files already present
   * with content are skipped. A failing image is logged and reported in `failed`, the rest continue.
   */
  async downloadImages(ids: readonly string[], folder: string, options: {
    concurrency?: number
    timeoutMs?: number
    onProgress?: (progress: Progress) => void
  } = {}): Promise<ImageDownloadResult> {
    await mkdir(folder, { recursive: true })
    const result: ImageDownloadResult = { downloaded: [], skipped: [], failed: [] }
    const total = ids.length
    let done = 0
    let next = 0
    const worker = async () => {
      while (next < ids.length) {
        const id = ids[next++]!
        const outcome = await this.downloadImage(id, folder, options.timeoutMs)
        if (outcome === 'downloaded') result.downloaded.push(id)
        else if (outcome === 'skipped') result.skipped.push(id)
        else result.failed.push({ id, error: outcome.error })
        done++
        options.onProgress?.({ done, total })
      }
    }
    const workers = Math.max(1, Math.min(options.concurrency ?? 4, ids.length))
    await Promise.all(Array.from({ length: workers }, worker))
    if (result.failed.length > 0) {
      log.warn('some images could not be downloaded', { failed: result.failed.length, total, first_error: result.failed[0]!.error })
    }
    return result
  }

  /**
   * #6 `GET …/images/{id}/main` → the image bytes, in memory (the trainer checks them before writing).
   * Non-2xx → LoopError `http` with the status (a 404 means the Loop has no such image).
   */
  async fetchImageBytes(id: string, signal?: AbortSignal, options: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    const path = `${this.projectPath}/images/${encodeURIComponent(id)}/main`
    const timeoutMs = options.timeoutMs
    const response = await this.client.download(path, { ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(signal ? { signal } : {}) })
    try {
      return new Uint8Array(await response.arrayBuffer())
    } catch (error) {
      throw toLoopError(error, { method: 'GET', path: API_PREFIX + path, timeoutMs: timeoutMs ?? 0 }, signal)
    }
  }

  /**
   * #7 `GET …/models/{id}/{format}/file` (no login needed; the session is sent when there is one) and
   * extraction into `targetDir` — sub-folders kept, nothing half-extracted, existing files never overwritten.
   * Returns the absolute paths of the files written.
   */
  async downloadModel(modelId: string, format: string, targetDir: string, options: {
    timeoutMs?: number
    onProgress?: (progress: { bytes: number; totalBytes: number | null }) => void
    zipLimits?: ZipLimits
    signal?: AbortSignal
  } = {}): Promise<string[]> {
    const path = `${this.projectPath}/models/${encodeURIComponent(modelId)}/${encodeURIComponent(format)}/file`
    const timeoutMs = options.timeoutMs ?? MODEL_TRANSFER_TIMEOUT_MS
    const response = await this.client.download(path, { requiresLogin: false, timeoutMs, ...(options.signal ? { signal: options.signal } : {}) })
    const fileName = fileNameFromContentDisposition(response.headers.get('content-disposition'))
    const lengthHeader = Number(response.headers.get('content-length'))
    const totalBytes = Number.isFinite(lengthHeader) && lengthHeader > 0 ? lengthHeader : null
    const archive = await readAll(response, (bytes) => options.onProgress?.({ bytes, totalBytes }), { method: 'GET', path: API_PREFIX + path, timeoutMs })
    const written = await extractZip(archive, targetDir, options.zipLimits)
    log.info('model downloaded', { model_id: modelId, format, file: fileName, bytes: archive.length, files: written.length })
    return written.map((name) => join(targetDir, name))
  }

  /**
   * #8 `PUT …/trainings/{n}/models/latest/{format}/file`, multipart with every part named `files`
   * (the model files plus model.json). Returns the new model's id; non-2xx → LoopError.
   */
  async uploadModel(trainingNumber: number, format: string, files: readonly string[], options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    if (files.length === 0) throw new Error(`no files to upload for format ${format}`)
    const path = `${this.projectPath}/trainings/${trainingNumber}/models/latest/${encodeURIComponent(format)}/file`
    const response = await this.client.sendMultipart('PUT', path, files.map((file) => ({ path: file })), {
      timeoutMs: options.timeoutMs ?? MODEL_TRANSFER_TIMEOUT_MS, ...(options.signal ? { signal: options.signal } : {}),
    })
    const text = await response.text().catch((error) => {
      throw toLoopError(error, { method: 'PUT', path: API_PREFIX + path, timeoutMs: options.timeoutMs ?? MODEL_TRANSFER_TIMEOUT_MS })
    })
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
      return decode(ModelUploadResponse, parsed).id
    } catch (error) {
      throw new LoopError({ kind: 'invalid_response', method: 'PUT', path: API_PREFIX + path, status: response.status, detail: `answered without a model id (${errorMessage(error)})`, body: text, cause: error })
    }
  }

  /**
   * #9 `POST …/detections` with a JSON array, in batches of ≤100. Every item is checked against the
   * Detections contract before anything is sent. `onProgress` counts uploaded detections objects.
   */
  async uploadDetections(detections: readonly unknown[], options: { onProgress?: (progress: Progress) => void; signal?: AbortSignal } = {}): Promise<void> {
    const checked = detections.map((item) => decode(Detections, item))
    for (let start = 0; start < checked.length; start += DETECTIONS_PER_UPLOAD) {
      const batch = checked.slice(start, start + DETECTIONS_PER_UPLOAD)
      await this.client.send('POST', `${this.projectPath}/detections`, { body: { json: batch }, ...(options.signal ? { signal: options.signal } : {}) }).then((r) => r.body?.cancel())
      options.onProgress?.({ done: start + batch.length, total: checked.length })
    }
  }

  /** #10 `GET …/deployment/target`: the model the Loop wants deployed. */
  fetchDeploymentTarget(): Promise<DeploymentTarget> {
    return this.client.getJson(`${this.projectPath}/deployment/target`, DeploymentTarget)
  }

  /**
   * #10 for the detector's update loop: the target, or null while the Loop has none (404), without the
   * warning every other failure gets; that is the normal state of a fresh project.
   */
  async fetchDeploymentTargetIfSet(): Promise<DeploymentTarget | null> {
    const response = await this.client.request('GET', `${this.projectPath}/deployment/target`)
    if (response.status === 404) {
      await response.body?.cancel()
      return null
    }
    if (!response.ok) {
      const body = await response.text().catch(() => '')
      throw new LoopError({ kind: 'http', method: 'GET', path: `${API_PREFIX}${this.projectPath}/deployment/target`, status: response.status, detail: `failed with ${response.status}`, body })
    }
    return decodeJson(DeploymentTarget, await response.text())
  }

  /** #11 `GET …/models`. */
  async fetchModels(): Promise<LoopModel[]> {
    return (await this.client.getJson(`${this.projectPath}/models`, LoopModelsResponse)).models
  }

  /** #12 `POST …/detectors` (the detector's heartbeat); any 2xx is fine, anything else a LoopError. */
  async sendDetectorStatus(status: DetectorStatus): Promise<void> {
    const body = decode(DetectorStatus, status)
    const response = await this.client.send('POST', `${this.projectPath}/detectors`, { body: { json: body } })
    await response.body?.cancel()
  }

  private async downloadImage(id: string, folder: string, timeoutMs?: number): Promise<'downloaded' | 'skipped' | { error: string }> {
    const target = join(folder, imageFileName(id))
    const existing = await stat(target).catch(() => undefined)
    if (existing && existing.size > 0) return 'skipped'
    const temp = join(folder, `.${imageFileName(id)}.${crypto.randomUUID().slice(0, 8)}.part`)
    const path = `${this.projectPath}/images/${encodeURIComponent(id)}/main`
    try {
      const response = await this.client.download(path, timeoutMs !== undefined ? { timeoutMs } : {})
      const bytes = await writeBodyToFile(response, temp).catch((error) => {
        throw toLoopError(error, { method: 'GET', path: API_PREFIX + path, timeoutMs: timeoutMs ?? 0 })
      })
      if (bytes === 0) throw new Error(`image ${id} arrived empty`)
      await rename(temp, target)
      return 'downloaded'
    } catch (error) {
      await rm(temp, { force: true })
      log.debug('image download failed', { id, error: errorMessage(error) })
      return { error: errorMessage(error) }
    }
  }
}

/** File name of a `Content-Disposition` header (`attachment; filename="x.zip"`, RFC 6266 `filename*` too). */
export function fileNameFromContentDisposition(header: string | null | undefined): string | undefined {
  if (!header) return undefined
  const extended = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header)
  if (extended?.[2]) {
    try {
      return decodeURIComponent(extended[2].trim())
    } catch {
      // fall through to the plain parameter
    }
  }
  const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(header)
  const name = (plain?.[2] ?? plain?.[1])?.trim().replace(/^"|"$/g, '')
  return name || undefined
}

/** Streams the body into a new file at `path`; returns the number of bytes written. */
async function writeBodyToFile(response: Response, path: string): Promise<number> {
  const file = await open(path, 'w')
  let written = 0
  try {
    for await (const chunk of response.body ?? []) {
      await file.write(chunk)
      written += chunk.length
    }
  } finally {
    await file.close()
  }
  return written
}

async function readAll(response: Response, onBytes: (bytes: number) => void, ctx: { method: string; path: string; timeoutMs: number }): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let received = 0
  try {
    for await (const chunk of response.body ?? []) {
      chunks.push(chunk)
      received += chunk.length
      onBytes(received)
    }
  } catch (error) {
    throw toLoopError(error, ctx)
  }
  const out = new Uint8Array(received)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}
