/**
 * When a Deno Worker is terminated, its thread goes on tearing down what the Worker held (the isolate, and with it
 * a WebGPU device and instance: the driver's threads are joined, libraries unloaded) after `terminate()` has
 * returned. If the process exits meanwhile, glibc runs the libraries' exit handlers (the Vulkan loader's, the
 * driver's) under that teardown: `deno task detect --backend webgpu` through SwiftShader crashed after its output in
 * about one run in twenty (SIGSEGV in libvk_swiftshader.so or swrast_dri.so under exit(), or glibc's "corrupted
 * double-linked list"). So on Deno the owner of a Worker waits for the Worker's thread to end. Deno keeps /proc from
 * scripts without `--allow-all`, so the thread is asked for through libc (`--allow-ffi`, which the inference needs
 * anyway). Bun tears a terminated Worker down before it exits; there nothing waits.
 */
import { existsSync } from 'node:fs'
import { openNativeLibrary } from './native-library.ts'
import { RUNTIME } from './runtime-name.ts'

/** How often the end of a thread is looked for. */
const POLL_MS = 5
const C_LIBRARY = 'libc.so.6'

interface ThreadCalls {
  gettid(): number
  getpid(): number
  /** signal 0 only asks: 0 while the thread lives, -1 (ESRCH) once it has ended */
  tgkill(pid: number, tid: number, signal: number): number
}

let calls: ThreadCalls | null | undefined

function threadCalls(): ThreadCalls | null {
  if (calls !== undefined) return calls
  calls = null
  // glibc ≥ 2.30 has gettid and tgkill; Deno's FFI would also find a file of that name in the working directory
  if (RUNTIME !== 'deno' || process.platform !== 'linux' || existsSync(C_LIBRARY)) return calls
  try {
    const { symbols } = openNativeLibrary(C_LIBRARY, {
      gettid: { args: [], returns: 'i32' },
      getpid: { args: [], returns: 'i32' },
      tgkill: { args: ['i32', 'i32', 'i32'], returns: 'i32' },
    })
    calls = symbols as unknown as ThreadCalls
  } catch {
    // no FFI permission, or another C library (musl): nothing to wait for
  }
  return calls
}

/** The OS id of the calling thread, for `threadEnded`: on Deno under Linux with glibc, else undefined. */
export function currentThreadId(): number | undefined {
  const id = threadCalls()?.gettid()
  return id !== undefined && id > 0 ? id : undefined
}

/** Resolves once thread `id` of this process has ended, or after `limitMs` whatever it does. */
export async function threadEnded(id: number, limitMs: number): Promise<void> {
  const libc = threadCalls()
  if (!libc) return
  const pid = libc.getpid()
  const deadline = performance.now() + limitMs
  while (libc.tgkill(pid, id, 0) === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, POLL_MS))
}
