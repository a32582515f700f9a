/**
 * Where the libonnxruntime.so.1 that ships with onnxruntime-node lives. This is the ONE place that
 * knows. From source it is the file in node_modules. In a binary built by scripts/build-binary.ts the
 * build target's library is embedded (`with { type: 'file' }`, see embedded-assets.ts); the dynamic
 * loader needs a real file, so it is copied out once to
 * `$XDG_CACHE_HOME|~/.cache/learning-loop-node/ort-<version>-<sha256 prefix>/` and that path is returned:
 * the folder name pins the library's content, the file's size is checked on every start, and the
 * copy lands by rename so a crash never leaves half a library behind.
 */
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EMBEDDED_ASSETS, type EmbeddedFile } from '../foundation/embedded-assets.ts'
import { unpackEmbeddedFiles } from '../foundation/embedded-files.ts'

export const ORT_LIBRARY_NAME = 'libonnxruntime.so.1'

/** Absolute path of the bundled library, or undefined where onnxruntime-node ships none (non-Linux). */
export function bundledOrtLibraryPath(env: Record<string, string | undefined> = process.env): string | undefined {
  const embedded = EMBEDDED_ASSETS?.ortLibrary
  if (embedded) return unpackEmbeddedLibrary(embedded, env)
  if (process.platform !== 'linux') return undefined
  const entry = fileURLToPath(import.meta.resolve('onnxruntime-node'))
  return join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch, ORT_LIBRARY_NAME)
}

/** The onnxruntime-node version, part of the cache folder name so upgrades never mix libraries. */
export async function bundledOrtVersion(): Promise<string> {
  const embedded = EMBEDDED_ASSETS?.ortLibrary
  if (embedded) return embeddedVersion(embedded)
  const entry = fileURLToPath(import.meta.resolve('onnxruntime-node'))
  const manifest = JSON.parse(await readFile(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version?: string }
  return manifest.version ?? 'unknown'
}

function embeddedVersion(embedded: EmbeddedFile & { ortVersion: string }): string {
  return `${embedded.ortVersion}-${embedded.sha256.slice(0, 12)}`
}

function unpackEmbeddedLibrary(embedded: EmbeddedFile & { ortVersion: string }, env: Record<string, string | undefined>): string {
  return join(unpackEmbeddedFiles({ [ORT_LIBRARY_NAME]: embedded }, `ort-${embeddedVersion(embedded)}`, 'the embedded onnxruntime library', env), ORT_LIBRARY_NAME)
}
