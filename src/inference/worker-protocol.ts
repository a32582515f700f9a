/** Messages between an InferenceEngine (main thread) and its inference worker. */
import type { BoxDetection, ClassificationDetection, PointDetection, SegmentationDetection } from '../contract/index.ts'
import type { BackendChoice, BackendName } from '../config/inference-settings.ts'
import type { ImageDecoderChoice, ImageInput, RgbImage } from './image-decoding.ts'
import type { BackendRejection, SerializedError } from './inference-errors.ts'
import type { ModelInformationWithFormat } from './model-package.ts'

export interface StageTimings {
  decodeMs: number
  preprocessMs: number
  inferenceMs: number
  postprocessMs: number
}

export interface DetectionOutput {
  box_detections: BoxDetection[]
  point_detections: PointDetection[]
  segmentation_detections: SegmentationDetection[]
  classification_detections: ClassificationDetection[]
  /** size of the source image in pixels */
  width: number
  height: number
  /** 1 when decoded at full size; 2, 4 or 8 when a large JPEG was decoded at reduced scale for a small network */
  decodeScale?: number
  timings: StageTimings
  /** images in the session run that detected this one (1: it ran alone; more with dynamic batching) */
  batchSize?: number
  /** the pixels as decoded for the model, when asked for with `keepDecoded` and the image was not a JPEG */
  decoded?: RgbImage
}

/** What a caller asks of a detection besides the detections. */
export interface DetectionRequestOptions {
  /**
   * Send back the decoded pixels (`decoded`) of an image that is not a JPEG (a PNG, a raw array): a caller that will
   * encode it as JPEG, the detector's outbox, then need not decode it again. A JPEG never comes back; it is kept as it is.
   */
  keepDecoded?: boolean
}

export interface WorkerLoadOptions {
  modelDir: string
  backend: BackendChoice
  threads?: number
  ortLibDir?: string
  spinWait?: boolean
  verify: boolean
  confidenceThreshold?: number
  iouThreshold?: number
  imageDecoder: ImageDecoderChoice
  /** most pixels per image, checked from the header before decoding (default DEFAULT_MAX_IMAGE_PIXELS) */
  maxImagePixels?: number
  /** dynamic batching of a model with a dynamic batch dimension (defaults: defaultBatchWindowMs by backend, DEFAULT_MAX_BATCH) */
  batchWindowMs?: number
  maxBatch?: number
}

export type WorkerRequest =
  | { type: 'load'; options: WorkerLoadOptions }
  | { type: 'detect'; id: number; images: ImageInput[]; keepDecoded?: boolean }
  | { type: 'dispose' }

export type WorkerResponse =
  | {
    type: 'loaded'; backend: BackendName; rejected: BackendRejection[]; model: ModelInformationWithFormat; inputSize: { width: number; height: number }
    /** the worker stacks concurrent images into one session run (the model's batch dimension is dynamic and batching is on) */
    dynamicBatch?: boolean
    /** the worker's OS thread (Deno on Linux), whose end its owner awaits after terminating it */
    thread?: number
  }
  | { type: 'load-failed'; error: SerializedError; thread?: number }
  | { type: 'detected'; id: number; outputs: DetectionOutput[] }
  | { type: 'detect-failed'; id: number; error: SerializedError }
  | { type: 'disposed' }
