import { formatCreated, type ImageMetadata, type SegmentationDetection } from '../contract/index.ts'
import { encodeJpeg, encodeRgbJpeg } from '../inference/jpeg-encoding.ts'
import { ImageInputError } from '../inference/inference-errors.ts'
import type { ImageInput, RgbImage } from '../inference/image-decoding.ts'
import { sniffImageFormat } from '../inference/image-header.ts'
import { errorMessage, quoteInput, type Logger } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import type { ActiveDetector } from './active-detector.ts'
import { ConcurrencyLimit } from '../foundation/concurrency-limit.ts'
import type { LogicOutput } from './detector-logic.ts'
import type { Outbox } from './outbox.ts'
import type { RelevanceFilter } from './relevance-filter.ts'
import type { AutouploadMode } from '../contract/index.ts'

export interface DetectOptions {
  cameraId?: string | null
  tags?: string[]
  source?: string | null
  autoupload?: AutouploadMode
  creationDate?: string | null
}

export const PICKED_BY_SYSTEM_TAG = 'picked_by_system'

/** One image for `upload`; `name` (a multipart file name) is what a refusal names. */
export interface UploadItem {
  image: ImageInput
  name?: string
}

/** JPEG encodings of raw or non-JPEG images for the outbox at once (CPU work on the I/O thread pool)… */
const ENCODING_CONCURRENCY = 2
/** …and at most this many autouploads encoding or waiting to; beyond it they are dropped as `encode_backlog`. */
const MAX_AUTOUPLOAD_ENCODINGS = 4

/** The outbox cannot take more images now (its write backlog is full); answered with 503, try again later. */
export class OutboxBusyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'OutboxBusyError'
  }
}

/** Whether a detection may go to the outbox: then the pixels of a non-JPEG image are kept for its JPEG encoding. */
const mayUpload = (options: DetectOptions) => (options.autoupload ?? 'filtered') !== 'disabled'

/**
 * Resolves once the request in hand has been answered: encoding for the outbox runs on the main thread (the RGB →
 * RGBA copy, ~1 ms for 640×480) and must not delay the answer it has no part in.
 */
const afterAnswer = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Whether the outbox can take the image's bytes as they are (a JPEG), without encoding. */
const isJpeg = (image: ImageInput) => image.kind === 'encoded' && sniffImageFormat(image.bytes) === 'jpeg'

/** The last detection, for the status page: the image as JPEG and its metadata. */
export interface LastDetection {
  jpeg: Uint8Array
  metadata: ImageMetadata
  at: number
}

/** A segmentation shape as detectors return it (§6.5): a Shape object becomes `"x1,y1,x2,y2,…"`. */
export function flattenShape(detection: SegmentationDetection): SegmentationDetection {
  if (typeof detection.shape === 'string') return detection
  return { ...detection, shape: detection.shape.points.flatMap((p) => [p.x, p.y]).join(',') }
}

/** ImageMetadata of one detection result plus the request's tags, source and creation date (§7.4). */
export function toImageMetadata(output: LogicOutput, options: DetectOptions): ImageMetadata {
  return {
    box_detections: output.box_detections,
    point_detections: output.point_detections,
    segmentation_detections: output.segmentation_detections.map(flattenShape),
    classification_detections: output.classification_detections,
    box_annotations: [],
    point_annotations: [],
    classification_annotation: null,
    tags: [...(options.tags ?? [])],
    // upstream overwrites `created` with the caller's creation_date, null when none was given
    created: options.creationDate ?? null,
    source: options.source ?? null,
  }
}

/**
 * The detection flow of §7.4: detect on the active model, build ImageMetadata, and decide what goes to the
 * outbox (relevance filter, `all`, or nothing) without making the caller wait for the upload.
 */
export class DetectionService {
  private last: { image: ImageInput; metadata: ImageMetadata; at: number } | undefined
  private readonly detections
  private readonly autouploads
  private readonly failures
  private readonly encodings = new ConcurrencyLimit(ENCODING_CONCURRENCY)

  constructor(private readonly deps: {
    active: ActiveDetector
    filter: RelevanceFilter
    outbox: Outbox
    log: Logger
    metrics: MetricsRegistry
    /** keeps fire-and-forget uploads visible to graceful shutdown */
    track: <T>(work: Promise<T>) => Promise<T>
    now?: () => number
    /** MAX_IMAGE_PIXELS for uploads (default 50 MP) */
    maxImagePixels?: number
    /** `source` of the images this detector sends to the Loop when the client names none: the node's name */
    defaultSource?: string
  }) {
    this.detections = deps.metrics.counter('detector_images_total', 'images detected, by route (rest, socket) and autoupload mode')
    this.autouploads = deps.metrics.counter('detector_autouploads_total', 'images handed to the outbox by the detection flow, by reason')
    this.failures = deps.metrics.counter('detector_failures_total', 'detections and uploads that failed, by kind')
  }

  async detect(image: ImageInput, options: DetectOptions, route: string): Promise<ImageMetadata> {
    const output = await this.deps.active.use((logic) => logic.detect(image, { keepDecoded: mayUpload(options) }))
    return this.finish(image, output, options, route)
  }

  async detectBatch(images: ImageInput[], options: DetectOptions, route: string): Promise<ImageMetadata[]> {
    const outputs = await this.deps.active.use((logic) => logic.detectBatch(images, { keepDecoded: mayUpload(options) }))
    return outputs.map((output, i) => this.finish(images[i]!, output, options, route))
  }

  /**
   * `/upload` (named files) and the socket `upload` event (one image): the images go to the outbox tagged
   * `picked_by_system`, with category ids taken from the active model by category name (§5.5). Every image is
   * checked as /detect checks it (header, completeness, pixel budget) and encoded before the first is saved, so
   * a bad one, named in the ImageInputError, leaves nothing queued and a client can retry the whole request.
   * Resolves when all are saved.
   */
  async upload(images: ImageInput | UploadItem[], metadata: ImageMetadata, priority: boolean): Promise<void> {
    const items = Array.isArray(images) ? images : [{ image: images }]
    const categories = this.deps.active.logic?.modelInfo.categories ?? []
    const idOf = (name: string) => categories.find((c) => c.name === name)?.id ?? ''
    const withIds: ImageMetadata = {
      ...metadata,
      box_detections: (metadata.box_detections ?? []).map((d) => ({ ...d, category_id: idOf(d.category_name) })),
      point_detections: (metadata.point_detections ?? []).map((d) => ({ ...d, category_id: idOf(d.category_name) })),
      segmentation_detections: (metadata.segmentation_detections ?? []).map((d) => ({ ...d, category_id: idOf(d.category_name) })),
      classification_detections: (metadata.classification_detections ?? []).map((d) => ({ ...d, category_id: idOf(d.category_name) })),
      tags: [...new Set([...(metadata.tags ?? []), PICKED_BY_SYSTEM_TAG])],
      created: metadata.created ?? formatCreated(),
      source: metadata.source ?? this.deps.defaultSource ?? null,
    }
    const { outbox } = this.deps
    const jpegs: Uint8Array[] = []
    for (const { image, name } of items) {
      // no encoding for an image the outbox would refuse anyway; the caller waits for its encoding, so it may queue
      if (!isJpeg(image) && !outbox.hasWriteRoom()) this.uploadRefused(outbox.refuse(priority ? 'priority' : 'normal', 'write_backlog', 'the outbox write backlog is full'))
      try {
        // a JPEG goes to the outbox as it is: what the Loop would refuse later is refused here
        const encode = () => encodeJpeg(image, undefined, this.deps.maxImagePixels)
        jpegs.push(await (isJpeg(image) ? encode() : this.encodings.run(encode)))
      } catch (error) {
        if (error instanceof ImageInputError && name !== undefined) throw new ImageInputError(`file ${quoteInput(name)}: ${error.message}`)
        throw error
      }
    }
    for (const [index, jpeg] of jpegs.entries()) {
      const result = await outbox.save(jpeg, withIds, priority)
      if (!result.saved) this.uploadRefused(result, index)
      this.autouploads.inc({ reason: PICKED_BY_SYSTEM_TAG })
    }
  }

  private finish(image: ImageInput, output: LogicOutput, options: DetectOptions, route: string): ImageMetadata {
    const metadata = toImageMetadata(output, options)
    const autoupload = options.autoupload ?? 'filtered'
    this.detections.inc({ route, autoupload })
    if (autoupload !== 'disabled') {
      // decided now (the filter's history must see detections in order); saved in the background
      const causes = autoupload === 'filtered' ? this.deps.filter.causes(metadata, options.cameraId, (this.deps.now ?? Date.now)()) : []
      if (autoupload === 'all' || causes.length > 0) {
        // the answer keeps the client's source (null when none); what the Loop gets names this detector then
        const toSave: ImageMetadata = { ...metadata, tags: [...(metadata.tags ?? []), ...causes], source: metadata.source ?? this.deps.defaultSource ?? null }
        this.autoupload(image, output.decoded, toSave, autoupload === 'all' ? ['all'] : causes)
      }
    }
    // a camera's frame buffer is used again once detected; the cameras keep their last frames themselves
    if (route !== 'camera') this.last = { image, metadata, at: Date.now() }
    return metadata
  }

  /** `queuedBefore`: images of the same request already queued (a refusal of the outbox, not of the input) */
  private uploadRefused(result: { reason: string; detail: string }, queuedBefore = 0): never {
    this.failures.inc({ kind: 'upload' })
    const before = queuedBefore > 0 ? `; the ${queuedBefore} image(s) before it were queued` : ''
    const message = `the image could not be queued for upload: ${result.reason} (${result.detail})${before}`
    throw result.reason === 'write_backlog' ? new OutboxBusyError(message) : new Error(message)
  }

  /**
   * Hands an image to the outbox without making the detection wait. Nothing here grows with the request
   * rate: a JPEG goes straight to the outbox, which decides at once (and drops what its bounded write queue
   * cannot take); other images are encoded a few at a time, from the pixels the model decoded when it returned
   * them (so no image is decoded twice), and dropped when more are waiting.
   */
  private autoupload(image: ImageInput, decoded: RgbImage | undefined, metadata: ImageMetadata, reasons: string[]): void {
    const { outbox } = this.deps
    let saving: Promise<{ saved: boolean }>
    if (isJpeg(image)) saving = outbox.save(image.bytes, metadata, false)
    else if (!outbox.hasWriteRoom()) saving = Promise.resolve(outbox.refuse('normal', 'write_backlog', 'the outbox write backlog is full; the image was not encoded'))
    else if (this.encodings.running + this.encodings.queued >= MAX_AUTOUPLOAD_ENCODINGS) {
      saving = Promise.resolve(outbox.refuse('normal', 'encode_backlog', `${MAX_AUTOUPLOAD_ENCODINGS} images are being encoded for the outbox already`))
    } else {
      // a camera frame in shared memory is used again once detected: what is encoded later must be a copy
      const source = !decoded && image.bytes.buffer instanceof SharedArrayBuffer ? { ...image, bytes: new Uint8Array(image.bytes) } : image
      const encode = async () => {
        await afterAnswer()
        return decoded ? encodeRgbJpeg(decoded) : encodeJpeg(source, undefined, this.deps.maxImagePixels)
      }
      saving = this.encodings.run(encode).then((jpeg) => outbox.save(jpeg, metadata, false))
    }
    void this.deps.track(saving.then((result) => {
      if (result.saved) for (const reason of reasons) this.autouploads.inc({ reason })
      // the outbox logged and counted why it did not take the image
      else this.failures.inc({ kind: 'autoupload' })
    }, (error: unknown) => {
      this.failures.inc({ kind: 'autoupload' })
      this.deps.log.error('autoupload failed', { error: errorMessage(error) })
    }))
  }

  lastDetectionMetadata(): { metadata: ImageMetadata; at: number } | undefined {
    return this.last && { metadata: this.last.metadata, at: this.last.at }
  }

  /** The last detection with its image as JPEG, encoded only when someone asks (the status page). */
  async lastDetection(): Promise<LastDetection | undefined> {
    const last = this.last
    if (!last) return undefined
    return { jpeg: await encodeJpeg(last.image, undefined, this.deps.maxImagePixels), metadata: last.metadata, at: last.at }
  }
}
