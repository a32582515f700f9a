import { crc32 as computeCrc32, inflateRawSync } from 'node:zlib'
import { mkdir, rename, rm, writeFile, readdir, stat } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { zipSync } from 'fflate'
import { quoteInput } from './log.ts'

/** A zip that is unsafe or unreadable: path traversal, links, size caps, corrupt data. Nothing was written. */
export class ZipError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ZipError'
  }
}

export interface ZipLimits {
  /** largest uncompressed entry, default 2 GiB */
  maxEntryBytes?: number
  /** largest uncompressed total, default 4 GiB */
  maxTotalBytes?: number
  /** most entries, default 10 000 */
  maxEntries?: number
  /**
   * an entry larger than `bombMinimumBytes` (default 8 MiB) that expands more than this many times (default 200)
   * is refused as a compression bomb: real model weights shrink by ~15 %, zeros a thousandfold
   */
  maxExpansionRatio?: number
  bombMinimumBytes?: number
  /** most folders an entry lies in, default 32 (thousands of nested folders take Bun's rm many seconds to remove) */
  maxDepth?: number
}

export interface ZipEntry {
  /** normalised relative path with `/` separators; directories end in `/` */
  name: string
  method: number
  compressedSize: number
  size: number
  crc32: number
  isDirectory: boolean
  localHeaderOffset: number
}

const DEFAULT_LIMITS: Required<ZipLimits> = { maxEntryBytes: 2 ** 31, maxTotalBytes: 2 ** 32, maxEntries: 10_000, maxExpansionRatio: 200, bombMinimumBytes: 8 * 1024 * 1024, maxDepth: 32 }
const EOCD_SIGNATURE = 0x06054b50
const CENTRAL_SIGNATURE = 0x02014b50
const LOCAL_SIGNATURE = 0x04034b50
const UNIX_HOST = 3
const S_IFMT = 0o170000
const S_IFLNK = 0o120000

function safeName(raw: string): string {
  const name = raw.replace(/\\/g, '/')
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) throw new ZipError(`zip entry ${quoteInput(raw)} has an absolute path`)
  const parts = name.split('/')
  if (parts.some((p) => p === '..')) throw new ZipError(`zip entry ${quoteInput(raw)} escapes the target folder ("..")`)
  if (name.includes('\0')) throw new ZipError(`zip entry ${quoteInput(raw)} has a NUL byte in its name`)
  return parts.filter((p) => p !== '.' && p !== '').join('/') + (name.endsWith('/') ? '/' : '')
}

/** Reads the central directory and checks every entry against the limits (sizes, count, expansion); reads no file data. */
export function listZipEntries(zip: Uint8Array, limits: ZipLimits = {}): ZipEntry[] {
  const caps = { ...DEFAULT_LIMITS, ...limits }
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength)
  let eocd = -1
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === EOCD_SIGNATURE) { eocd = i; break }
  }
  if (eocd < 0) throw new ZipError('not a zip archive (no end-of-central-directory record)')
  const count = view.getUint16(eocd + 10, true)
  const directoryOffset = view.getUint32(eocd + 16, true)
  if (count === 0xffff || directoryOffset === 0xffffffff) throw new ZipError('ZIP64 archives are not supported')
  if (count > caps.maxEntries) throw new ZipError(`zip has ${count} entries, more than the limit of ${caps.maxEntries}`)
  const entries: ZipEntry[] = []
  let offset = directoryOffset
  let total = 0
  const seen = new Set<string>()
  for (let i = 0; i < count; i++) {
    if (offset + 46 > zip.length || view.getUint32(offset, true) !== CENTRAL_SIGNATURE) throw new ZipError('corrupt zip: bad central directory')
    const madeBy = view.getUint16(offset + 4, true) >> 8
    const flags = view.getUint16(offset + 8, true)
    const method = view.getUint16(offset + 10, true)
    const crc32 = view.getUint32(offset + 16, true)
    const compressedSize = view.getUint32(offset + 20, true)
    const size = view.getUint32(offset + 24, true)
    const nameLength = view.getUint16(offset + 28, true)
    const extraLength = view.getUint16(offset + 30, true)
    const commentLength = view.getUint16(offset + 32, true)
    const externalAttributes = view.getUint32(offset + 38, true)
    const localHeaderOffset = view.getUint32(offset + 42, true)
    const rawName = new TextDecoder().decode(zip.subarray(offset + 46, offset + 46 + nameLength))
    offset += 46 + nameLength + extraLength + commentLength
    const name = safeName(rawName)
    const depth = name.split('/').length - (name.endsWith('/') ? 2 : 1)
    if (depth > caps.maxDepth) throw new ZipError(`zip entry ${quoteInput(rawName)} lies ${depth} folders deep, more than the limit of ${caps.maxDepth}`)
    if (madeBy === UNIX_HOST && ((externalAttributes >>> 16) & S_IFMT) === S_IFLNK) {
      throw new ZipError(`zip entry ${quoteInput(rawName)} is a symbolic link; links are not allowed`)
    }
    if (flags & 1) throw new ZipError(`zip entry ${quoteInput(rawName)} is encrypted`)
    const isDirectory = name.endsWith('/')
    if (!isDirectory && method !== 0 && method !== 8) throw new ZipError(`zip entry ${quoteInput(rawName)} uses unsupported compression method ${method}`)
    if (size > caps.maxEntryBytes) throw new ZipError(`zip entry ${quoteInput(rawName)} unpacks to ${size} bytes, more than the limit of ${caps.maxEntryBytes}`)
    if (size > caps.bombMinimumBytes && size > caps.maxExpansionRatio * Math.max(1, compressedSize)) {
      throw new ZipError(`zip entry ${quoteInput(rawName)} expands from ${compressedSize} to ${size} bytes (more than ${caps.maxExpansionRatio} times), which looks like a zip bomb`)
    }
    total += size
    if (total > caps.maxTotalBytes) throw new ZipError(`zip unpacks to more than the limit of ${caps.maxTotalBytes} bytes`)
    if (name === '' ) continue
    if (seen.has(name)) throw new ZipError(`zip has the entry ${quoteInput(name)} twice`)
    seen.add(name)
    entries.push({ name, method, compressedSize, size, crc32, isDirectory, localHeaderOffset })
  }
  return entries
}

/** The uncompressed bytes of one entry, checked against its declared size and CRC-32. */
export function readZipEntry(zip: Uint8Array, entry: ZipEntry): Uint8Array {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength)
  const at = entry.localHeaderOffset
  if (at + 30 > zip.length || view.getUint32(at, true) !== LOCAL_SIGNATURE) throw new ZipError(`corrupt zip: bad local header for ${entry.name}`)
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true)
  const end = start + entry.compressedSize
  if (end > zip.length) throw new ZipError(`corrupt zip: ${entry.name} is truncated`)
  const compressed = zip.subarray(start, end)
  let data: Uint8Array
  if (entry.method === 0) {
    data = compressed
  } else {
    try {
      // the declared size bounds the output, so a lying header cannot inflate a bomb
      data = new Uint8Array(inflateRawSync(compressed, { maxOutputLength: Math.max(1, entry.size) }))
    } catch (error) {
      throw new ZipError(`corrupt zip: ${entry.name} does not inflate to its declared ${entry.size} bytes (${(error as Error).message})`)
    }
  }
  if (data.length !== entry.size) throw new ZipError(`corrupt zip: ${entry.name} has ${data.length} bytes, header says ${entry.size}`)
  if (computeCrc32(data) !== entry.crc32) throw new ZipError(`corrupt zip: CRC mismatch in ${entry.name}`)
  return data
}

/**
 * Extracts a zip into `targetDir`, keeping sub-folders. Everything is first written to a staging folder
 * beside the target and moved in only when the whole archive was read and checked, so a bad archive
 * leaves nothing behind. Existing files in the target are never overwritten. Returns the relative paths written.
 */
export async function extractZip(zip: Uint8Array, targetDir: string, limits: ZipLimits = {}): Promise<string[]> {
  const entries = listZipEntries(zip, limits)
  const target = resolve(targetDir)
  await mkdir(target, { recursive: true })
  const staging = `${target}.extracting-${crypto.randomUUID().slice(0, 8)}`
  const written: string[] = []
  try {
    for (const entry of entries) {
      const destination = resolve(staging, entry.name)
      if (destination !== staging && !destination.startsWith(staging + sep)) throw new ZipError(`zip entry ${entry.name} escapes the target folder`)
      if (entry.isDirectory) {
        await mkdir(destination, { recursive: true })
        continue
      }
      const data = readZipEntry(zip, entry)
      await mkdir(dirname(destination), { recursive: true })
      await writeFile(destination, data)
      written.push(entry.name)
    }
    const topLevel = await readdir(staging).catch(() => [] as string[])
    for (const name of topLevel) {
      const exists = await stat(join(target, name)).then(() => true, () => false)
      if (exists) throw new ZipError(`cannot extract: ${name} already exists in ${target}`)
    }
    for (const name of topLevel) await rename(join(staging, name), join(target, name))
    return written
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

/** Builds a zip with every entry stored uncompressed: model weights barely compress and stored entries unzip ~70× faster. */
export function createZip(files: Record<string, Uint8Array | string>): Uint8Array {
  const input: Record<string, [Uint8Array, { level: 0 }]> = {}
  for (const [name, content] of Object.entries(files)) {
    input[name] = [typeof content === 'string' ? new TextEncoder().encode(content) : content, { level: 0 }]
  }
  return zipSync(input)
}
