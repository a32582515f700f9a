/**
 * Runs at most `limit` tasks at once; the others wait in arrival order. It bounds concurrency only: how many
 * tasks may wait is the caller's decision (the outbox bounds its write backlog, the detection flow refuses
 * encodings beyond a few), so nothing piles up here without bound.
 */
export class ConcurrencyLimit {
  private active = 0
  private readonly waiting: (() => void)[] = []
  /** the most tasks that ran at once */
  peak = 0

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a concurrency limit must be a whole number ≥ 1, got ${limit}`)
  }

  /** tasks running now */
  get running(): number {
    return this.active
  }

  /** tasks waiting for a slot */
  get queued(): number {
    return this.waiting.length
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    // a finishing task hands its slot straight to the next waiting one, so `active` never overshoots
    if (this.active < this.limit) this.active++
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    this.peak = Math.max(this.peak, this.active)
    try {
      return await task()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }
}
