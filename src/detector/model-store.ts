import { lstat, mkdir, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { syncFolder } from '../foundation/atomic-file.ts'
import { quoteInput } from '../foundation/log.ts'
import { localVersionsOf } from './version-control.ts'

/** The link to the active model (HEAD); 0.18.x nodes used `model`, which is still read at start. */
export const CURRENT_MODEL_LINK = 'current_model'
export const LEGACY_MODEL_LINK = 'model'

/**
 * `<data>/models/<version>/` folders and the `<data>/current_model` symlink (§7.6), on disk exactly as
 * upstream writes them, so a detector can take over an existing volume.
 */
export class ModelStore {
  readonly modelsFolder: string
  constructor(readonly dataFolder: string) {
    this.modelsFolder = join(dataFolder, 'models')
  }

  versionFolder(version: string): string {
    return join(this.modelsFolder, version)
  }

  /** Versions present locally (sub-folders named like versions), oldest first. */
  async localVersions(): Promise<string[]> {
    const names = await readdir(this.modelsFolder).catch(() => [] as string[])
    return localVersionsOf(names)
  }

  /** True when the version's folder holds something (upstream skips the download then). */
  async isInstalled(version: string): Promise<boolean> {
    const entries = await readdir(this.versionFolder(version)).catch(() => [] as string[])
    return entries.length > 0
  }

  /** The folder `current_model` (or a 0.18 `model` link) points at, if it is a directory. */
  async currentModelFolder(): Promise<string | undefined> {
    for (const name of [CURRENT_MODEL_LINK, LEGACY_MODEL_LINK]) {
      const link = join(this.dataFolder, name)
      const info = await lstat(link).catch(() => undefined)
      if (!info?.isSymbolicLink()) continue
      const target = resolve(this.dataFolder, await readlink(link))
      if ((await stat(target).catch(() => undefined))?.isDirectory()) return target
    }
    return undefined
  }

  /** A fresh, empty folder for `version` (anything half-downloaded there before is removed). */
  async prepareVersionFolder(version: string): Promise<string> {
    const folder = this.ownFolder(version)
    await rm(folder, { recursive: true, force: true })
    await mkdir(folder, { recursive: true })
    return folder
  }

  async removeVersion(version: string): Promise<void> {
    await rm(this.ownFolder(version), { recursive: true, force: true })
  }

  /** The folder of `version` for a step that deletes: only a plain name inside models/, never `..` or a path. */
  private ownFolder(version: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(version) || version.includes('..')) {
      throw new Error(`model version ${quoteInput(version)} cannot name a folder under ${this.modelsFolder}`)
    }
    return this.versionFolder(version)
  }

  /** Repoints `current_model` at `models/<version>` atomically: a `.tmp` link renamed over the old one. */
  async pointCurrentAt(version: string): Promise<void> {
    const link = join(this.dataFolder, CURRENT_MODEL_LINK)
    const temp = `${link}.tmp`
    await rm(temp, { force: true })
    await symlink(join('models', version), temp)
    await rename(temp, link)
    await syncFolder(this.dataFolder)
  }
}
