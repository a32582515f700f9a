import { open, rename, rm, mkdir } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'

/**
 * Writes a file so that a crash leaves either the old content or the new one, never a torn file:
 * write to a temp file in the same folder, fsync it, rename it over the target, fsync the folder.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const folder = dirname(path)
  await mkdir(folder, { recursive: true })
  const temp = join(folder, `.${basename(path)}.${process.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`)
  const handle = await open(temp, 'w')
  try {
    await handle.writeFile(data)
    await handle.sync()
  } catch (error) {
    await handle.close()
    await rm(temp, { force: true })
    throw error
  }
  await handle.close()
  try {
    await rename(temp, path)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
  await syncFolder(folder)
}

/** Makes a rename inside `folder` durable. Some file systems refuse to fsync a directory; that is not an error. */
export async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await open(folder, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {
    // best effort
  }
}

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
