/**
 * Worker-side: one model on one backend. Loading walks the backend candidates one at a time
 * (session, then a warm-up run, then — for GPU backends — the CPU comparison; with `fastest` also a
 * timing, keeping the quickest); detecting runs
 * decode → preprocess → session → decode+NMS and times each stage.
 */
import { readFile } from 'node:fs/promises'
import { createLogger } from '../foundation/log.ts'
import { basename } from 'node:path'
import { backendCandidates, GPU_BACKENDS } from './backend-choice.ts'
import { RUNTIME } from '../runtime/runtime-name.ts'
import type { BackendName } from '../config/inference-settings.ts'
import { createBackendSession, type BackendSession } from './backend-sessions.ts'
import { verifyAgainstCpu } from './backend-verification.ts'
import { decodeImage, type DecodeOptions, type ImageInput } from './image-decoding.ts'
import { DEFAULT_MAX_IMAGE_PIXELS } from '../config/inference-settings.ts'
import { resampledSize, TensorPreprocessor } from './image-preprocessing.ts'
import { encodeJpeg } from './jpeg-encoding.ts'
import { NoBackendError, type BackendRejection } from './inference-errors.ts'
import { readModelPackage, type ModelInformationWithFormat } from './model-package.ts'
import { resolveModelSpec, type ModelSpec } from './model-spec.ts'
import { readOnnxModelHeader } from './onnx-model-header.ts'
import { decodeDetections, type RawOutput } from './output-decoding.ts'
import { splitBatchOutputs, stackBatch } from './batch-policy.ts'
import type { ImageGeometry } from './image-preprocessing.ts'
import type { RgbImage } from './image-decoding.ts'
import { sniffImageFormat } from './image-header.ts'
import type { DetectionOutput, DetectionRequestOptions, WorkerLoadOptions } from './worker-protocol.ts'

const log = createLogger('inference')

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim().slice(0, 500)

const WARM_UP_PASSES = 2
/** input tensors kept for reuse between batches (two batches of the default size) */
const MAX_SPARE_TENSORS = 16

/**
 * One image decoded and preprocessed into a tensor of its own, waiting for its run. The pixels are kept only when
 * they go back to the caller: a large image waiting for a batch must not hold its full-size decode.
 */
export interface PreparedImage {
  geometry: ImageGeometry
  tensor: Float32Array
  /** the source image's size, and the reduced-scale factor it was decoded at */
  width: number
  height: number
  decodeScale: number
  decoded?: RgbImage
  decodeMs: number
  preprocessMs: number
}

/** What a detection reports of its decoded image besides the tensor. */
function describeDecoded(image: ImageInput, rgb: RgbImage, options: DetectionRequestOptions): Pick<PreparedImage, 'width' | 'height' | 'decodeScale' | 'decoded'> {
  return {
    width: rgb.original?.width ?? rgb.width,
    height: rgb.original?.height ?? rgb.height,
    decodeScale: rgb.original ? Math.round(rgb.original.width / rgb.width) : 1,
    ...(options.keepDecoded && !isJpeg(image) ? { decoded: rgb } : {}),
  }
}

function settle<T>(make: () => T): PromiseSettledResult<T> {
  try {
    return { status: 'fulfilled', value: make() }
  } catch (reason) {
    return { status: 'rejected', reason }
  }
}

const isJpeg = (image: ImageInput) => image.kind === 'encoded' && sniffImageFormat(image.bytes) === 'jpeg'

/**
 * The warm-up input: a small plain frame taken through the real decoder and preprocessing. A fresh worker
 * otherwise pays on its first real request for loading the image decoder and compiling decode, resize and
 * output decoding (measured on 2 cores under load: ~60 ms instead of ~10 ms), which after a hot swap lands on
 * live traffic. Small, because during a hot swap this competes with the model still serving. Should the image
 * path fail here, the warm-up falls back to a blank tensor: that is for the first request to report.
 */
async function warmUpInput(preprocessor: TensorPreprocessor, options: WorkerLoadOptions): Promise<ReturnType<TensorPreprocessor['prepare']>> {
  try {
    const [width, height] = [320, 240]
    const pixels = new Uint8Array(width * height * 3).fill(128)
    const frame: ImageInput = { kind: 'encoded', bytes: await encodeJpeg({ kind: 'raw', bytes: pixels, dtype: 'uint8', shape: [height, width, 3] }) }
    let prepared!: ReturnType<TensorPreprocessor['prepare']>
    for (let pass = 0; pass < WARM_UP_PASSES; pass++) prepared = preprocessor.prepare(await decodeImage(frame, decodeOptionsFor(preprocessor, options)))
    return prepared
  } catch {
    return { tensor: preprocessor.tensor, geometry: { sourceWidth: 1, sourceHeight: 1, scaleX: 1, scaleY: 1, padX: 0, padY: 0 } }
  }
}

/** How the worker decodes for this network: within the pixel budget, large JPEGs at reduced scale. */
function decodeOptionsFor(preprocessor: TensorPreprocessor, options: WorkerLoadOptions): DecodeOptions {
  return {
    decoder: options.imageDecoder,
    maxPixels: options.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS,
    targetSize: (size) => resampledSize(size.width, size.height, preprocessor.spec),
  }
}

const TIMED_RUNS = 5

/** `fastest`: the median time of a session run on the warm-up input (decoding is the same on every backend). */
async function medianRunMs(session: BackendSession, spec: ModelSpec, tensor: Float32Array): Promise<number> {
  const times: number[] = []
  for (let run = 0; run < TIMED_RUNS; run++) {
    const started = performance.now()
    await session.run(spec.inputName, tensor, spec.inputDims)
    times.push(performance.now() - started)
  }
  return times.sort((a, b) => a - b)[Math.floor(TIMED_RUNS / 2)]!
}

export class ModelRunner {
  private constructor(
    readonly backend: BackendName,
    readonly rejected: BackendRejection[],
    readonly information: ModelInformationWithFormat,
    readonly spec: ModelSpec,
    private readonly session: BackendSession,
    private readonly preprocessor: TensorPreprocessor,
    private readonly decodeOptions: DecodeOptions,
  ) {}

  /** why the model refused a batched run, once it has (then every image runs alone) */
  batchRefused?: string
  private readonly spareTensors: Float32Array[] = []

  static async load(options: WorkerLoadOptions): Promise<ModelRunner> {
    const pkg = await readModelPackage(options.modelDir)
    const file = await readFile(pkg.modelFile)
    // a view, not a copy: models can be hundreds of megabytes
    const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength)
    const header = readOnnxModelHeader(bytes, basename(pkg.modelFile))
    const spec = resolveModelSpec(pkg.information, pkg.inference, header, options)
    const preprocessor = new TensorPreprocessor(spec.preprocessing)
    const fastest = options.backend === 'fastest'
    const warmUp = options.verify || fastest ? await warmUpInput(preprocessor, options) : undefined
    const rejected: BackendRejection[] = []
    let best: { backend: BackendName; session: BackendSession; runMs: number } | undefined
    for (const backend of backendCandidates(options.backend, RUNTIME)) {
      let session: BackendSession | undefined
      try {
        session = await createBackendSession(backend, bytes, options)
        if (!session.inputNames.includes(spec.inputName)) throw new Error(`the session has no input ${spec.inputName}`)
        if (warmUp) {
          // the first run compiles kernels; it also proves the outputs are decodable (twice: JIT for the decoder)
          const outputs = await session.run(spec.inputName, warmUp.tensor, spec.inputDims)
          for (let pass = 0; pass < WARM_UP_PASSES; pass++) decodeDetections(spec, outputs, warmUp.geometry)
          if (options.verify && GPU_BACKENDS.includes(backend)) await verifyAgainstCpu(backend, options)
        }
        if (!fastest) return new ModelRunner(backend, rejected, pkg.information, spec, session, preprocessor, decodeOptionsFor(preprocessor, options))
        const runMs = await medianRunMs(session, spec, warmUp!.tensor)
        const [kept, dropped] = !best || runMs < best.runMs ? [{ backend, session, runMs }, best] : [best, { backend, session, runMs }]
        best = kept
        if (dropped) {
          rejected.push({ backend: dropped.backend, reason: `slower on this model: ${dropped.runMs.toFixed(1)} ms per run, ${kept.backend} ${kept.runMs.toFixed(1)} ms` })
          await dropped.session.release().catch(() => undefined)
        }
      } catch (error) {
        rejected.push({ backend, reason: firstLine(error) })
        await session?.release().catch(() => undefined)
      }
    }
    if (best) return new ModelRunner(best.backend, rejected, pkg.information, spec, best.session, preprocessor, decodeOptionsFor(preprocessor, options))
    throw new NoBackendError(rejected)
  }

  async detect(image: ImageInput, options: DetectionRequestOptions = {}): Promise<DetectionOutput> {
    const started = performance.now()
    const rgb = await decodeImage(image, this.decodeOptions)
    const decoded = performance.now()
    const { tensor, geometry } = this.preprocessor.prepare(rgb)
    const prepared = performance.now()
    const outputs = await this.session.run(this.spec.inputName, tensor, this.spec.inputDims)
    const inferred = performance.now()
    return this.finish({ ...describeDecoded(image, rgb, options), geometry, tensor, decodeMs: decoded - started, preprocessMs: prepared - decoded }, outputs, inferred - prepared, 1)
  }

  /** Decodes and preprocesses one image into a tensor of its own, to wait for a batch (detectPrepared). */
  async prepare(image: ImageInput, options: DetectionRequestOptions = {}): Promise<PreparedImage> {
    const started = performance.now()
    const rgb = await decodeImage(image, this.decodeOptions)
    const decoded = performance.now()
    const { tensor, geometry } = this.preprocessor.prepare(rgb, this.spareTensors.pop() ?? new Float32Array(this.preprocessor.tensor.length))
    return { ...describeDecoded(image, rgb, options), geometry, tensor, decodeMs: decoded - started, preprocessMs: performance.now() - decoded }
  }

  /**
   * Runs prepared images as one batch (a model with a dynamic batch dimension). Should the model refuse a batch after
   * all (a reshape that fixes the batch inside the graph), each image runs alone, and so does every later one.
   */
  async detectPrepared(items: PreparedImage[]): Promise<PromiseSettledResult<DetectionOutput>[]> {
    try {
      return await this.runPrepared(items)
    } finally {
      // a fresh 640×640 tensor is 4.9 MB of zeroed pages: the next images reuse these
      for (const item of items) if (this.spareTensors.length < MAX_SPARE_TENSORS) this.spareTensors.push(item.tensor)
    }
  }

  private async runPrepared(items: PreparedImage[]): Promise<PromiseSettledResult<DetectionOutput>[]> {
    if (items.length > 1 && this.batching) {
      try {
        const input = stackBatch(items.map((item) => item.tensor), this.spec.inputDims)
        const started = performance.now()
        const outputs = splitBatchOutputs(await this.session.run(this.spec.inputName, input.data, input.dims), items.length)
        const inferenceMs = performance.now() - started
        return items.map((item, i) => settle(() => this.finish(item, outputs[i]!, inferenceMs, items.length)))
      } catch (error) {
        const results = await this.detectEachAlone(items)
        // the batch was the problem only if its images run alone; a session that fails for all says nothing about batching
        if (results.some((r) => r.status === 'fulfilled')) {
          this.batchRefused = firstLine(error)
          log.warn('the model refused a batched run; its images run one at a time from now on', { model: this.information.version, error: this.batchRefused })
        }
        return results
      }
    }
    return this.detectEachAlone(items)
  }

  private async detectEachAlone(items: PreparedImage[]): Promise<PromiseSettledResult<DetectionOutput>[]> {
    const results: PromiseSettledResult<DetectionOutput>[] = []
    for (const item of items) {
      try {
        const started = performance.now()
        const outputs = await this.session.run(this.spec.inputName, item.tensor, this.spec.inputDims)
        results.push({ status: 'fulfilled', value: this.finish(item, outputs, performance.now() - started, 1) })
      } catch (reason) {
        results.push({ status: 'rejected', reason })
      }
    }
    return results
  }

  /** Whether images are run in batches: the model has a dynamic batch dimension and has not refused one. */
  get batching(): boolean {
    return this.spec.dynamicBatch && this.batchRefused === undefined
  }

  private finish(item: PreparedImage, outputs: Record<string, RawOutput>, inferenceMs: number, batchSize: number): DetectionOutput {
    const started = performance.now()
    const detections = decodeDetections(this.spec, outputs, item.geometry)
    return {
      ...detections,
      segmentation_detections: [],
      width: item.width,
      height: item.height,
      decodeScale: item.decodeScale,
      timings: { decodeMs: item.decodeMs, preprocessMs: item.preprocessMs, inferenceMs, postprocessMs: performance.now() - started },
      batchSize,
      ...(item.decoded ? { decoded: item.decoded } : {}),
    }
  }

  release(): Promise<void> {
    return this.session.release()
  }
}
