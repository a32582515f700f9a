import type { Logger } from '../foundation/log.ts'

/** Lines logged one by one per kind of drop (queue and reason) and interval before they are only summed up. */
const LINES_PER_INTERVAL = 10
const INTERVAL_MS = 10_000

interface Window {
  logged: number
  unlogged: number
  unloggedBytes: number
  timer: ReturnType<typeof setTimeout>
}

/**
 * Logs outbox drops without flooding the log: a few lines per kind of drop and interval, then one summary
 * line with the count of the others. A flood of autouploads can drop thousands of images a second; the
 * metrics count every one of them, the log only has to say that it happens and why.
 */
export class DropLog {
  private readonly windows = new Map<string, Window>()

  constructor(private readonly log: Logger, private readonly intervalMs = INTERVAL_MS) {}

  dropped(message: string, fields: { queue: string; reason: string; bytes: number } & Record<string, unknown>): void {
    const key = `${message}\u0000${fields.queue}\u0000${fields.reason}`
    let window = this.windows.get(key)
    if (!window) {
      const timer = setTimeout(() => this.close(key, message, fields), this.intervalMs)
      timer.unref?.()
      window = { logged: 0, unlogged: 0, unloggedBytes: 0, timer }
      this.windows.set(key, window)
    }
    if (window.logged < LINES_PER_INTERVAL) {
      window.logged++
      this.log.warn(message, fields)
    } else {
      window.unlogged++
      window.unloggedBytes += fields.bytes
    }
  }

  /** Logs the summaries now (at shutdown). */
  flush(): void {
    for (const [key, window] of this.windows) {
      clearTimeout(window.timer)
      const [message, queue, reason] = key.split('\u0000') as [string, string, string]
      this.summarise(message, queue, reason, window)
    }
    this.windows.clear()
  }

  private close(key: string, message: string, fields: { queue: string; reason: string }): void {
    const window = this.windows.get(key)
    this.windows.delete(key)
    if (window) this.summarise(message, fields.queue, fields.reason, window)
  }

  private summarise(message: string, queue: string, reason: string, window: Window): void {
    if (window.unlogged === 0) return
    this.log.warn(`${message} (more, not logged one by one)`, { queue, reason, count: window.unlogged, bytes: window.unloggedBytes, within_s: this.intervalMs / 1000 })
  }
}
