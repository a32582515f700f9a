/**
 * What a single-binary build carries besides code. From source (and in other apps that import this
 * package, on Bun or Deno) this is the stub below: `EMBEDDED_ASSETS` is undefined and every asset is found
 * where it lies (node_modules, assets/, next to the module that reads it). `scripts/build-binary.ts`
 * replaces this one file (Bun.build `files`) with a module that imports the build target's files
 * `with { type: 'file' }`, so the inference Worker, which has its own module graph, sees the same answer as
 * the main thread. No other module imports files that way: Deno cannot load such an import.
 */

export interface EmbeddedFile {
  /** `/$bunfs/…` path inside the binary */
  path: string
  size: number
  sha256: string
}

export interface EmbeddedAssets {
  /** the Bun compile target the binary was built for, e.g. `bun-linux-arm64` */
  target: string
  /** onnxruntime-node's libonnxruntime.so.1 for the target; the addon itself is embedded by Bun */
  ortLibrary?: EmbeddedFile & { ortVersion: string }
  /** the built-in face model package, by file name (model.json, model.onnx, LICENSE, NOTICE) */
  builtinModel?: { files: Record<string, EmbeddedFile> }
  /** onnxruntime-web's WebGPU (asyncify) wasm; absent when the build left WebGPU-through-dawn.node out */
  ortWebWebgpuWasm?: EmbeddedFile
  /** src/trainer/testing-trainer-script.ts, run as a child process by `trainer --logic testing` */
  testingTrainerScript?: EmbeddedFile
  /** src/detector/status-page/index.html */
  statusPage: EmbeddedFile
  /** src/node/api-docs-page/index.html, the `/docs` page of every node and the local loop */
  apiDocsPage: EmbeddedFile
  /** the files of src/local-loop/web-page/, by file name */
  loopPage: { files: Record<string, EmbeddedFile> }
  /** src/inference/verification-model.onnx, run before a GPU backend is trusted */
  verificationModel: EmbeddedFile
  /** onnxruntime-web's wasm and its glue script (`env.wasm.wasmPaths`) */
  ortWebWasm: { wasm: EmbeddedFile; mjs: EmbeddedFile }
}

export const EMBEDDED_ASSETS: EmbeddedAssets | undefined = undefined
