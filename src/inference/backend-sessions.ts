/**
 * One ONNX session on one named backend, behind a small interface the worker uses. ORT never falls
 * back by itself (session creation throws), so each backend is one try here and the chain lives in
 * the worker. Modules load lazily: a worker only pays for the runtime it ends up using.
 */
import { readFile } from 'node:fs/promises'
import { keepDenoWebGpuOffOpenGl } from '../runtime/deno-webgpu.ts'
import type { BackendName } from '../config/inference-settings.ts'
import { cudaProviderProblem, loadOnnxruntimeNode } from './ort-library.ts'
import { ORT_WEB_WASM_PATHS, ORT_WEB_WEBGPU_WASM_PATHS } from './ort-web-assets.ts'
import { webGpuUnavailableReason } from './vulkan-probe.ts'

export interface OutputTensor {
  data: Float32Array
  dims: number[]
}

export interface BackendSession {
  readonly backend: BackendName
  readonly inputNames: readonly string[]
  readonly outputNames: readonly string[]
  run(inputName: string, data: Float32Array, dims: number[]): Promise<Record<string, OutputTensor>>
  release(): Promise<void>
}

export interface BackendSessionOptions {
  /** intra-op threads (onnxruntime-node) or wasm threads (onnxruntime-web); default: all cores */
  threads?: number
  ortLibDir?: string
  /**
   * let onnxruntime-node's idle threads busy-wait for the next op (its default). Off here: on small
   * machines the spinning threads take the cores from the HTTP server and from a model being built
   * during a hot swap (measured on 2 cores: p99 during a swap 2.07× steady with spinning, 1.12× without).
   */
  spinWait?: boolean
}

type OrtModule = typeof import('onnxruntime-common')
type Session = import('onnxruntime-common').InferenceSession

function wrapSession(backend: BackendName, ort: OrtModule, session: Session): BackendSession {
  return {
    backend,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(inputName, data, dims) {
      const results = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) })
      const outputs: Record<string, OutputTensor> = {}
      for (const [name, tensor] of Object.entries(results)) {
        if (tensor.type !== 'float32') throw new Error(`model output ${name} is ${tensor.type}; float32 outputs are supported`)
        outputs[name] = { data: tensor.data as Float32Array, dims: [...tensor.dims] }
      }
      return outputs
    },
    release: () => session.release(),
  }
}

const defaultThreads = () => Math.max(1, navigator.hardwareConcurrency || 1)

async function createNodeSession(backend: 'cpu' | 'cuda' | 'webgpu-native', model: Uint8Array, options: BackendSessionOptions): Promise<BackendSession> {
  const { ort, library } = await loadOnnxruntimeNode(options.ortLibDir)
  if (backend === 'cuda') {
    const problem = cudaProviderProblem(library)
    if (problem) throw new Error(problem)
  }
  const providers = { cpu: ['cpu'], cuda: [{ name: 'cuda', deviceId: 0 }], 'webgpu-native': ['webgpu'] }[backend]
  let session
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: providers as never,
      intraOpNumThreads: options.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: options.spinWait ? '1' : '0' } } },
    })
  } catch (error) {
    // ORT's own message is terse ("Failed to load shared library"); say where it looked
    if (backend === 'cuda') throw new Error(`${(error as Error).message} (CUDA provider libraries from ${library.providerDir}; they need a matching CUDA runtime, cuBLAS and cuDNN)`)
    throw error
  }
  return wrapSession(backend, ort as unknown as OrtModule, session as unknown as Session)
}

/** Gives Bun a `navigator.gpu` from the optional dawn.node package and checks that it has an adapter. */
async function requireWebGpuAdapter(): Promise<void> {
  const holder = navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }
  if (!holder.gpu) {
    let dawn: typeof import('webgpu')
    try {
      dawn = await import('webgpu')
    } catch (error) {
      throw new Error(`the optional npm package "webgpu" (dawn.node) is not installed or failed to load: ${(error as Error).message}`)
    }
    Object.assign(globalThis, dawn.globals)
    Object.defineProperty(navigator, 'gpu', { value: dawn.create([]), configurable: true })
  }
  keepDenoWebGpuOffOpenGl()
  const adapter = await holder.gpu!.requestAdapter()
  if (!adapter) {
    throw new Error('no WebGPU adapter: navigator.gpu.requestAdapter() returned null (Linux needs libvulkan1 and a Vulkan driver; CI can use SwiftShader through VK_ICD_FILENAMES)')
  }
}

/**
 * onnxruntime-web's browser bundle (the WebGPU one) resolves its own URL against `location.origin`. A Worker
 * started from a file (Deno's) has a location whose origin is opaque, the string "null", which is no base URL:
 * every URL built against it throws (`Invalid URL … with base 'null'`). Without a location the bundle uses its
 * module URL alone, as on a main thread; nothing else in the inference worker reads `location`.
 */
function hideOpaqueLocation(): void {
  const scope = globalThis as { location?: { origin?: string } }
  if (scope.location?.origin === 'null') Object.defineProperty(globalThis, 'location', { value: undefined, configurable: true, writable: true })
}

async function createWebSession(backend: 'webgpu' | 'wasm', model: Uint8Array, options: BackendSessionOptions): Promise<BackendSession> {
  if (backend === 'webgpu') {
    await requireWebGpuAdapter()
    hideOpaqueLocation()
  }
  const ort = (backend === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web')) as unknown as OrtModule
  ort.env.logLevel = 'error'
  if (backend === 'webgpu') {
    // the bundle embeds its glue but fetches the binary by URL, which fails for file paths under Bun;
    // handing over the bytes works, with one wasm thread (the work happens on the GPU anyway)
    ort.env.wasm.wasmBinary ??= new Uint8Array(await readFile(ORT_WEB_WEBGPU_WASM_PATHS.wasm))
    ort.env.wasm.numThreads = 1
  } else {
    ort.env.wasm.wasmPaths = ORT_WEB_WASM_PATHS
    // onnxruntime-web picks 1 thread on small machines unless told
    ort.env.wasm.numThreads = options.threads ?? defaultThreads()
  }
  const session = await ort.InferenceSession.create(model, { executionProviders: [backend], graphOptimizationLevel: 'all', logSeverityLevel: 3 })
  return wrapSession(backend, ort, session)
}

/** Creates a session for `model` on exactly `backend`; throws (with the runtime's reason) when it cannot. */
export async function createBackendSession(backend: BackendName, model: Uint8Array, options: BackendSessionOptions = {}): Promise<BackendSession> {
  if (backend === 'webgpu' || backend === 'webgpu-native') {
    // asked before Dawn loads: without Vulkan, Dawn would print raw warnings into the JSON log
    const unavailable = webGpuUnavailableReason()
    if (unavailable) throw new Error(unavailable)
  }
  switch (backend) {
    case 'cpu':
    case 'cuda':
    case 'webgpu-native':
      return createNodeSession(backend, model, options)
    case 'webgpu':
    case 'wasm':
      return createWebSession(backend, model, options)
  }
}
