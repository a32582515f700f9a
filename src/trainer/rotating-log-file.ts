import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

export const DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024
export const DEFAULT_MAX_LOG_FILES = 3

/**
 * An append-only log file that rotates at a size cap: `x.log` → `x.log.1` → … → `x.log.<maxFiles-1>`, the oldest
 * dropped, so a chatty training can never fill the disk. Writes are synchronous and small (process output chunks).
 */
export class RotatingLogFile {
  private fd: number | undefined
  private size = 0

  constructor(readonly path: string, readonly maxBytes = DEFAULT_MAX_LOG_BYTES, readonly maxFiles = DEFAULT_MAX_LOG_FILES) {
    if (maxBytes < 1) throw new Error('maxBytes must be at least 1')
    if (maxFiles < 1) throw new Error('maxFiles must be at least 1')
  }

  /** Paths of the rotated files, newest first (`x.log.1`, `x.log.2`, …), only those that exist. */
  rotatedPaths(): string[] {
    const paths: string[] = []
    for (let i = 1; i < this.maxFiles; i++) if (existsSync(`${this.path}.${i}`)) paths.push(`${this.path}.${i}`)
    return paths
  }

  write(chunk: Uint8Array | string): void {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk
    if (bytes.length === 0) return
    this.open()
    let start = 0
    while (start < bytes.length) {
      if (this.size >= this.maxBytes) this.rotate()
      let end = Math.min(bytes.length, start + (this.maxBytes - this.size))
      if (end < bytes.length) {
        // a chunk too big for the rest of this file is cut at its last line break, when it has one
        const newline = bytes.lastIndexOf(0x0a, end - 1)
        if (newline >= start) end = newline + 1
        else if (this.size > 0) {
          this.rotate()
          continue
        }
      }
      this.writeAll(bytes.subarray(start, end))
      start = end
    }
  }

  private writeAll(bytes: Uint8Array): void {
    let offset = 0
    while (offset < bytes.length) offset += writeSync(this.fd!, bytes, offset, bytes.length - offset)
    this.size += bytes.length
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }

  /** All of the log still on disk, oldest first. */
  readAll(): string {
    const parts = [...this.rotatedPaths()].reverse().map((p) => readFileSync(p, 'utf8'))
    if (existsSync(this.path)) parts.push(readFileSync(this.path, 'utf8'))
    return parts.join('')
  }

  /** The last `count` lines (reading the current file and, when needed, the previous one). */
  tail(count: number): string[] {
    const sources = [this.path, ...this.rotatedPaths().slice(0, 1)]
    let lines: string[] = []
    for (const path of sources) {
      if (!existsSync(path)) continue
      const text = readFileSync(path, 'utf8')
      const own = text.split('\n')
      if (own.at(-1) === '') own.pop()
      lines = [...own, ...lines]
      if (lines.length >= count) break
    }
    return count <= 0 ? [] : lines.slice(-count)
  }

  private open(): void {
    if (this.fd !== undefined) return
    mkdirSync(dirname(this.path), { recursive: true })
    this.fd = openSync(this.path, 'a')
    this.size = fstatSync(this.fd).size
  }

  private rotate(): void {
    this.close()
    if (this.maxFiles === 1) {
      rmSync(this.path, { force: true })
    } else {
      rmSync(`${this.path}.${this.maxFiles - 1}`, { force: true })
      for (let i = this.maxFiles - 2; i >= 1; i--) {
        if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`)
      }
      if (existsSync(this.path)) renameSync(this.path, `${this.path}.1`)
    }
    this.open()
  }
}
