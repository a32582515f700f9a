/**
 * The onnxruntime-web files that must travel inside a compiled binary (runtime-notes §2, setup C):
 * importing them `with { type: 'file' }` gives a real path from source and an embedded one when
 * compiled, and handing both glue and binary to `env.wasm.wasmPaths` keeps wasm threads working.
 */
import wasmPath from 'onnxruntime-web/ort-wasm-simd-threaded.wasm' with { type: 'file' }
// @ts-expect-error the glue script is embedded as a file, not imported as a module
import wasmGluePath from 'onnxruntime-web/ort-wasm-simd-threaded.mjs' with { type: 'file' }
import webgpuWasmPath from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm' with { type: 'file' }

export const ORT_WEB_WASM_PATHS = { wasm: wasmPath, mjs: wasmGluePath as string }
/** the WebGPU bundle embeds its glue; it only needs the asyncify binary */
export const ORT_WEB_WEBGPU_WASM_PATHS = { wasm: webgpuWasmPath }
