/**
 * Copies files embedded in a compiled binary (`/$bunfs/…`, see embedded-assets.ts) to a real folder under
 * `$XDG_CACHE_HOME|~/.cache/learning-loop-node/<folder>/`, for readers that need a real path (the dynamic
 * loader, the inference Worker, a child process). Put the content hash in `folder` so versions never mix.
 * A file already there with the right size is kept; each copy lands by rename, so a crash never leaves
 * half a file behind.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { EmbeddedFile } from './embedded-assets.ts'

export function cacheFolder(folder: string, env: Record<string, string | undefined> = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'learning-loop-node', folder)
}

/**
 * Copies `files` (by target name) into the cache folder `folder`; returns the folder. Throws an error that
 * names `what`, the folder and the way out (XDG_CACHE_HOME) when the cache is not writable.
 */
export function unpackEmbeddedFiles(files: Record<string, EmbeddedFile>, folder: string, what: string, env: Record<string, string | undefined> = process.env): string {
  const dir = cacheFolder(folder, env)
  try {
    mkdirSync(dir, { recursive: true })
    for (const [name, file] of Object.entries(files)) {
      const target = join(dir, name)
      if (sizeOf(target) === file.size) continue
      const partial = `${target}.partial-${process.pid}-${crypto.randomUUID().slice(0, 8)}`
      writeFileSync(partial, readFileSync(file.path))
      renameSync(partial, target)
    }
  } catch (error) {
    throw new Error(`could not copy ${what} to ${dir} (set XDG_CACHE_HOME to a writable folder): ${(error as Error).message}`)
  }
  return dir
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size
  } catch {
    return undefined
  }
}
