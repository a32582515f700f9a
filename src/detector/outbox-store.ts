import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeJson, OutboxModeFile, type OutboxMode, type OutboxRejection } from '../contract/index.ts'
import { syncFolder, writeFileAtomic } from '../foundation/atomic-file.ts'
import { isOutboxIdentifier, type OutboxQueueName } from './outbox-policy.ts'
// an item's files are named as its parts on the wire, as upstream posts them from disk
import { imageJpegFileName, imageJsonFileName } from '../loop/image-upload.ts'

/**
 * The outbox on disk, in upstream's layout so existing volumes keep working (§7.8):
 *
 *   <data>/outbox/{priority,normal}/<id>/image_<id>.json + image_<id>.jpg   queued items
 *   <data>/tmp/<id>/                                                       staging while an item is written
 *   <data>/outbox/rejected/<id>/ (+ reason.json)                           items the Loop refused, or found broken
 *   <data>/outbox/mode.json                                                the persisted mode
 *
 * An item becomes visible in its queue only by renaming a complete, fsynced staging folder, so a crash
 * leaves either a whole item or a staging folder that the next start removes.
 */

export const OUTBOX_QUEUES: readonly OutboxQueueName[] = ['priority', 'normal']

export interface ScannedItem {
  id: string
  queue: OutboxQueueName
  bytes: number
  mtimeMs: number
}

export interface IncompleteItem {
  id: string
  queue: OutboxQueueName
  problem: string
}

export type ItemRead =
  | { ok: true; json: Uint8Array; jpeg: Uint8Array }
  | { ok: false; missing: 'folder' }
  | { ok: false; missing: 'file'; problem: string }


const SCAN_CONCURRENCY = 64

function isNotFound(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === 'ENOENT'
}

function isAlreadyThere(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code
  return code === 'EEXIST' || code === 'ENOTEMPTY'
}

/**
 * Coalesces directory fsyncs: a caller waits for a sync that STARTS after its call, but concurrent callers
 * share one. Many items saved at once then cost one fsync of the queue folder, not one each.
 */
class FolderSync {
  private running: Promise<void> | undefined
  private next: Promise<void> | undefined

  constructor(private readonly folder: string) {}

  sync(): Promise<void> {
    if (!this.running) return this.start()
    this.next ??= this.running.then(() => {
      this.next = undefined
      return this.start()
    })
    return this.next
  }

  private start(): Promise<void> {
    const run = syncFolder(this.folder).finally(() => {
      if (this.running === run) this.running = undefined
    })
    this.running = run
    return run
  }
}

/** Writes a new file and makes its content durable (fdatasync also flushes the size and blocks it needs). */
async function writeDurably(path: string, data: Uint8Array): Promise<void> {
  const handle = await open(path, 'w')
  try {
    await handle.writeFile(data)
    await handle.datasync()
  } finally {
    await handle.close()
  }
}

export class OutboxStore {
  readonly outboxFolder: string
  readonly stagingFolder: string
  readonly rejectedFolder: string
  readonly modeFile: string
  private readonly queueSyncs: Record<OutboxQueueName, FolderSync>

  constructor(readonly dataFolder: string) {
    this.outboxFolder = join(dataFolder, 'outbox')
    this.stagingFolder = join(dataFolder, 'tmp')
    this.rejectedFolder = join(this.outboxFolder, 'rejected')
    this.modeFile = join(this.outboxFolder, 'mode.json')
    this.queueSyncs = { priority: new FolderSync(this.queueFolder('priority')), normal: new FolderSync(this.queueFolder('normal')) }
  }

  queueFolder(queue: OutboxQueueName): string {
    return join(this.outboxFolder, queue)
  }

  itemFolder(queue: OutboxQueueName, id: string): string {
    return join(this.queueFolder(queue), id)
  }

  /** Creates the folders; also after `POST /reset` wiped the data folder (§15.9). */
  async ensureFolders(): Promise<void> {
    for (const folder of [this.queueFolder('priority'), this.queueFolder('normal'), this.rejectedFolder, this.stagingFolder]) {
      await mkdir(folder, { recursive: true })
    }
  }

  /**
   * Writes an item crash-safely: both files into `<data>/tmp/<id>/`, fsync files and folder, rename the
   * folder into the queue, fsync the queue folder. Returns false when an item of that id already exists
   * (nothing is written then). Throws on I/O errors, after removing the staging folder.
   */
  async writeItem(queue: OutboxQueueName, id: string, json: Uint8Array, jpeg: Uint8Array): Promise<boolean> {
    const staging = join(this.stagingFolder, id)
    const target = this.itemFolder(queue, id)
    try {
      await mkdir(staging, { recursive: true })
      await Promise.all([writeDurably(join(staging, imageJsonFileName(id)), json), writeDurably(join(staging, imageJpegFileName(id)), jpeg)])
      await syncFolder(staging)
      // fails with ENOTEMPTY when the item exists (an empty leftover folder of that name is simply replaced)
      await rename(staging, target)
    } catch (error) {
      await rm(staging, { recursive: true, force: true }).catch(() => {})
      if (isAlreadyThere(error)) return false
      throw error
    }
    await this.queueSyncs[queue].sync()
    return true
  }

  /** Both files of an item, or what is missing. */
  async readItem(queue: OutboxQueueName, id: string): Promise<ItemRead> {
    const folder = this.itemFolder(queue, id)
    const read = async (name: string) => {
      try {
        return new Uint8Array(await readFile(join(folder, name)))
      } catch (error) {
        if (isNotFound(error)) return undefined
        throw error
      }
    }
    const [json, jpeg] = await Promise.all([read(imageJsonFileName(id)), read(imageJpegFileName(id))])
    if (json && jpeg) return { ok: true, json, jpeg }
    try {
      await stat(folder)
    } catch (error) {
      if (isNotFound(error)) return { ok: false, missing: 'folder' }
      throw error
    }
    return { ok: false, missing: 'file', problem: `${!json ? imageJsonFileName(id) : imageJpegFileName(id)} is missing` }
  }

  async deleteItem(queue: OutboxQueueName, id: string): Promise<void> {
    await rm(this.itemFolder(queue, id), { recursive: true, force: true })
  }

  /**
   * Moves an item folder to `rejected/` (keeping it for inspection) with a `reason.json`; returns where it
   * went. A name that is already taken there gets a suffix.
   */
  async quarantineItem(queue: OutboxQueueName, id: string, rejection: OutboxRejection): Promise<string> {
    await mkdir(this.rejectedFolder, { recursive: true })
    let destination = join(this.rejectedFolder, id)
    for (let attempt = 2; ; attempt++) {
      try {
        await stat(destination)
        destination = join(this.rejectedFolder, `${id}~${attempt}`)
      } catch (error) {
        if (isNotFound(error)) break
        throw error
      }
    }
    await rename(this.itemFolder(queue, id), destination)
    await syncFolder(this.rejectedFolder)
    await writeFileAtomic(join(destination, 'reason.json'), JSON.stringify(rejection, null, 2))
    return destination
  }

  /** Deletes the oldest rejected items beyond `keep`; returns how many. */
  async trimRejected(keep: number): Promise<number> {
    const names = (await readdir(this.rejectedFolder).catch(() => [] as string[])).sort()
    const doomed = names.slice(0, Math.max(0, names.length - keep))
    await Promise.all(doomed.map((name) => rm(join(this.rejectedFolder, name), { recursive: true, force: true })))
    return doomed.length
  }

  /** Removes staging folders a crash left behind (ours only: named like identifiers), except `keep`. */
  async cleanStaging(keep: ReadonlySet<string> = new Set()): Promise<string[]> {
    const names = await readdir(this.stagingFolder).catch(() => [] as string[])
    const leftovers = names.filter((name) => isOutboxIdentifier(name) && !keep.has(name))
    await Promise.all(leftovers.map((name) => rm(join(this.stagingFolder, name), { recursive: true, force: true })))
    return leftovers
  }

  /** Every item folder in both queues: complete ones with their size, and those missing a file. */
  async scan(): Promise<{ items: ScannedItem[]; incomplete: IncompleteItem[]; ignored: string[] }> {
    const items: ScannedItem[] = []
    const incomplete: IncompleteItem[] = []
    const ignored: string[] = []
    for (const queue of OUTBOX_QUEUES) {
      const entries = await readdir(this.queueFolder(queue), { withFileTypes: true }).catch((error) => {
        if (isNotFound(error)) return []
        throw error
      })
      const folders = entries.filter((e) => {
        if (e.isDirectory() && !e.name.startsWith('.')) return true
        ignored.push(join(queue, e.name))
        return false
      })
      for (let i = 0; i < folders.length; i += SCAN_CONCURRENCY) {
        await Promise.all(folders.slice(i, i + SCAN_CONCURRENCY).map(async ({ name: id }) => {
          const folder = this.itemFolder(queue, id)
          const [json, jpeg] = await Promise.all([
            stat(join(folder, imageJsonFileName(id))).catch(() => undefined),
            stat(join(folder, imageJpegFileName(id))).catch(() => undefined),
          ])
          if (json?.isFile() && jpeg?.isFile()) {
            items.push({ id, queue, bytes: json.size + jpeg.size, mtimeMs: Math.min(json.mtimeMs, jpeg.mtimeMs) })
          } else {
            const missing = [!json?.isFile() && imageJsonFileName(id), !jpeg?.isFile() && imageJpegFileName(id)].filter(Boolean).join(' and ')
            incomplete.push({ id, queue, problem: `${missing} missing` })
          }
        }))
      }
    }
    return { items, incomplete, ignored }
  }

  /** The persisted mode; undefined when none was saved. Throws ContractError for an unreadable file. */
  async readMode(): Promise<OutboxMode | undefined> {
    let text: string
    try {
      text = await readFile(this.modeFile, 'utf8')
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw error
    }
    return decodeJson(OutboxModeFile, text).mode
  }

  async writeMode(mode: OutboxMode, nowMs = Date.now()): Promise<void> {
    const file: OutboxModeFile = { mode, changed_at: new Date(nowMs).toISOString() }
    await writeFileAtomic(this.modeFile, JSON.stringify(file) + '\n')
  }
}
