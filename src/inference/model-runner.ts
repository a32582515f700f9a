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
        return new ModelRunner(backend, rejected, pkg.information, spec, session, preprocessor, options)
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

  release(): Promise<void> {
    return this.session.release()
  }
}
