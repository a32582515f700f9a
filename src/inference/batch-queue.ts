/**
 * Worker-side dynamic batching: images prepared for the network wait here (at most `windowMs` for the oldest) and
 * run together, up to `maxBatch` per run, one run at a time; each caller gets its own image's result. At most two
 * batches of images are prepared ahead of the session, so a burst does not hold a tensor per queued image.
 */
import { ConcurrencyLimit } from '../foundation/concurrency-limit.ts'
import { decideBatch, nextArrivalGap, type BatchingSettings } from './batch-policy.ts'

interface Waiting<T, R> {
  item: T
  since: number
  settle(result: PromiseSettledResult<R>): void
}

/** Runs `items` as one batch; one settled result per item, in order (an item may fail alone). */
export type BatchRun<T, R> = (items: T[]) => Promise<PromiseSettledResult<R>[]>

export class BatchQueue<T, R> {
  private readonly waiting: Waiting<T, R>[] = []
  private readonly prepared: ConcurrencyLimit
  private running?: Promise<void>
  private timer?: ReturnType<typeof setTimeout>
  private readonly inFlight = new Set<Promise<unknown>>()
  private lastArrival?: number
  // 0 until images have arrived: a first burst waits its window, a lone client stops waiting after a few images
  private arrivalGapMs = 0
  private closed?: Error

  constructor(private readonly settings: BatchingSettings, private readonly runBatch: BatchRun<T, R>, private readonly now = () => performance.now()) {
    this.prepared = new ConcurrencyLimit(2 * settings.maxBatch)
  }

  /** Prepares one item (when there is room) and resolves with its result from the batch it ran in. */
  run(prepare: () => Promise<T>): Promise<R> {
    const work = this.prepared.run(async () => {
      if (this.closed) throw this.closed
      const item = await prepare()
      if (this.closed) throw this.closed
      const now = this.now()
      if (this.lastArrival !== undefined) this.arrivalGapMs = nextArrivalGap(this.arrivalGapMs, now - this.lastArrival)
      this.lastArrival = now
      return new Promise<R>((resolve, reject) => {
        this.waiting.push({ item, since: now, settle: (r) => (r.status === 'fulfilled' ? resolve(r.value) : reject(r.reason)) })
        this.schedule()
      })
    })
    this.inFlight.add(work)
    void work.finally(() => this.inFlight.delete(work)).catch(() => undefined)
    return work
  }

  /** Items not yet in a run fail with `reason`, and so does every later one; the run in progress finishes. */
  close(reason: Error): void {
    this.closed ??= reason
    clearTimeout(this.timer)
    this.timer = undefined
    for (const waiting of this.waiting.splice(0)) waiting.settle({ status: 'rejected', reason })
  }

  /** Resolves when every item handed to `run` so far has its result. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
  }

  private schedule(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const oldest = this.waiting[0]
    const decision = decideBatch({
      queued: this.waiting.length, running: this.running !== undefined, oldestWaitedMs: oldest ? this.now() - oldest.since : 0, arrivalGapMs: this.arrivalGapMs,
    }, this.settings)
    if (decision.action === 'wait') this.timer = setTimeout(() => this.schedule(), decision.ms)
    else if (decision.action === 'run') this.running = this.start(this.waiting.splice(0, decision.size))
  }

  private async start(batch: Waiting<T, R>[]): Promise<void> {
    let results: PromiseSettledResult<R>[]
    try {
      results = await this.runBatch(batch.map((w) => w.item))
    } catch (reason) {
      results = batch.map(() => ({ status: 'rejected', reason }))
    }
    batch.forEach((waiting, i) => waiting.settle(results[i] ?? { status: 'rejected', reason: new Error('the batch returned no result for this image') }))
    this.running = undefined
    if (!this.closed) this.schedule()
  }
}
