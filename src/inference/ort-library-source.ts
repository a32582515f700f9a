/**
 * Where the libonnxruntime.so.1 that ships with onnxruntime-node lives. This is the ONE place that
 * knows; the single-binary build swaps this module for one that embeds the library
 * (`import path from '…/libonnxruntime.so.1' with { type: 'file' }`, runtime-notes §3), and
 * ort-library.ts copies it out of the binary on first use.
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ORT_LIBRARY_NAME = 'libonnxruntime.so.1'

/** Absolute path of the bundled library, or undefined where onnxruntime-node ships none (non-Linux). */
export function bundledOrtLibraryPath(): string | undefined {
  if (process.platform !== 'linux') return undefined
  const entry = fileURLToPath(import.meta.resolve('onnxruntime-node'))
  return join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch, ORT_LIBRARY_NAME)
}

/** The onnxruntime-node version, part of the cache folder name so upgrades never mix libraries. */
export async function bundledOrtVersion(): Promise<string> {
  const entry = fileURLToPath(import.meta.resolve('onnxruntime-node'))
  const manifest = JSON.parse(await Bun.file(join(dirname(entry), '..', 'package.json')).text()) as { version?: string }
  return manifest.version ?? 'unknown'
}
