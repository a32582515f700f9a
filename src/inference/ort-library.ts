/**
 * Loads onnxruntime-node so that its execution-provider libraries can come from `ORT_LIB_DIR`.
 * ORT looks for `libonnxruntime_providers_*.so` in the folder of the libonnxruntime.so.1 it loaded, so
 * before the first `import('onnxruntime-node')` we dlopen a libonnxruntime.so.1 of our choosing (the
 * binding's NEEDED entry is then matched by soname):
 * - ORT_LIB_DIR holds its own libonnxruntime.so.1 → that one;
 * - ORT_LIB_DIR holds provider libraries only → a copy of the bundled library in
 *   `$XDG_CACHE_HOME|~/.cache/learning-loop-node/ort-<version>-<dir hash>/` with symlinks to them;
 * - no ORT_LIB_DIR → the bundled library where it lies (a compiled binary's embedded copy is unpacked to a real
 *   file by ort-library-source.ts, so it is always a real path here).
 * A process can hold one libonnxruntime; once one is mapped, later calls reuse it (and say so).
 */
import { copyFile, mkdir, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { crc32 } from 'node:zlib'
import { createLogger } from '../foundation/log.ts'
import { cacheFolder } from '../foundation/embedded-files.ts'
import { bundledOrtLibraryPath, bundledOrtVersion, ORT_LIBRARY_NAME } from './ort-library-source.ts'
import { openNativeLibrary } from '../runtime/native-library.ts'

const log = createLogger('inference.ort-library')

export type OnnxruntimeNode = typeof import('onnxruntime-node')

export interface OrtLibraryStatus {
  /** the libonnxruntime.so.1 in use; undefined when the platform loader found it (non-Linux) */
  libraryPath?: string
  /** where ORT will look for provider libraries */
  providerDir?: string
  /** the ORT_LIB_DIR asked for, if any */
  requestedLibDir?: string
  /** true when a library was already mapped before this call and a different ORT_LIB_DIR could not apply */
  reusedExisting: boolean
}

export const CUDA_PROVIDER_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']
const PROVIDER_PATTERN = /^libonnxruntime_providers_.*\.so(\..*)?$/

/** The libonnxruntime.so.1 already mapped into this process, read from /proc/self/maps. */
export function mappedOrtLibrary(): string | undefined {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8')
    const line = maps.split('\n').find((l) => l.endsWith('/' + ORT_LIBRARY_NAME) || l.includes('/' + ORT_LIBRARY_NAME + ' '))
    return line ? line.slice(line.indexOf('/')).replace(/ \(deleted\)$/, '') : undefined
  } catch {
    return undefined
  }
}

/** Copies `source` to `destination` unless a file of the same size is there; atomic via rename. */
async function copyIfChanged(source: string, destination: string): Promise<void> {
  const [from, to] = await Promise.all([stat(source), stat(destination).catch(() => undefined)])
  if (to && to.size === from.size) return
  const partial = `${destination}.partial-${process.pid}-${crypto.randomUUID().slice(0, 8)}`
  await copyFile(source, partial)
  await rename(partial, destination)
}

/** Makes `cacheDir` hold symlinks to exactly the provider libraries of `libDir`. */
async function linkProviders(libDir: string, cacheDir: string): Promise<string[]> {
  const wanted = (await readdir(libDir)).filter((n) => PROVIDER_PATTERN.test(n))
  for (const name of await readdir(cacheDir)) {
    if (PROVIDER_PATTERN.test(name) && !wanted.includes(name)) await rm(join(cacheDir, name), { force: true })
  }
  for (const name of wanted) {
    const link = join(cacheDir, name)
    const target = join(libDir, name)
    const current = await readlink(link).catch(() => undefined)
    if (current === target) continue
    await rm(link, { force: true })
    await symlink(target, link).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'EEXIST') throw error })
  }
  return wanted
}

function dlopenOrt(path: string): void {
  // FFI needs at least one symbol; the handle is kept open for the life of the process
  openNativeLibrary(path, { OrtGetApiBase: { args: [], returns: 'pointer' } })
}

/** Picks, prepares and dlopens the libonnxruntime.so.1 for this process (no-op after the first time). */
export async function prepareOrtLibrary(ortLibDir?: string, env: Record<string, string | undefined> = process.env): Promise<OrtLibraryStatus> {
  const requestedLibDir = ortLibDir ? resolve(ortLibDir) : undefined
  const mapped = mappedOrtLibrary()
  if (mapped) {
    const providerDir = dirname(mapped)
    // the library serves the requested dir when it is that dir's own copy or our cache folder for it
    const reusedExisting = requestedLibDir !== undefined && providerDir !== requestedLibDir && !providerDir.endsWith(`-${libDirHash(requestedLibDir)}`)
    if (reusedExisting) log.warn('onnxruntime is already loaded in this process; ORT_LIB_DIR changes apply after a restart', { loaded: mapped, ortLibDir: requestedLibDir })
    return { libraryPath: mapped, providerDir, requestedLibDir, reusedExisting }
  }
  const bundled = bundledOrtLibraryPath()
  if (!bundled) return { requestedLibDir, reusedExisting: false }
  let libraryPath = bundled
  if (requestedLibDir) {
    const own = join(requestedLibDir, ORT_LIBRARY_NAME)
    if (existsSync(own)) {
      libraryPath = own
    } else if (!existsSync(requestedLibDir)) {
      log.warn('ORT_LIB_DIR does not exist; using the bundled onnxruntime', { ortLibDir: requestedLibDir })
    } else {
      const cacheDir = cacheFolder(`ort-${await bundledOrtVersion()}-${libDirHash(requestedLibDir)}`, env)
      await mkdir(cacheDir, { recursive: true })
      libraryPath = join(cacheDir, ORT_LIBRARY_NAME)
      await copyIfChanged(bundled, libraryPath)
      const linked = await linkProviders(requestedLibDir, cacheDir)
      log.info('prepared onnxruntime with provider libraries from ORT_LIB_DIR', { cacheDir, providers: linked })
    }
  }
  dlopenOrt(libraryPath)
  return { libraryPath, providerDir: dirname(libraryPath), requestedLibDir, reusedExisting: false }
}

function libDirHash(dir: string): string {
  return crc32(dir).toString(16).padStart(8, '0')
}

/** Prepares the library, then imports onnxruntime-node. */
export async function loadOnnxruntimeNode(ortLibDir?: string): Promise<{ ort: OnnxruntimeNode; library: OrtLibraryStatus }> {
  const library = await prepareOrtLibrary(ortLibDir)
  const ort = await import('onnxruntime-node')
  return { ort, library }
}

/** Why CUDA cannot be tried, or undefined when its provider libraries are where ORT will look. */
export function cudaProviderProblem(library: OrtLibraryStatus): string | undefined {
  const where = library.providerDir
  const missing = where ? CUDA_PROVIDER_LIBRARIES.filter((name) => !existsSync(join(where, name))) : CUDA_PROVIDER_LIBRARIES
  if (missing.length === 0) return undefined
  const names = missing.join(', ')
  if (!library.requestedLibDir) return `CUDA provider libraries (${names}) not found: ORT_LIB_DIR is not set and ${where ?? 'the onnxruntime folder'} has none`
  if (library.reusedExisting) return `CUDA provider libraries (${names}) not found in ${where}: onnxruntime was loaded before ORT_LIB_DIR=${library.requestedLibDir} could apply`
  return `CUDA provider libraries (${names}) not found in ORT_LIB_DIR=${library.requestedLibDir}`
}

