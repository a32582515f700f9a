/**
 * Deno's `navigator.gpu` (wgpu) opens every graphics API it was built with when its first adapter is asked for,
 * OpenGL through EGL included, although WebGPU here only ever runs on Vulkan, Metal or Direct3D 12. On Linux
 * Mesa's EGL then loads its GL driver (swrast_dri.so), which registers an exit handler. When a Worker that used
 * WebGPU ends, its thread tears wgpu down and EGL unloads that driver, while the main thread may already be exiting
 * and running the driver's exit handler: the process crashed after its output in about one run in twenty (SIGSEGV
 * inside swrast_dri.so from glibc's exit handlers, or "corrupted double-linked list"), seen with SwiftShader.
 * Without OpenGL, EGL and its driver are never loaded.
 */
import { RUNTIME } from './runtime-name.ts'

/** wgpu's names of the APIs WebGPU may run on: all it has but OpenGL */
const WEBGPU_BACKENDS_WITHOUT_OPENGL = 'vulkan,metal,dx12'

/**
 * Keeps Deno's WebGPU off OpenGL in this process unless `DENO_WEBGPU_BACKEND` already names its backends; call it
 * before the first `navigator.gpu.requestAdapter()` of a Worker (wgpu reads the variable then). Nothing on Bun.
 */
export function keepDenoWebGpuOffOpenGl(): void {
  if (RUNTIME !== 'deno') return
  try {
    process.env.DENO_WEBGPU_BACKEND ??= WEBGPU_BACKENDS_WITHOUT_OPENGL
  } catch {
    // no permission to read or set it: wgpu opens all its backends, as before
  }
}
