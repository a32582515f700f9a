import { mkdir, open, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/**
 * Writes every file into a staging folder and renames that folder to `folder` in one step; `folder`
 * must not exist yet. Names must be plain file names (checked by the caller).
 */
export async function writeFolderDurably(folder: string, files: { name: string; bytes: Uint8Array }[]): Promise<void> {
  const staging = join(dirname(folder), `.staging-${crypto.randomUUID().slice(0, 8)}`)
  await mkdir(staging, { recursive: true })
  try {
    for (const file of files) {
      const handle = await open(join(staging, file.name), 'w')
      try {
        await handle.writeFile(file.bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
    }
    await rename(staging, folder)
  } catch (error) {
    await rm(staging, { recursive: true, force: true })
    throw error
  }
}
