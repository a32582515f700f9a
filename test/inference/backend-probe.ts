/**
 * Run as a child process by the backend tests: environment that Vulkan and the dynamic loader read
 * at process start (VK_ICD_FILENAMES, XDG_CACHE_HOME) cannot be changed from inside a running test.
 * argv[2] is a JSON request; one JSON result is printed on stdout.
 */
import { makeTinyYoloModel, writeTinyModelPackage } from '../../scripts/make-test-models.ts'
import type { BackendName } from '../../src/config/inference-settings.ts'
import { createBackendSession } from '../../src/inference/backend-sessions.ts'
import { verifyAgainstCpu } from '../../src/inference/backend-verification.ts'
import { createInferenceEngine } from '../../src/inference/inference-engine.ts'
import { cudaProviderProblem, prepareOrtLibrary } from '../../src/inference/ort-library.ts'
import { webGpuUnavailableReason } from '../../src/inference/vulkan-probe.ts'

interface Request {
  /** run the tiny model on these backends and return the raw outputs */
  backends?: BackendName[]
  /** prepare the ORT library with this ORT_LIB_DIR first, then try cuda and cpu */
  ortLibDir?: string | null
  /** create an engine with backend auto on a planted model in this folder and detect once */
  engineDir?: string
  /** run the GPU verification step against these backends */
  verify?: BackendName[]
  /** report why WebGPU cannot run in this environment (null when it may) */
  webGpuCheck?: boolean
}

const request = JSON.parse(process.argv[2] ?? '{}') as Request
const result: Record<string, unknown> = {}
const input = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => ((i * 7919) % 1000) / 1000)

if (request.webGpuCheck) result.webGpuUnavailable = webGpuUnavailableReason() ?? null
if (request.ortLibDir !== undefined) {
  const library = await prepareOrtLibrary(request.ortLibDir ?? undefined)
  result.library = library
  result.cudaProblem = cudaProviderProblem(library) ?? null
}
for (const backend of request.backends ?? []) {
  try {
    const session = await createBackendSession(backend, makeTinyYoloModel({ layout: 'yolov8' }), { threads: 2, ortLibDir: request.ortLibDir ?? undefined })
    const outputs = await session.run('images', input, [1, 3, 64, 64])
    result[backend] = { ok: true, output: Array.from(outputs.output0!.data) }
    await session.release()
  } catch (error) {
    result[backend] = { ok: false, error: (error as Error).message }
  }
}
for (const backend of request.verify ?? []) {
  try {
    await verifyAgainstCpu(backend, { threads: 1 })
    result[`verify-${backend}`] = { ok: true }
  } catch (error) {
    result[`verify-${backend}`] = { ok: false, error: (error as Error).message }
  }
}
if (request.engineDir) {
  await writeTinyModelPackage(request.engineDir, {
    layout: 'yolov8', featureScale: 0.001,
    planted: [{ anchor: 5, cx: 20, cy: 24, w: 16, h: 12, classIndex: 0, score: 0.9 }],
  })
  const engine = await createInferenceEngine({ modelDir: request.engineDir, backend: 'auto' })
  const output = await engine.detect({ kind: 'raw', bytes: new Uint8Array(128 * 64), dtype: 'uint8', shape: [64, 128] })
  result.engine = { backend: engine.backend, rejected: engine.rejected, boxes: output.box_detections }
  await engine.dispose()
}
console.log(JSON.stringify(result))
process.exit(0)
