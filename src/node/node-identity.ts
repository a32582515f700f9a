import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../foundation/atomic-file.ts'
import { resolveDataFolder } from './data-folder.ts'
import type { Logger } from '../foundation/log.ts'

/** Key of a node in `uuids.json`: the name lower-cased with spaces as underscores (§3.2). */
export function identityKey(name: string): string {
  return name.toLowerCase().replace(/ /g, '_')
}

/**
 * The node's uuid from `<data>/uuids.json`, created (uuid4) and persisted when missing.
 * A corrupt file is not silently replaced: other nodes' identities live in it too.
 */
export async function loadOrCreateNodeUuid(dataFolder: string, name: string): Promise<string> {
  const file = join(dataFolder, 'uuids.json')
  let uuids: Record<string, string> = {}
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'))
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object')
    uuids = parsed as Record<string, string>
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`${file} is not a JSON object of name → uuid (${(error as Error).message}); fix or remove it`)
    }
  }
  const key = identityKey(name)
  const existing = uuids[key]
  if (typeof existing === 'string' && existing) return existing
  const uuid = crypto.randomUUID()
  await writeFileAtomic(file, JSON.stringify({ ...uuids, [key]: uuid }, null, 2))
  return uuid
}

/**
 * Where a node keeps its state and who it is: the data folder (`given`, else DATA_FOLDER or its fallback,
 * logged with the reason) and the node's uuid in it.
 */
export async function resolveNodeHome(options: { configured: string | undefined; given?: string; name: string; log: Logger }): Promise<{ dataFolder: string; uuid: string }> {
  let dataFolder = options.given
  if (!dataFolder) {
    const folder = await resolveDataFolder(options.configured)
    options.log.info('data folder', { path: folder.path, reason: folder.reason })
    dataFolder = folder.path
  }
  return { dataFolder, uuid: await loadOrCreateNodeUuid(dataFolder, options.name) }
}
