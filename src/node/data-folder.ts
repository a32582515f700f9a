import { access, mkdir, stat } from 'node:fs/promises'
import { constants } from 'node:fs'
import { resolve } from 'node:path'

export const UPSTREAM_DATA_FOLDER = '/data'

export interface DataFolderChoice {
  path: string
  reason: string
}

async function isWritableDirectory(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isDirectory()) return false
    await access(path, constants.W_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The data folder: the configured one (created if missing), else `/data` as upstream when it exists and is
 * writable (so existing Docker volumes keep working), else `./data`. The caller logs `reason`.
 */
export async function resolveDataFolder(configured: string | undefined, cwd = process.cwd()): Promise<DataFolderChoice> {
  if (configured) {
    const path = resolve(cwd, configured)
    await mkdir(path, { recursive: true })
    if (!(await isWritableDirectory(path))) throw new Error(`data folder ${path} is not a writable directory`)
    return { path, reason: 'configured (DATA_FOLDER / --data)' }
  }
  if (await isWritableDirectory(UPSTREAM_DATA_FOLDER)) return { path: UPSTREAM_DATA_FOLDER, reason: '/data exists and is writable (upstream default)' }
  const path = resolve(cwd, 'data')
  await mkdir(path, { recursive: true })
  return { path, reason: '/data is missing or not writable; using ./data' }
}
