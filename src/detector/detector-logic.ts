import type { ModelInformation } from '../contract/index.ts'
import { createInferenceEngine } from '../inference/inference-engine.ts'
import type { BackendChoice } from '../config/inference-settings.ts'
import type { DetectionOutput, DetectionRequestOptions } from '../inference/worker-protocol.ts'
import type { ImageInput } from '../inference/image-decoding.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import type { PoolStatus } from '../inference/worker-pool.ts'

/** The package format this node asks the Loop for by default: an ONNX model package (model.json + .onnx). */
export const DEFAULT_MODEL_FORMAT = 'onnx'

/** Detections of one image, as a DetectorLogic returns them (timings optional for custom logic). */
export type LogicOutput = Omit<DetectionOutput, 'timings'> & { timings?: DetectionOutput['timings'] }

/**
 * One loaded model version that can detect. Immutable: a new version means a new DetectorLogic, built while
 * the old one keeps serving (upstream 0.19 DetectorLogic / DetectorLogicFactory, in TypeScript).
 */
export interface DetectorLogic {
  readonly modelInfo: ModelInformation & { format?: string }
  /** what runs it, for /about and /metrics (e.g. `webgpu-native`, `cpu`, or a custom name) */
  readonly backend: string
  /** the inference workers serving it and why that many (the ONNX engine's pool; a custom logic may leave it out) */
  readonly pool?: PoolStatus
  /** `options.keepDecoded`: a logic that decodes may return the pixels of a non-JPEG image as `decoded` (optional) */
  detect(image: ImageInput, options?: DetectionRequestOptions): Promise<LogicOutput>
  detectBatch(images: ImageInput[], options?: DetectionRequestOptions): Promise<LogicOutput[]>
  dispose(): Promise<void>
}

/** Builds a DetectorLogic from an installed model folder (model.json + files in `modelFormat`). */
export interface DetectorLogicFactory {
  readonly modelFormat: string
  build(modelDir: string): Promise<DetectorLogic>
}

export interface OnnxDetectorOptions {
  modelFormat?: string
  backend?: BackendChoice
  threads?: number
  workers?: number
  ortLibDir?: string
  spinWait?: boolean
  /** dynamic batching of models with a dynamic batch dimension (InferenceEngineOptions) */
  batchWindowMs?: number
  maxBatch?: number
  maxImagePixels?: number
  metrics?: MetricsRegistry
}

/** The default factory: ONNX model packages run by the inference engine (a pool of Workers per model version). */
export class OnnxDetectorFactory implements DetectorLogicFactory {
  readonly modelFormat: string
  constructor(private readonly options: OnnxDetectorOptions = {}) {
    this.modelFormat = options.modelFormat ?? DEFAULT_MODEL_FORMAT
  }

  /** The inference engine is a DetectorLogic as it is (a pool of workers per model version). */
  build(modelDir: string): Promise<DetectorLogic> {
    return createInferenceEngine({
      modelDir,
      backend: this.options.backend,
      threads: this.options.threads,
      workers: this.options.workers,
      ortLibDir: this.options.ortLibDir,
      spinWait: this.options.spinWait,
      batchWindowMs: this.options.batchWindowMs,
      maxBatch: this.options.maxBatch,
      maxImagePixels: this.options.maxImagePixels,
      metrics: this.options.metrics,
    })
  }
}
