/** Backend names and the `auto` order. Pure; the sessions themselves are made in backend-sessions.ts. */

export const BACKEND_NAMES = ['webgpu', 'webgpu-native', 'cuda', 'cpu', 'wasm'] as const
export type BackendName = (typeof BACKEND_NAMES)[number]
export type BackendChoice = 'auto' | BackendName

/**
 * `auto` tries these one at a time: WebGPU through onnxruntime-web (dawn.node), CUDA and CPU through
 * onnxruntime-node, then onnxruntime-web's wasm as the portable last resort. `webgpu-native`
 * (onnxruntime-node's bundled WebGPU EP) is only used when asked for by name.
 */
export const AUTO_BACKEND_CHAIN: readonly BackendName[] = ['webgpu', 'cuda', 'cpu', 'wasm']

/** Backends that run on a GPU and are checked against a CPU reference before use. */
export const GPU_BACKENDS: readonly BackendName[] = ['webgpu', 'webgpu-native', 'cuda']

export function parseBackendChoice(text: string | undefined): BackendChoice {
  const value = (text ?? 'auto').trim().toLowerCase()
  if (value === 'auto' || (BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendChoice
  throw new Error(`unknown inference backend ${JSON.stringify(text)}; use auto, ${BACKEND_NAMES.join(', ')}`)
}

export function backendCandidates(choice: BackendChoice): BackendName[] {
  return choice === 'auto' ? [...AUTO_BACKEND_CHAIN] : [choice]
}
