/**
 * Worker-side: one model on one backend. Loading walks the backend candidates one at a time
 * (session, then a warm-up run, then — for GPU backends — the CPU comparison); detecting runs
 * decode → preprocess → session → decode+NMS and times each stage.
 */
import { basename } from 'node:path'
import { backendCandidates, GPU_BACKENDS, type BackendName } from './backend-choice.ts'
import { createBackendSession, type BackendSession } from './backend-sessions.ts'
import { verifyAgainstCpu } from './backend-verification.ts'
import { decodeImage, type ImageInput } from './image-decoding.ts'
import { TensorPreprocessor } from './image-preprocessing.ts'
import { encodeJpeg } from './jpeg-encoding.ts'
import { NoBackendError, type BackendRejection } from './inference-errors.ts'
import { readModelPackage, type ModelInformationWithFormat } from './model-package.ts'
import { resolveModelSpec, type ModelSpec } from './model-spec.ts'
import { readOnnxModelHeader } from './onnx-model-header.ts'
import { decodeDetections } from './output-decoding.ts'
import type { DetectionOutput, WorkerLoadOptions } from './worker-protocol.ts'

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim().slice(0, 500)

export class ModelRunner {
  private constructor(
    readonly backend: BackendName,
    readonly rejected: BackendRejection[],
    readonly information: ModelInformationWithFormat,
    readonly spec: ModelSpec,
    private readonly session: BackendSession,
    private readonly preprocessor: TensorPreprocessor,
    private readonly options: WorkerLoadOptions,
  ) {}

  static async load(options: WorkerLoadOptions): Promise<ModelRunner> {
    const pkg = await readModelPackage(options.modelDir)
    const bytes = new Uint8Array(await Bun.file(pkg.modelFile).arrayBuffer())
    const header = readOnnxModelHeader(bytes, basename(pkg.modelFile))
    const spec = resolveModelSpec(pkg.information, pkg.inference, header, options)
    const preprocessor = new TensorPreprocessor(spec.preprocessing)
    const rejected: BackendRejection[] = []
    for (const backend of backendCandidates(options.backend)) {
      let session: BackendSession | undefined
      try {
        session = await createBackendSession(backend, bytes, options)
        if (!session.inputNames.includes(spec.inputName)) throw new Error(`the session has no input ${spec.inputName}`)
        if (options.verify) {
          // warm-up: the first run compiles kernels; it also proves the outputs are decodable
          const outputs = await session.run(spec.inputName, preprocessor.tensor, spec.inputDims)
          decodeDetections(spec, outputs, { sourceWidth: 1, sourceHeight: 1, scaleX: 1, scaleY: 1, padX: 0, padY: 0 })
          if (GPU_BACKENDS.includes(backend)) await verifyAgainstCpu(backend, options)
        }
        const runner = new ModelRunner(backend, rejected, pkg.information, spec, session, preprocessor, options)
        if (options.verify) await runner.warmPipeline()
        return runner
      } catch (error) {
        rejected.push({ backend, reason: firstLine(error) })
        await session?.release().catch(() => undefined)
      }
    }
    throw new NoBackendError(rejected)
  }

  async detect(image: ImageInput): Promise<DetectionOutput> {
    const started = performance.now()
    const rgb = await decodeImage(image, this.options.imageDecoder)
    const decoded = performance.now()
    const { tensor, geometry } = this.preprocessor.prepare(rgb)
    const prepared = performance.now()
    const outputs = await this.session.run(this.spec.inputName, tensor, this.spec.inputDims)
    const inferred = performance.now()
    const detections = decodeDetections(this.spec, outputs, geometry)
    const finished = performance.now()
    return {
      ...detections,
      segmentation_detections: [],
      width: rgb.width,
      height: rgb.height,
      timings: { decodeMs: decoded - started, preprocessMs: prepared - decoded, inferenceMs: inferred - prepared, postprocessMs: finished - inferred },
    }
  }

  /**
   * Runs the whole pipeline once more after the session's warm-up run, on a small plain frame (the code paths
   * are the same for any size, and during a hot swap this competes with the model still serving). A fresh
   * worker otherwise pays on its first real request for loading the image decoder and compiling decode,
   * resize and output decoding (measured on 2 cores under load: ~60 ms instead of ~10 ms).
   */
  private async warmPipeline(): Promise<void> {
    const [width, height] = [320, 240]
    const pixels = new Uint8Array(width * height * 3).fill(128)
    const frame: ImageInput = { kind: 'encoded', bytes: await encodeJpeg({ kind: 'raw', bytes: pixels, dtype: 'uint8', shape: [height, width, 3] }) }
    const passes = 2
    let prepared!: ReturnType<TensorPreprocessor['prepare']>
    for (let i = 0; i < passes; i++) prepared = this.preprocessor.prepare(await decodeImage(frame, this.options.imageDecoder))
    const outputs = await this.session.run(this.spec.inputName, prepared.tensor, this.spec.inputDims)
    for (let i = 0; i < passes; i++) decodeDetections(this.spec, outputs, prepared.geometry)
  }

  release(): Promise<void> {
    return this.session.release()
  }
}
