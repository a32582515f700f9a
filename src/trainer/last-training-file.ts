import { readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeJson, Training } from '../contract/index.ts'
import { writeFileAtomic } from '../foundation/atomic-file.ts'

/**
 * `<data>/last_training__<node-uuid>.json` (§8.2): the whole Training in the upstream shape, written
 * atomically, so a crash leaves the previous version or the new one. It is what a restarted node resumes.
 */
export class LastTrainingFile {
  readonly path: string

  constructor(readonly dataFolder: string, readonly nodeUuid: string) {
    this.path = join(dataFolder, `last_training__${nodeUuid}.json`)
  }

  async write(training: Training): Promise<void> {
    await writeFileAtomic(this.path, JSON.stringify(training, null, 2))
  }

  /** The stored training, or undefined when there is none. A corrupt file throws ContractError naming the problem. */
  async read(): Promise<Training | undefined> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
    return decodeJson(Training, text)
  }

  async exists(): Promise<boolean> {
    return stat(this.path).then((found) => found.isFile(), () => false)
  }

  async delete(): Promise<void> {
    await rm(this.path, { force: true })
  }

  /**
   * Moves an unreadable file aside (`….corrupt-<ms>`) so it no longer blocks the node, keeping it for a person
   * to look at. Returns the new path.
   */
  async quarantine(now = Date.now()): Promise<string> {
    const target = `${this.path}.corrupt-${now}`
    await rename(this.path, target)
    return target
  }
}

