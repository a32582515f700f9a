import { createLogger, errorMessage, type Logger } from '../foundation/log.ts'

/** Upstream's `repeat_loop_cycle_sec`. */
export const REPEAT_INTERVAL_MS = 5_000

/**
 * Runs `task` every `intervalMs` after the previous run finished (never two at once), until stopped.
 * While muted it skips the task. A failing task is logged and counted; the loop goes on.
 */
export class RepeatLoop {
  private timer: ReturnType<typeof setTimeout> | undefined
  private current: Promise<void> | undefined
  private stopped = true
  muted = false
  iterations = 0
  failures = 0

  constructor(
    private readonly task: () => Promise<void>,
    private readonly intervalMs = REPEAT_INTERVAL_MS,
    private readonly log: Logger = createLogger('repeat-loop'),
  ) {}

  get running(): boolean {
    return !this.stopped
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.schedule(0)
  }

  /** Runs one iteration now unless one is already running; resolves when it is done. */
  async runOnce(): Promise<void> {
    if (this.current) return this.current
    if (this.muted) return
    this.current = (async () => {
      try {
        await this.task()
      } catch (error) {
        this.failures++
        this.log.error('repeat task failed', { error: errorMessage(error) })
      } finally {
        this.iterations++
      }
    })()
    try {
      await this.current
    } finally {
      this.current = undefined
    }
  }

  /** Stops scheduling and waits for a running iteration to finish. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    await this.current
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return
    this.timer = setTimeout(async () => {
      await this.runOnce()
      this.schedule(this.intervalMs)
    }, delayMs)
  }
}
