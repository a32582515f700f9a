/**
 * The onnxruntime-web files that must travel inside a compiled binary (runtime-notes §2, setup C): from
 * source they are resolved in node_modules, in a binary they are embedded (embedded-assets.ts), and handing
 * both glue and binary to `env.wasm.wasmPaths` keeps wasm threads working.
 *
 * The WebGPU (asyncify) binary is different: 26 MB that only the `webgpu` backend (onnxruntime-web +
 * the optional dawn.node package) uses, and dawn.node cannot load from inside a binary (the `webgpu`
 * package computes its path at run time). So it is looked up lazily: node_modules from source, the
 * embedded copy when a build chose to carry it (embedded-assets.ts), otherwise a clear error.
 */
import { fileURLToPath } from 'node:url'
import { EMBEDDED_ASSETS } from '../foundation/embedded-assets.ts'

const inNodeModules = (file: string) => fileURLToPath(import.meta.resolve(`onnxruntime-web/${file}`))

export const ORT_WEB_WASM_PATHS = EMBEDDED_ASSETS
  ? { wasm: EMBEDDED_ASSETS.ortWebWasm.wasm.path, mjs: EMBEDDED_ASSETS.ortWebWasm.mjs.path }
  : { wasm: inNodeModules('ort-wasm-simd-threaded.wasm'), mjs: inNodeModules('ort-wasm-simd-threaded.mjs') }

/** Path of onnxruntime-web's WebGPU wasm; throws when this binary was built without it. */
export function ortWebWebgpuWasmPath(): string {
  if (EMBEDDED_ASSETS) {
    if (EMBEDDED_ASSETS.ortWebWebgpuWasm) return EMBEDDED_ASSETS.ortWebWebgpuWasm.path
    throw new Error('the onnxruntime-web WebGPU backend is not included in this binary; use the native WebGPU EP (INFERENCE_BACKEND=webgpu-native, linux-x64) or run from source with the optional "webgpu" package')
  }
  return inNodeModules('ort-wasm-simd-threaded.asyncify.wasm')
}

/** the WebGPU bundle embeds its glue; it only needs the asyncify binary (resolved on first use) */
export const ORT_WEB_WEBGPU_WASM_PATHS: { readonly wasm: string } = {
  get wasm() { return ortWebWebgpuWasmPath() },
}
