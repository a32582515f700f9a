import { ImageMetadata, tryDecode, type OutboxRejection } from '../contract/index.ts'
import { errorMessage, type Logger } from '../foundation/log.ts'
import {
  classifyUploadError, classifyUploadStatus, MAX_RETRY_AFTER_MS, MAX_UPLOAD_BACKOFF_MS, nextUploadDelayMs, selectBatch, splitRejectedBatch,
  STOP_TIMEOUT_MS, UPLOAD_BATCH_SIZE, UPLOAD_INTERVAL_MS, UPLOAD_TIMEOUT_MS, type OutboxQueues, type QueuedItem, type RoundEnd, type UploadAnswer,
} from './outbox-policy.ts'
import type { OutboxMetrics } from './outbox-metrics.ts'
import type { OutboxStore } from './outbox-store.ts'
import { imageUploadForm, type UploadFunction } from '../loop/image-upload.ts'

/** What one upload round did; `uploadOnce()` returns it. */
export interface UploadRound {
  /** items the Loop accepted (deleted here) */
  uploaded: number
  /** items moved to `rejected/`: refused by the Loop or broken on disk */
  quarantined: number
  /** HTTP requests sent in this round (bisection sends several) */
  requests: number
  /** why the round stopped early, if it did: `rate_limited`, `network`, `timeout`, `http_503`, … */
  failure?: string
  retryAfterMs?: number
}

/** Totals since start, shown on the status page. */
export interface OutboxTotals {
  saved: number
  uploaded: number
  rejected: number
  dropped: number
  uploadFailures: number
}

/** The outbox state the uploader shares with the rest of the outbox. */
export interface OutboxUploaderContext {
  store: OutboxStore
  queues: OutboxQueues
  /** ids being uploaded: the drop policy leaves them alone */
  busy: Set<string>
  log: Logger
  metrics: OutboxMetrics
  totals: OutboxTotals
  /** bytes deleted from the disk, for the free-space estimate */
  freed(bytes: number): void
  /** bumped by reset(): answers to uploads started before it must not touch the new state */
  generation(): number
}

export interface OutboxUploaderOptions {
  upload: UploadFunction
  intervalMs?: number
  batchSize?: number
  uploadTimeoutMs?: number
  stopTimeoutMs?: number
  maxBackoffMs?: number
  maxRetryAfterMs?: number
  maxRejectedItems?: number
  random?: () => number
}

interface ReadyItem {
  item: QueuedItem
  json: Uint8Array
  jpeg: Uint8Array
}

const DEFAULT_MAX_REJECTED_ITEMS = 1_000
const MAX_LOGGED_BODY = 300

/**
 * The upload side of the outbox (§7.8): one loop that sends batches to the Loop, one request at a time,
 * bisects rejected batches, quarantines broken items, honours Retry-After and backs off with jitter.
 */
export class OutboxUploader {
  readonly stopTimeoutMs: number
  private readonly intervalMs: number
  private readonly batchSize: number
  private readonly uploadTimeoutMs: number
  private readonly maxBackoffMs: number
  private readonly maxRetryAfterMs: number
  private readonly maxRejectedItems: number
  private readonly random: () => number
  private running = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private round: Promise<UploadRound> | undefined
  private abortRound: AbortController | undefined
  private consecutiveFailures = 0

  constructor(private readonly context: OutboxUploaderContext, private readonly options: OutboxUploaderOptions) {
    this.intervalMs = options.intervalMs ?? UPLOAD_INTERVAL_MS
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? UPLOAD_BATCH_SIZE))
    this.uploadTimeoutMs = options.uploadTimeoutMs ?? UPLOAD_TIMEOUT_MS
    this.stopTimeoutMs = options.stopTimeoutMs ?? STOP_TIMEOUT_MS
    this.maxBackoffMs = options.maxBackoffMs ?? MAX_UPLOAD_BACKOFF_MS
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS
    this.maxRejectedItems = options.maxRejectedItems ?? DEFAULT_MAX_REJECTED_ITEMS
    this.random = options.random ?? Math.random
  }

  get isRunning(): boolean {
    return this.running
  }

  // ---------------------------------------------------------------- the loop

  start(): void {
    if (this.running) return
    this.running = true
    this.consecutiveFailures = 0
    this.schedule(0)
  }

  /** Stops scheduling rounds; a round in flight goes on (see `stop`). */
  halt(): void {
    this.running = false
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Halts and waits up to `timeoutMs` for the round in flight; aborts it (false) when it takes longer. */
  async stop(timeoutMs = this.stopTimeoutMs): Promise<boolean> {
    this.halt()
    const inFlight = this.round
    if (!inFlight) return true
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, timeoutMs))))
    const outcome = await Promise.race([inFlight.then(() => 'done' as const), timedOut])
    clearTimeout(timer)
    if (outcome === 'done') return true
    this.abortRound?.abort(new Error('the outbox is stopping'))
    this.context.log.error('the upload in flight did not finish in time; aborted it (its images stay queued)', { waited_ms: timeoutMs })
    return false
  }

  private schedule(delayMs: number): void {
    if (!this.running) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.cycle()
    }, delayMs)
  }

  private async cycle(): Promise<void> {
    if (!this.running) return
    const round = await this.uploadOnce()
    if (!this.running) return
    // every round without a failure removes what it took from the queues, so going on at once always ends
    const end: RoundEnd = round.failure
      ? { kind: 'failed', consecutiveFailures: this.consecutiveFailures, retryAfterMs: round.retryAfterMs }
      : { kind: 'progress', remaining: this.context.queues.count() }
    this.schedule(nextUploadDelayMs(end, { intervalMs: this.intervalMs, maxBackoffMs: this.maxBackoffMs, maxRetryAfterMs: this.maxRetryAfterMs }, this.random))
  }

  // ---------------------------------------------------------------- rounds

  /** One batch now; never two at once (a call while a round runs gets that round's result). Never throws. */
  uploadOnce(): Promise<UploadRound> {
    if (this.round) return this.round
    const round = this.runRound().finally(() => {
      this.round = undefined
      this.abortRound = undefined
    })
    this.round = round
    return round
  }

  private async runRound(): Promise<UploadRound> {
    const { context } = this
    const result: UploadRound = { uploaded: 0, quarantined: 0, requests: 0 }
    const generation = context.generation()
    const batch = selectBatch(context.queues, this.batchSize)
    if (batch.length === 0) return result
    this.abortRound = new AbortController()
    for (const item of batch) context.busy.add(item.id)
    try {
      const ready = await this.readBatch(batch, result)
      if (ready.length > 0 && generation === context.generation()) await this.sendBatch(ready, result, generation)
    } catch (error) {
      // readBatch/sendBatch handle expected failures themselves; this is a bug or an unexpected I/O error
      result.failure = 'internal'
      context.metrics.uploadFailures.inc({ reason: 'internal' })
      context.log.error('outbox upload round failed', { error: errorMessage(error) })
    } finally {
      for (const item of batch) context.busy.delete(item.id)
    }
    if (result.failure) {
      this.consecutiveFailures++
      context.totals.uploadFailures++
    } else {
      this.consecutiveFailures = 0
    }
    return result
  }

  /** Reads the batch's files; items whose folder vanished are forgotten, broken ones quarantined. */
  private async readBatch(batch: QueuedItem[], result: UploadRound): Promise<ReadyItem[]> {
    const { store, queues, log } = this.context
    const reads = await Promise.all(batch.map(async (item) => ({ item, read: await store.readItem(item.queue, item.id) })))
    const ready: ReadyItem[] = []
    for (const { item, read } of reads) {
      if (!queues.has(item.id)) continue // dropped or reset meanwhile
      if (!read.ok && read.missing === 'folder') {
        queues.remove(item.id)
        log.warn('outbox item folder vanished; forgetting it', { id: item.id, queue: item.queue })
        continue
      }
      if (!read.ok) {
        await this.quarantine(item, 'incomplete', read.problem)
        result.quarantined++
        continue
      }
      const problem = metadataProblem(read.json)
      if (problem) {
        await this.quarantine(item, 'invalid_metadata', problem)
        result.quarantined++
        continue
      }
      ready.push({ item, json: read.json, jpeg: read.jpeg })
    }
    return ready
  }

  /** One POST; on a rejection, bisects sequentially until the bad items are isolated and quarantined. */
  private async sendBatch(ready: ReadyItem[], result: UploadRound, generation: number): Promise<void> {
    const { context } = this
    const answer = await this.post(ready, result)
    if (generation !== context.generation()) return
    if (answer.kind === 'delivered') {
      for (const { item } of ready) {
        context.queues.remove(item.id)
        context.freed(item.bytes)
      }
      result.uploaded += ready.length
      context.totals.uploaded += ready.length
      context.metrics.uploaded.inc({}, ready.length)
      await Promise.all(ready.map(({ item }) => context.store.deleteItem(item.queue, item.id).catch((error) => {
        context.log.error('deleting an uploaded outbox item failed; it may be sent again after a restart', { id: item.id, error: errorMessage(error) })
      })))
      return
    }
    if (answer.kind === 'retry') {
      result.failure = answer.reason
      if (answer.retryAfterMs !== undefined) result.retryAfterMs = answer.retryAfterMs
      return
    }
    const split = splitRejectedBatch(ready)
    if ('quarantine' in split) {
      await this.quarantine(split.quarantine.item, answer.reason, `the Loop refused the item: ${answer.detail ?? answer.reason}`)
      result.quarantined++
      return
    }
    for (const half of split.halves) {
      await this.sendBatch(half, result, generation)
      // a failure that is not about the items (network, 429, …) ends the search; the rest stays queued
      if (result.failure || generation !== context.generation()) return
    }
  }

  private async post(ready: ReadyItem[], result: UploadRound): Promise<UploadAnswer & { detail?: string }> {
    const { metrics, log } = this.context
    const form = imageUploadForm(ready.map(({ item, json, jpeg }) => ({ id: item.id, json, jpeg })))
    const timeout = AbortSignal.timeout(this.uploadTimeoutMs)
    const stopping = this.abortRound?.signal
    const signal = stopping ? AbortSignal.any([timeout, stopping]) : timeout
    const started = performance.now()
    result.requests++
    let answer: UploadAnswer & { detail?: string }
    let status: number | undefined
    try {
      const response = await this.options.upload(form, signal)
      status = response.status
      const body = await response.text().catch(() => '')
      answer = classifyUploadStatus(response.status, response.headers.get('retry-after'), Date.now())
      if (answer.kind !== 'delivered') answer = { ...answer, detail: `HTTP ${response.status}${body ? `: ${body.slice(0, MAX_LOGGED_BODY)}` : ''}` }
    } catch (error) {
      answer = { ...classifyUploadError(error, timeout.aborted, stopping?.aborted ?? false), detail: errorMessage(error) }
    }
    metrics.uploadDuration.observe((performance.now() - started) / 1000, { outcome: answer.kind })
    if (answer.kind === 'retry') {
      metrics.uploadFailures.inc({ reason: answer.reason })
      const fields = { items: ready.length, reason: answer.reason, status, retry_after_ms: answer.retryAfterMs, error: answer.detail }
      if (answer.reason === 'rate_limited') log.warn('outbox upload rate limited; items stay queued', fields)
      else log.error('outbox upload failed; items stay queued', fields)
    } else if (answer.kind === 'rejected' && ready.length > 1) {
      log.warn('the Loop rejected an outbox batch; bisecting to find the bad items', { items: ready.length, error: answer.detail })
    }
    return answer
  }

  /** Moves an item to `rejected/` with its reason; also used at load for broken item folders. */
  async quarantine(item: QueuedItem, reason: string, detail: string): Promise<void> {
    const { store, queues, log, metrics, totals } = this.context
    queues.remove(item.id)
    totals.rejected++
    metrics.rejected.inc({ reason })
    const rejection: OutboxRejection = { reason, detail, queue: item.queue, rejected_at: new Date().toISOString() }
    try {
      const destination = await store.quarantineItem(item.queue, item.id, rejection)
      log.error('outbox item quarantined', { id: item.id, queue: item.queue, reason, detail, kept_at: destination })
      const trimmed = await store.trimRejected(this.maxRejectedItems)
      if (trimmed > 0) log.warn('deleted the oldest rejected outbox items', { count: trimmed, keep: this.maxRejectedItems })
    } catch (error) {
      // it stays on disk in its queue and is tried again after a restart; in this run it no longer blocks
      log.error('quarantining an outbox item failed; skipping it until restart', { id: item.id, queue: item.queue, reason, detail, error: errorMessage(error) })
    }
  }
}

/** Why an item's JSON is not ImageMetadata, or undefined when it is. */
function metadataProblem(json: Uint8Array): string | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder().decode(json))
  } catch (error) {
    return `malformed JSON: ${errorMessage(error)}`
  }
  const decoded = tryDecode(ImageMetadata, parsed)
  return decoded.ok ? undefined : decoded.error.message
}
