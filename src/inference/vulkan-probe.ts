/**
 * Whether WebGPU can work on Linux, asked of the Vulkan loader itself before Dawn is touched. Both WebGPU
 * backends run on Dawn, which runs on Vulkan there; without the loader (libvulkan1) or without a driver Dawn
 * writes raw multi-line warnings to stderr each time it starts, which breaks the JSON log. Asking first
 * lets the WebGPU backends be rejected with one structured reason instead.
 *
 * The loader is opened with libc's own dlopen, so it is searched exactly as Dawn searches it (bun:ffi's
 * dlopen would fall back to a file of that name in the working directory). The C calls go through the
 * runtime edge (bun:ffi or Deno's FFI).
 */
import { existsSync } from 'node:fs'
import { functionAt, openNativeLibrary, pointerTo, type CSignature, type CType, type NativePointer } from '../runtime/native-library.ts'

type Handle = NonNullable<NativePointer>

const VULKAN_LOADER = 'libvulkan.so.1'
const RTLD_NOW = 2
const VK_SUCCESS = 0
const VK_ERROR_INCOMPATIBLE_DRIVER = -9
const VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO = 1
/** sizeof(VkInstanceCreateInfo) on 64-bit targets; all zero but sType is a valid minimal instance. */
const INSTANCE_CREATE_INFO_BYTES = 64

const cString = (text: string) => pointerTo(Buffer.from(`${text}\0`))

interface DynamicLinker {
  open(name: string): Handle | null
  symbol(handle: Handle, name: string): Handle | null
  lastError(): string
  close(handle: Handle): void
}

/** glibc ≥ 2.34 has dlopen in libc.so.6, older ones (Jetson, Ubuntu 20.04) in libdl.so.2. */
function openDynamicLinker(): DynamicLinker | undefined {
  for (const library of ['libc.so.6', 'libdl.so.2']) {
    // bun:ffi falls back to a file of that name in the working directory when the system has none (musl)
    if (existsSync(library)) continue
    try {
      const { symbols } = openNativeLibrary(library, {
        dlopen: { args: ['pointer', 'i32'], returns: 'pointer' },
        dlsym: { args: ['pointer', 'pointer'], returns: 'pointer' },
        dlerror: { args: [], returns: 'cstring' },
        dlclose: { args: ['pointer'], returns: 'i32' },
      })
      return {
        open: (name) => symbols.dlopen(cString(name), RTLD_NOW) as Handle | null,
        symbol: (handle, name) => symbols.dlsym(handle, cString(name)) as Handle | null,
        lastError: () => String(symbols.dlerror() ?? '').replace(/^[^:]*libvulkan\.so\.1: /, ''),
        close: (handle) => void symbols.dlclose(handle),
      }
    } catch {
      // not this C library; try the next
    }
  }
  return undefined
}

function countVulkanDevices(linker: DynamicLinker, loader: Handle): { devices: number } | { result: number } {
  const fn = (name: string, args: CType[], returns: CType) => {
    const address = linker.symbol(loader, name)
    if (!address) throw new Error(`${VULKAN_LOADER} has no ${name}`)
    return functionAt(address, { args, returns } satisfies CSignature)
  }
  const createInstance = fn('vkCreateInstance', ['pointer', 'pointer', 'pointer'], 'i32')
  const enumerateDevices = fn('vkEnumeratePhysicalDevices', ['u64', 'pointer', 'pointer'], 'i32')
  const destroyInstance = fn('vkDestroyInstance', ['u64', 'pointer'], 'void')
  const createInfo = new Uint32Array(INSTANCE_CREATE_INFO_BYTES / 4)
  createInfo[0] = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
  const instance = new BigUint64Array(1)
  const created = createInstance(pointerTo(createInfo), null, pointerTo(instance)) as number
  if (created !== VK_SUCCESS) return { result: created }
  try {
    const count = new Uint32Array(1)
    const listed = enumerateDevices(instance[0]!, pointerTo(count), null) as number
    return listed === VK_SUCCESS ? { devices: count[0]! } : { result: listed }
  } finally {
    destroyInstance(instance[0]!, null)
  }
}

function probe(env: Record<string, string | undefined>): string | undefined {
  const linker = openDynamicLinker()
  if (!linker) return undefined // not glibc: let Dawn find out
  const loader = linker.open(VULKAN_LOADER)
  if (!loader) {
    return `the Vulkan loader ${VULKAN_LOADER} is not installed (${linker.lastError()}); install libvulkan1 and a Vulkan driver`
  }
  try {
    const found = countVulkanDevices(linker, loader)
    const driverHint = env.VK_ICD_FILENAMES ? `VK_ICD_FILENAMES=${env.VK_ICD_FILENAMES} names no working driver` : 'install the GPU\'s Vulkan driver (NVIDIA in a container: add graphics to NVIDIA_DRIVER_CAPABILITIES)'
    if ('devices' in found) return found.devices > 0 ? undefined : `no Vulkan device: ${driverHint}`
    if (found.result === VK_ERROR_INCOMPATIBLE_DRIVER) return `no Vulkan driver: ${driverHint}`
    return `Vulkan failed to start (VkResult ${found.result})`
  } finally {
    linker.close(loader)
  }
}

let cachedReason: { reason: string | undefined } | undefined

/**
 * Why WebGPU cannot run here — on Linux: no Vulkan loader, no driver, no device — or undefined when it may
 * (and on other systems, where Dawn uses Metal or Direct3D). Asked once per thread.
 */
export function webGpuUnavailableReason(env: Record<string, string | undefined> = process.env): string | undefined {
  if (process.platform !== 'linux') return undefined
  if (!cachedReason) {
    let reason: string | undefined
    try {
      reason = probe(env)
    } catch {
      reason = undefined // the probe itself failed: let Dawn try and report
    }
    cachedReason = { reason: reason && `WebGPU unavailable: ${reason}` }
  }
  return cachedReason.reason
}
