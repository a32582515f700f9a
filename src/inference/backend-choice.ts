/**
 * The `auto` order and the reading of a backend choice. Pure; the names are settings (config/inference-settings.ts),
 * the sessions themselves are made in backend-sessions.ts.
 */
import { BACKEND_CHOICES, type BackendChoice, type BackendName } from '../config/inference-settings.ts'
import type { RuntimeName } from '../runtime/runtime-name.ts'

/**
 * `auto` tries these one at a time, fastest first as measured on an H200 (2026-11-28, ResNet-50 at 640×640:
 * cuda 2.7 ms, webgpu-native 9.6 ms, webgpu 16.8 ms, cpu 60–124 ms on 16 cores):
 * CUDA (only when its provider libraries are configured, so it is rejected at once elsewhere), onnxruntime-node's
 * bundled WebGPU EP (Dawn/Vulkan), WebGPU through onnxruntime-web + dawn.node (the one that exists on linux-arm64),
 * the native CPU, and onnxruntime-web's wasm as the portable last resort.
 */
export const AUTO_BACKEND_CHAIN: readonly BackendName[] = ['cuda', 'webgpu-native', 'webgpu', 'cpu', 'wasm']

/**
 * `auto` under Deno: WebGPU through Deno's own `navigator.gpu` first (no native add-on; on a Jetson or any
 * Vulkan device the GPU path that needs nothing but the runtime), then onnxruntime-node's CUDA, WebGPU EP and
 * CPU, and wasm last. Every GPU backend is still checked against the CPU before it is used.
 */
export const AUTO_BACKEND_CHAIN_ON_DENO: readonly BackendName[] = ['webgpu', 'cuda', 'webgpu-native', 'cpu', 'wasm']

/** Backends that run on a GPU and are checked against a CPU reference before use. */
export const GPU_BACKENDS: readonly BackendName[] = ['webgpu', 'webgpu-native', 'cuda']

export function parseBackendChoice(text: string | undefined): BackendChoice {
  const value = (text ?? 'auto').trim().toLowerCase()
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice
  throw new Error(`unknown inference backend ${JSON.stringify(text)}; use ${BACKEND_CHOICES.join(', ')}`)
}

/** The backends to try, in order, for `choice` on `runtime`. */
export function backendCandidates(choice: BackendChoice, runtime: RuntimeName): BackendName[] {
  if (choice !== 'auto' && choice !== 'fastest') return [choice]
  return [...(runtime === 'deno' ? AUTO_BACKEND_CHAIN_ON_DENO : AUTO_BACKEND_CHAIN)]
}
