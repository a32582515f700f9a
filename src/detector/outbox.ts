import { isOneOf, OUTBOX_MODES, tryDecode, ImageMetadata, type OutboxMode, type OutboxRejection } from '../contract/index.ts'
import { statfs } from 'node:fs/promises'
import { createLogger, errorMessage, quoteInput, type Logger } from '../node/log.ts'
import { MetricsRegistry, type Counter, type Histogram } from '../node/metrics.ts'
import {
  classifyUploadError, classifyUploadStatus, DEFAULT_MIN_FREE_DISK_BYTES, DEFAULT_OUTBOX_LIMITS, effectiveByteLimit, identifierTimeMs, MAX_RETRY_AFTER_MS, MAX_UPLOAD_BACKOFF_MS, nextUploadDelayMs,
  OutboxIdentifierClock, OutboxQueues, planDrops, selectBatch, splitRejectedBatch, STOP_TIMEOUT_MS, UPLOAD_BATCH_SIZE,
  UPLOAD_INTERVAL_MS, UPLOAD_TIMEOUT_MS, type OutboxLimits, type OutboxQueueName, type QueuedItem, type RoundEnd, type UploadAnswer,
} from './outbox-policy.ts'
import { jpegFileName, jsonFileName, OutboxStore } from './outbox-store.ts'

/**
 * The detector's crash-safe outbox (§7.8): images with their metadata wait on disk until they are uploaded
 * to the Loop. Fixes over upstream (§15.9, field-notes §3.2): bounded by bytes and count with an explicit,
 * counted drop policy; a broken item is quarantined instead of blocking the queue; items the Loop rejects
 * are kept in `rejected/`; 429 honours Retry-After; failures back off with jitter; the mode persists;
 * `reset()` survives a wiped data folder; the upload can carry the node's login cookie and CA bundle.
 */

/** Sends one multipart batch; the node injects one that carries its login cookie and CA bundle. */
export type UploadFunction = (form: FormData, signal: AbortSignal) => Promise<Response>

export interface OutboxOptions {
  /** the node's data folder; the outbox lives in `<data>/outbox`, staging in `<data>/tmp` */
  dataFolder: string
  /** how a batch reaches the Loop; default: a plain fetch to `loop`'s images endpoint */
  upload?: UploadFunction
  /** for the default upload: `<baseUrl>/api/<organization>/projects/<project>/images` */
  loop?: { baseUrl: string; organization: string; project: string; ca?: string }
  metrics?: MetricsRegistry
  limits?: Partial<OutboxLimits>
  /** free disk space to leave alone (default 256 MiB): old items are dropped rather than fill the disk below it */
  minFreeDiskBytes?: number
  /** free bytes on the disk holding `folder`; default statfs. Tests inject a fake disk. */
  freeDiskBytes?: (folder: string) => Promise<number>
  /** rejected items kept in `rejected/`; the oldest beyond this are deleted (default 1 000) */
  maxRejectedItems?: number
  intervalMs?: number
  batchSize?: number
  uploadTimeoutMs?: number
  /** how long `setMode('stopped')` and `stop()` wait for an upload in flight (default 31 s) */
  stopTimeoutMs?: number
  /** longest wait after failures without Retry-After (default 5 min) */
  maxBackoffMs?: number
  /** longest Retry-After honoured (default 10 min) */
  maxRetryAfterMs?: number
  /** jitter source; tests pass a fixed one */
  random?: () => number
  logger?: Logger
}

export type SaveResult =
  | { saved: true; id: string; queue: OutboxQueueName }
  | { saved: false; reason: string; detail: string }

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

interface ReadyItem {
  item: QueuedItem
  json: Uint8Array
  jpeg: Uint8Array
}

interface OutboxMetrics {
  saved: Counter
  saveFailures: Counter
  uploaded: Counter
  rejected: Counter
  dropped: Counter
  uploadFailures: Counter
  modePersistFailures: Counter
  uploadDuration: Histogram
}

const DEFAULT_MAX_REJECTED_ITEMS = 1_000
/** statfs at most this often; in between, the estimate follows what the outbox writes and deletes */
const DISK_CHECK_INTERVAL_MS = 1_000
const MAX_LOGGED_BODY = 300
const SAVE_ATTEMPTS = 3

/** The default upload: a plain fetch to the Loop's image endpoint (§7.8; no cookie, like upstream). */
export function createFetchUpload(loop: { baseUrl: string; organization: string; project: string; ca?: string }): UploadFunction {
  const url = `${loop.baseUrl.replace(/\/+$/, '')}/api/${encodeURIComponent(loop.organization)}/projects/${encodeURIComponent(loop.project)}/images`
  return (form, signal) => fetch(url, { method: 'POST', body: form, signal, ...(loop.ca ? { tls: { ca: loop.ca } } : {}) })
}

function looksLikeJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff
}

const encoder = new TextEncoder()

export class Outbox {
  readonly store: OutboxStore
  readonly limits: OutboxLimits
  private readonly queues = new OutboxQueues()
  private readonly ids = new OutboxIdentifierClock()
  private readonly upload: UploadFunction
  private readonly log: Logger
  private readonly metrics: OutboxMetrics
  private readonly intervalMs: number
  private readonly batchSize: number
  private readonly uploadTimeoutMs: number
  private readonly stopTimeoutMs: number
  private readonly maxBackoffMs: number
  private readonly maxRetryAfterMs: number
  private readonly maxRejectedItems: number
  private readonly random: () => number
  private readonly minFreeDiskBytes: number
  private readonly readFreeDisk: (folder: string) => Promise<number>
  private readonly disk = { freeBytes: Number.POSITIVE_INFINITY, checkedAt: -Infinity, check: Promise.resolve(), changeSinceCheck: 0, warned: false }

  private running = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private round: Promise<UploadRound> | undefined
  private abortRound: AbortController | undefined
  private consecutiveFailures = 0
  /** bumped by reset(): answers to uploads started before it must not touch the new state */
  private generation = 0
  private readonly busy = new Set<string>()
  private readonly pending = new Map<string, number>()
  private pendingBytes = 0

  /** totals since start, also exported as metrics */
  readonly totals = { saved: 0, uploaded: 0, rejected: 0, dropped: 0, uploadFailures: 0 }

  private constructor(options: OutboxOptions) {
    this.store = new OutboxStore(options.dataFolder)
    this.limits = { ...DEFAULT_OUTBOX_LIMITS, ...options.limits }
    if (!(this.limits.maxItems >= 1) || !(this.limits.maxBytes >= 1)) {
      throw new RangeError(`outbox limits must be at least 1 item and 1 byte, got ${JSON.stringify(this.limits)}`)
    }
    if (options.upload) this.upload = options.upload
    else if (options.loop) this.upload = createFetchUpload(options.loop)
    else throw new Error('the outbox needs an upload function or the Loop address (organization and project)')
    this.log = options.logger ?? createLogger('outbox')
    this.intervalMs = options.intervalMs ?? UPLOAD_INTERVAL_MS
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? UPLOAD_BATCH_SIZE))
    this.uploadTimeoutMs = options.uploadTimeoutMs ?? UPLOAD_TIMEOUT_MS
    this.stopTimeoutMs = options.stopTimeoutMs ?? STOP_TIMEOUT_MS
    this.maxBackoffMs = options.maxBackoffMs ?? MAX_UPLOAD_BACKOFF_MS
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS
    this.maxRejectedItems = options.maxRejectedItems ?? DEFAULT_MAX_REJECTED_ITEMS
    this.random = options.random ?? Math.random
    this.minFreeDiskBytes = options.minFreeDiskBytes ?? DEFAULT_MIN_FREE_DISK_BYTES
    this.readFreeDisk = options.freeDiskBytes ?? (async (folder) => {
      const stats = await statfs(folder)
      return stats.bavail * stats.bsize
    })
    this.metrics = this.registerMetrics(options.metrics ?? new MetricsRegistry())
  }

  /**
   * Opens the outbox on `dataFolder`: creates the folders, removes staging leftovers, quarantines broken
   * items, loads the queues and trims them to the limits, and resumes uploading unless the persisted
   * mode is `stopped`.
   */
  static async open(options: OutboxOptions): Promise<Outbox> {
    const outbox = new Outbox(options)
    await outbox.store.ensureFolders()
    await outbox.load()
    const mode = await outbox.readPersistedMode()
    if (mode === 'continuous_upload') outbox.startLoop()
    return outbox
  }

  // ---------------------------------------------------------------- saving

  /**
   * Queues an image (already JPEG-encoded by the caller) with its metadata. Never throws: a failure is
   * logged, counted and returned. Priority items are uploaded first, oldest first; normal ones newest first.
   */
  async save(jpeg: Uint8Array, metadata: ImageMetadata, priority = false): Promise<SaveResult> {
    const queue: OutboxQueueName = priority ? 'priority' : 'normal'
    if (!looksLikeJpeg(jpeg)) return this.saveFailed(queue, 'not_jpeg', `the image is not JPEG data (${jpeg.length} bytes)`)
    let json: Uint8Array
    try {
      json = encoder.encode(JSON.stringify(metadata))
    } catch (error) {
      return this.saveFailed(queue, 'bad_metadata', `the metadata cannot be serialised: ${errorMessage(error)}`)
    }
    const bytes = json.length + jpeg.length
    const plan = await this.planRoomFor({ queue, bytes })
    if (!plan.accept) {
      this.countDrop(queue, plan.reason)
      this.log.warn('outbox item dropped on arrival', { queue, reason: plan.reason, detail: plan.detail, bytes })
      return { saved: false, reason: plan.reason, detail: plan.detail }
    }
    const deletions = plan.drop.map((item) => this.dropItem(item, plan.reason))

    for (let attempt = 1; ; attempt++) {
      const id = this.ids.next(Date.now())
      this.pending.set(id, bytes)
      this.pendingBytes += bytes
      let written: boolean
      try {
        written = await this.store.writeItem(queue, id, json, jpeg)
      } catch (error) {
        await Promise.all(deletions)
        return this.saveFailed(queue, 'write_failed', `writing outbox item ${id} failed: ${errorMessage(error)}`)
      } finally {
        this.pending.delete(id)
        this.pendingBytes -= bytes
      }
      if (!written) {
        // an item of that id exists already (the clock went back across a restart): take the next id
        if (attempt < SAVE_ATTEMPTS) continue
        await Promise.all(deletions)
        return this.saveFailed(queue, 'id_taken', `outbox item ${id} already exists`)
      }
      await Promise.all(deletions)
      this.disk.changeSinceCheck -= bytes
      this.queues.add({ id, queue, bytes, createdMs: Date.now() })
      this.totals.saved++
      this.metrics.saved.inc({ queue })
      return { saved: true, id, queue }
    }
  }

  private saveFailed(queue: OutboxQueueName, reason: string, detail: string): SaveResult {
    this.metrics.saveFailures.inc({ reason })
    this.log.error('outbox item not saved', { queue, reason, error: detail })
    return { saved: false, reason, detail }
  }

  /** What to drop for an incoming item (or, without one, to trim the queues), under the count, byte and disk limits. */
  private async planRoomFor(incoming?: { queue: OutboxQueueName; bytes: number }) {
    const freeDiskBytes = await this.estimateFreeDisk()
    // planned synchronously after the await, so concurrent saves see each other's reservations
    const usedBytes = this.queues.bytes() + this.pendingBytes
    const byteLimit = effectiveByteLimit({ maxBytes: this.limits.maxBytes, usedBytes, freeDiskBytes, minFreeBytes: this.minFreeDiskBytes })
    return planDrops({
      queues: { priority: this.queues.priority, normal: this.queues.normal, totalBytes: this.queues.bytes() },
      limits: { maxItems: this.limits.maxItems, maxBytes: byteLimit.maxBytes },
      ...(incoming ? { incoming } : {}),
      pending: { items: this.pending.size, bytes: this.pendingBytes },
      busy: this.busy,
      byDisk: byteLimit.byDisk,
    })
  }

  private async estimateFreeDisk(): Promise<number> {
    const now = Date.now()
    if (now - this.disk.checkedAt >= DISK_CHECK_INTERVAL_MS) {
      this.disk.checkedAt = now
      this.disk.check = this.readFreeDisk(this.store.outboxFolder).then((free) => {
        this.disk.freeBytes = free
        this.disk.changeSinceCheck = 0
      }, (error) => {
        this.disk.freeBytes = Number.POSITIVE_INFINITY
        if (!this.disk.warned) this.log.warn('cannot read the free disk space; only the configured limits apply', { error: errorMessage(error) })
        this.disk.warned = true
      })
    }
    await this.disk.check
    return this.disk.freeBytes + this.disk.changeSinceCheck
  }

  private async dropItem(item: QueuedItem, reason: string): Promise<void> {
    if (!this.queues.remove(item.id)) return
    this.disk.changeSinceCheck += item.bytes
    this.countDrop(item.queue, reason)
    this.log.warn('outbox item dropped', { id: item.id, queue: item.queue, reason, bytes: item.bytes })
    try {
      await this.store.deleteItem(item.queue, item.id)
    } catch (error) {
      this.log.error('deleting a dropped outbox item failed', { id: item.id, queue: item.queue, error: errorMessage(error) })
    }
  }

  private countDrop(queue: OutboxQueueName, reason: string): void {
    this.totals.dropped++
    this.metrics.dropped.inc({ queue, reason })
  }

  // ---------------------------------------------------------------- loading

  private async load(): Promise<void> {
    const leftovers = await this.store.cleanStaging(new Set(this.pending.keys()))
    if (leftovers.length > 0) this.log.warn('removed unfinished outbox items left by a crash', { count: leftovers.length })
    const scan = await this.store.scan()
    for (const broken of scan.incomplete) {
      await this.quarantine({ id: broken.id, queue: broken.queue, bytes: 0, createdMs: 0 }, 'incomplete', broken.problem)
    }
    if (scan.ignored.length > 0) this.log.warn('ignored entries in the outbox queues that are not item folders', { entries: scan.ignored.slice(0, 10) })
    for (const found of scan.items) {
      this.queues.add({ id: found.id, queue: found.queue, bytes: found.bytes, createdMs: identifierTimeMs(found.id) ?? found.mtimeMs })
    }
    const trim = await this.planRoomFor()
    if (trim.accept) await Promise.all(trim.drop.map((item) => this.dropItem(item, trim.reason)))
    if (this.queues.count() > 0) {
      this.log.info('outbox resumed', { priority: this.queues.count('priority'), normal: this.queues.count('normal'), bytes: this.queues.bytes() })
    }
  }

  private async readPersistedMode(): Promise<OutboxMode> {
    try {
      return (await this.store.readMode()) ?? 'continuous_upload'
    } catch (error) {
      this.log.warn('the persisted outbox mode is unreadable; starting in continuous_upload', { file: this.store.modeFile, error: errorMessage(error) })
      return 'continuous_upload'
    }
  }

  // ---------------------------------------------------------------- modes

  /** `continuous_upload` while the upload loop runs, else `stopped` (as upstream's `get_mode`). */
  getMode(): OutboxMode {
    return this.running ? 'continuous_upload' : 'stopped'
  }

  /**
   * Switches the mode and persists it. `stopped` waits (up to `stopTimeoutMs`) for an upload in flight and
   * returns whether it finished in time — if not, it is aborted and false returned. An unknown mode throws.
   */
  async setMode(mode: string): Promise<boolean> {
    if (!isOneOf(OUTBOX_MODES, mode)) throw new RangeError(`outbox mode must be one of ${OUTBOX_MODES.join(', ')}, got ${quoteInput(mode)}`)
    // no new round may start while the mode is being persisted
    if (mode === 'stopped') this.haltLoop()
    try {
      await this.store.writeMode(mode)
    } catch (error) {
      // the mode still applies until the process ends
      this.metrics.modePersistFailures.inc()
      this.log.error('persisting the outbox mode failed; it will not survive a restart', { mode, error: errorMessage(error) })
    }
    if (mode === 'continuous_upload') {
      this.startLoop()
      return true
    }
    return this.stopLoop()
  }

  /** Stops uploading for shutdown (the persisted mode is kept); waits like `setMode('stopped')`, or `timeoutMs`. */
  stop(timeoutMs = this.stopTimeoutMs): Promise<boolean> {
    return this.stopLoop(timeoutMs)
  }

  private startLoop(): void {
    if (this.running) return
    this.running = true
    this.consecutiveFailures = 0
    this.schedule(0)
  }

  private haltLoop(): void {
    this.running = false
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }

  private async stopLoop(timeoutMs = this.stopTimeoutMs): Promise<boolean> {
    this.haltLoop()
    const inFlight = this.round
    if (!inFlight) return true
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, timeoutMs))))
    const outcome = await Promise.race([inFlight.then(() => 'done' as const), timedOut])
    clearTimeout(timer)
    if (outcome === 'done') return true
    this.abortRound?.abort(new Error('the outbox is stopping'))
    this.log.error('the upload in flight did not finish in time; aborted it (its images stay queued)', { waited_ms: timeoutMs })
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
      : { kind: 'progress', remaining: this.queues.count() }
    this.schedule(nextUploadDelayMs(end, { intervalMs: this.intervalMs, maxBackoffMs: this.maxBackoffMs, maxRetryAfterMs: this.maxRetryAfterMs }, this.random))
  }

  // ---------------------------------------------------------------- uploading

  /**
   * Uploads one batch now (the loop calls this; tests and tools may too). Never two at once: a call while
   * a round runs gets that round's result. Never throws.
   */
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
    const result: UploadRound = { uploaded: 0, quarantined: 0, requests: 0 }
    const generation = this.generation
    const batch = selectBatch(this.queues, this.batchSize)
    if (batch.length === 0) return result
    this.abortRound = new AbortController()
    for (const item of batch) this.busy.add(item.id)
    try {
      const ready = await this.readBatch(batch, result)
      if (ready.length > 0 && generation === this.generation) await this.sendBatch(ready, result, generation)
    } catch (error) {
      // readBatch/sendBatch handle expected failures themselves; this is a bug or an unexpected I/O error
      result.failure = 'internal'
      this.metrics.uploadFailures.inc({ reason: 'internal' })
      this.log.error('outbox upload round failed', { error: errorMessage(error) })
    } finally {
      for (const item of batch) this.busy.delete(item.id)
    }
    if (result.failure) {
      this.consecutiveFailures++
      this.totals.uploadFailures++
    } else {
      this.consecutiveFailures = 0
    }
    return result
  }

  /** Reads the batch's files; items whose folder vanished are forgotten, broken ones quarantined. */
  private async readBatch(batch: QueuedItem[], result: UploadRound): Promise<ReadyItem[]> {
    const reads = await Promise.all(batch.map(async (item) => ({ item, read: await this.store.readItem(item.queue, item.id) })))
    const ready: ReadyItem[] = []
    for (const { item, read } of reads) {
      if (!this.queues.has(item.id)) continue // dropped or reset meanwhile
      if (!read.ok && read.missing === 'folder') {
        this.queues.remove(item.id)
        this.log.warn('outbox item folder vanished; forgetting it', { id: item.id, queue: item.queue })
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
    const answer = await this.post(ready, result)
    if (generation !== this.generation) return
    if (answer.kind === 'delivered') {
      for (const { item } of ready) {
        this.queues.remove(item.id)
        this.disk.changeSinceCheck += item.bytes
      }
      result.uploaded += ready.length
      this.totals.uploaded += ready.length
      this.metrics.uploaded.inc({}, ready.length)
      await Promise.all(ready.map(({ item }) => this.store.deleteItem(item.queue, item.id).catch((error) => {
        this.log.error('deleting an uploaded outbox item failed; it may be sent again after a restart', { id: item.id, error: errorMessage(error) })
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
      if (result.failure || generation !== this.generation) return
    }
  }

  private async post(ready: ReadyItem[], result: UploadRound): Promise<UploadAnswer & { detail?: string }> {
    const form = new FormData()
    for (const { item, json, jpeg } of ready) {
      form.append('files', new Blob([json as BlobPart], { type: 'application/json' }), jsonFileName(item.id))
      form.append('files', new Blob([jpeg as BlobPart], { type: 'image/jpeg' }), jpegFileName(item.id))
    }
    const timeout = AbortSignal.timeout(this.uploadTimeoutMs)
    const stopping = this.abortRound?.signal
    const signal = stopping ? AbortSignal.any([timeout, stopping]) : timeout
    const started = performance.now()
    result.requests++
    let answer: UploadAnswer & { detail?: string }
    let status: number | undefined
    try {
      const response = await this.upload(form, signal)
      status = response.status
      const body = await response.text().catch(() => '')
      answer = classifyUploadStatus(response.status, response.headers.get('retry-after'), Date.now())
      if (answer.kind !== 'delivered') answer = { ...answer, detail: `HTTP ${response.status}${body ? `: ${body.slice(0, MAX_LOGGED_BODY)}` : ''}` }
    } catch (error) {
      answer = { ...classifyUploadError(error, timeout.aborted, stopping?.aborted ?? false), detail: errorMessage(error) }
    }
    this.metrics.uploadDuration.observe((performance.now() - started) / 1000, { outcome: answer.kind })
    if (answer.kind === 'retry') {
      this.metrics.uploadFailures.inc({ reason: answer.reason })
      const fields = { items: ready.length, reason: answer.reason, status, retry_after_ms: answer.retryAfterMs, error: answer.detail }
      if (answer.reason === 'rate_limited') this.log.warn('outbox upload rate limited; items stay queued', fields)
      else this.log.error('outbox upload failed; items stay queued', fields)
    } else if (answer.kind === 'rejected' && ready.length > 1) {
      this.log.warn('the Loop rejected an outbox batch; bisecting to find the bad items', { items: ready.length, error: answer.detail })
    }
    return answer
  }

  private async quarantine(item: QueuedItem, reason: string, detail: string): Promise<void> {
    this.queues.remove(item.id)
    this.totals.rejected++
    this.metrics.rejected.inc({ reason })
    const rejection: OutboxRejection = { reason, detail, queue: item.queue, rejected_at: new Date().toISOString() }
    try {
      const destination = await this.store.quarantineItem(item.queue, item.id, rejection)
      this.log.error('outbox item quarantined', { id: item.id, queue: item.queue, reason, detail, kept_at: destination })
      const trimmed = await this.store.trimRejected(this.maxRejectedItems)
      if (trimmed > 0) this.log.warn('deleted the oldest rejected outbox items', { count: trimmed, keep: this.maxRejectedItems })
    } catch (error) {
      // it stays on disk in its queue and is tried again after a restart; in this run it no longer blocks
      this.log.error('quarantining an outbox item failed; skipping it until restart', { id: item.id, queue: item.queue, reason, detail, error: errorMessage(error) })
    }
  }

  // ---------------------------------------------------------------- reset and inspection

  /**
   * After the data folder was wiped (`POST /reset`): recreate the folders, forget the in-memory queues and
   * reload whatever is still on disk, write the mode again. Uploads in flight are disregarded.
   */
  async reset(): Promise<void> {
    this.generation++
    this.queues.clear()
    await this.store.ensureFolders()
    await this.load()
    try {
      await this.store.writeMode(this.getMode())
    } catch (error) {
      this.metrics.modePersistFailures.inc()
      this.log.error('persisting the outbox mode after reset failed', { error: errorMessage(error) })
    }
  }

  /** Queued item ids in upload order: priority oldest first, then normal newest first. */
  queuedIds(): string[] {
    return selectBatch(this.queues, Number.MAX_SAFE_INTEGER).map((i) => i.id)
  }

  count(queue?: OutboxQueueName): number {
    return this.queues.count(queue)
  }

  bytes(queue?: OutboxQueueName): number {
    return this.queues.bytes(queue)
  }

  /** The folder of a queued item, or undefined when it is not queued. */
  itemFolder(id: string): string | undefined {
    const item = this.queues.get(id)
    return item && this.store.itemFolder(item.queue, item.id)
  }

  private registerMetrics(registry: MetricsRegistry): OutboxMetrics {
    const items = registry.gauge('outbox_items', 'Items waiting in the outbox, by queue')
    items.collect(() => {
      for (const queue of ['priority', 'normal'] as const) items.set(this.queues.count(queue), { queue })
    })
    const bytes = registry.gauge('outbox_bytes', 'Bytes (json + jpg) waiting in the outbox, by queue')
    bytes.collect(() => {
      for (const queue of ['priority', 'normal'] as const) bytes.set(this.queues.bytes(queue), { queue })
    })
    const oldestAge = registry.gauge('outbox_oldest_item_age_seconds', 'Age of the oldest waiting item, by queue (0 when empty)')
    oldestAge.collect(() => {
      const now = Date.now()
      for (const queue of ['priority', 'normal'] as const) {
        const oldest = this.queues.oldest(queue)
        oldestAge.set(oldest ? Math.max(0, (now - oldest.createdMs) / 1000) : 0, { queue })
      }
    })
    return {
      saved: registry.counter('outbox_saved_total', 'Items saved to the outbox, by queue'),
      saveFailures: registry.counter('outbox_save_failures_total', 'Items that could not be saved, by reason'),
      uploaded: registry.counter('outbox_uploaded_total', 'Items the Loop accepted'),
      rejected: registry.counter('outbox_rejected_total', 'Items quarantined in outbox/rejected, by reason'),
      dropped: registry.counter('outbox_dropped_total', 'Items dropped to respect the outbox limits, by queue and reason'),
      uploadFailures: registry.counter('outbox_upload_failures_total', 'Upload requests that left the items queued, by reason'),
      modePersistFailures: registry.counter('outbox_mode_persist_failures_total', 'Failures to persist the outbox mode'),
      uploadDuration: registry.histogram('outbox_upload_duration_seconds', 'Duration of one batch upload request, by outcome'),
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
