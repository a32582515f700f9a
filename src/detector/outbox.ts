import { isOneOf, OUTBOX_MODES, type ImageMetadata, type OutboxMode } from '../contract/index.ts'
import { statfs } from 'node:fs/promises'
import { createLogger, errorMessage, quoteInput, type Logger } from '../foundation/log.ts'
import { MetricsRegistry } from '../foundation/metrics.ts'
import { ConcurrencyLimit } from '../foundation/concurrency-limit.ts'
import { DropLog } from './outbox-drop-log.ts'
import { registerOutboxMetrics, type OutboxMetrics } from './outbox-metrics.ts'
import {
  DEFAULT_MIN_FREE_DISK_BYTES, DEFAULT_OUTBOX_LIMITS, DEFAULT_WRITE_BACKLOG, DEFAULT_WRITE_CONCURRENCY, effectiveByteLimit, identifierTimeMs,
  OutboxIdentifierClock, OutboxQueues, planDrops, selectBatch, writeBacklogRoom,
  type OutboxLimits, type OutboxQueueName, type QueuedItem, type WriteBacklogLimits,
} from './outbox-policy.ts'
import { OutboxStore } from './outbox-store.ts'
import { OutboxUploader, type OutboxTotals, type OutboxUploaderOptions, type UploadRound } from './outbox-uploader.ts'
import { createFetchUpload, type ImageUploadTarget, type UploadFunction } from '../loop/image-upload.ts'

/**
 * The detector's crash-safe outbox (§7.8): images with their metadata wait on disk until they are uploaded
 * to the Loop. Fixes over upstream (§15.9, field-notes §3.2): bounded by bytes and count with an explicit,
 * counted drop policy; saves go through a bounded write queue, so a flood of images costs neither unbounded
 * memory nor file descriptors — what does not fit is dropped and counted before any file is opened; a broken
 * item is quarantined instead of blocking the queue; items the Loop rejects are kept in `rejected/`; 429
 * honours Retry-After; failures back off with jitter; the mode persists; `reset()` survives a wiped data
 * folder; the upload can carry the node's login cookie and CA bundle.
 */

export interface OutboxOptions extends Omit<OutboxUploaderOptions, 'upload'> {
  /** the node's data folder; the outbox lives in `<data>/outbox`, staging in `<data>/tmp` */
  dataFolder: string
  /** how a batch reaches the Loop; default: createFetchUpload(`loop`) */
  upload?: UploadFunction
  /** for the default upload: `<baseUrl>/api/<organization>/projects/<project>/images`, with its CA bundle and cookie */
  loop?: ImageUploadTarget
  metrics?: MetricsRegistry
  limits?: Partial<OutboxLimits>
  /** free disk space to leave alone (default 256 MiB): old items are dropped rather than fill the disk below it */
  minFreeDiskBytes?: number
  /** free bytes on the disk holding `folder`; default statfs. Tests inject a fake disk. */
  freeDiskBytes?: (folder: string) => Promise<number>
  /** items written to disk at once (default 8) */
  writeConcurrency?: number
  /** accepted items held in memory until written (default 64 items, 64 MiB); beyond it images are dropped as `write_backlog` */
  writeBacklog?: Partial<WriteBacklogLimits>
  logger?: Logger
}

export type SaveResult =
  | { saved: true; id: string; queue: OutboxQueueName }
  | { saved: false; reason: string; detail: string }

/** statfs at most this often; in between, the estimate follows what the outbox writes and deletes */
const DISK_CHECK_INTERVAL_MS = 1_000
const SAVE_ATTEMPTS = 3

function looksLikeJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff
}

const encoder = new TextEncoder()

export class Outbox {
  readonly store: OutboxStore
  readonly limits: OutboxLimits
  readonly writeBacklog: WriteBacklogLimits
  private readonly queues = new OutboxQueues()
  private readonly ids = new OutboxIdentifierClock()
  private readonly uploader: OutboxUploader
  private readonly writes: ConcurrencyLimit
  private readonly log: Logger
  private readonly drops: DropLog
  private readonly metrics: OutboxMetrics
  private readonly minFreeDiskBytes: number
  private readonly readFreeDisk: (folder: string) => Promise<number>
  private readonly disk = { freeBytes: Number.POSITIVE_INFINITY, checkedAt: -Infinity, check: Promise.resolve(), changeSinceCheck: 0, warned: false }
  /** bumped by reset(): answers to uploads started before it must not touch the new state */
  private generation = 0
  private readonly busy = new Set<string>()
  /** accepted items not yet in the queues (waiting to be written, or being written): id → bytes */
  private readonly pending = new Map<string, number>()
  private pendingBytes = 0

  /** totals since start, also exported as metrics */
  readonly totals: OutboxTotals = { saved: 0, uploaded: 0, rejected: 0, dropped: 0, uploadFailures: 0 }

  private constructor(options: OutboxOptions) {
    this.store = new OutboxStore(options.dataFolder)
    this.limits = { ...DEFAULT_OUTBOX_LIMITS, ...options.limits }
    if (!(this.limits.maxItems >= 1) || !(this.limits.maxBytes >= 1)) {
      throw new RangeError(`outbox limits must be at least 1 item and 1 byte, got ${JSON.stringify(this.limits)}`)
    }
    this.writeBacklog = { ...DEFAULT_WRITE_BACKLOG, ...options.writeBacklog }
    if (!(this.writeBacklog.maxItems >= 1) || !(this.writeBacklog.maxBytes >= 1)) {
      throw new RangeError(`the outbox write backlog must allow at least 1 item and 1 byte, got ${JSON.stringify(this.writeBacklog)}`)
    }
    this.writes = new ConcurrencyLimit(options.writeConcurrency ?? DEFAULT_WRITE_CONCURRENCY)
    let upload: UploadFunction
    if (options.upload) upload = options.upload
    else if (options.loop) upload = createFetchUpload(options.loop)
    else throw new Error('the outbox needs an upload function or the Loop address (organization and project)')
    this.log = options.logger ?? createLogger('outbox')
    this.drops = new DropLog(this.log)
    this.minFreeDiskBytes = options.minFreeDiskBytes ?? DEFAULT_MIN_FREE_DISK_BYTES
    this.readFreeDisk = options.freeDiskBytes ?? (async (folder) => {
      const stats = await statfs(folder)
      return stats.bavail * stats.bsize
    })
    this.metrics = registerOutboxMetrics(options.metrics ?? new MetricsRegistry(), { queues: this.queues, writes: () => this.writeState() })
    this.uploader = new OutboxUploader({
      store: this.store, queues: this.queues, busy: this.busy, log: this.log, metrics: this.metrics, totals: this.totals,
      freed: (bytes) => (this.disk.changeSinceCheck += bytes),
      generation: () => this.generation,
    }, { ...options, upload })
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
    if (mode === 'continuous_upload') outbox.uploader.start()
    return outbox
  }

  // ---------------------------------------------------------------- saving

  /**
   * Queues an image (already JPEG-encoded by the caller) with its metadata. Never throws: a failure or a
   * drop is logged, counted and returned. Whether the item is taken is decided before any file is opened;
   * it then waits in the bounded write queue. Priority items are uploaded first, oldest first; normal ones
   * newest first.
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
    const freeDiskBytes = await this.estimateFreeDisk()
    // from here to the reservation nothing awaits, so concurrent saves see each other's reservations
    const room = writeBacklogRoom({ items: this.pending.size, bytes: this.pendingBytes }, this.writeBacklog, bytes)
    if (!room.ok) return this.refuse(queue, 'write_backlog', room.detail, bytes)
    const plan = this.planRoomFor(freeDiskBytes, { queue, bytes })
    if (!plan.accept) return this.refuse(queue, plan.reason, plan.detail, bytes)
    const displaced = plan.drop.filter((item) => this.forget(item, plan.reason))
    const id = this.ids.next(Date.now())
    this.reserve(id, bytes)
    return this.writes.run(() => this.write(queue, id, json, jpeg, displaced))
  }

  /** Counts and logs an image the outbox did not take. Also for callers that drop an image before it gets here. */
  refuse(queue: OutboxQueueName, reason: string, detail: string, bytes = 0): SaveResult & { saved: false } {
    this.countDrop(queue, reason)
    this.drops.dropped('outbox item dropped on arrival', { queue, reason, detail, bytes })
    return { saved: false, reason, detail }
  }

  /** Whether an item of `bytes` would find room in the write backlog now (a hint: `save` decides). */
  hasWriteRoom(bytes = 0): boolean {
    return writeBacklogRoom({ items: this.pending.size, bytes: this.pendingBytes }, this.writeBacklog, bytes).ok
  }

  /** The write queue now: items being written, and accepted items held in memory (those being written included). */
  writeState(): { inFlight: number; peakInFlight: number; backlogItems: number; backlogBytes: number } {
    return { inFlight: this.writes.running, peakInFlight: this.writes.peak, backlogItems: this.pending.size, backlogBytes: this.pendingBytes }
  }

  /** One write-queue slot: deletes the items this one displaces, then writes it (a new id if its id is taken). */
  private async write(queue: OutboxQueueName, firstId: string, json: Uint8Array, jpeg: Uint8Array, displaced: QueuedItem[]): Promise<SaveResult> {
    for (const item of displaced) await this.deleteFolder(item)
    let id = firstId
    const bytes = json.length + jpeg.length
    for (let attempt = 1; ; attempt++) {
      let written: boolean
      try {
        written = await this.store.writeItem(queue, id, json, jpeg)
      } catch (error) {
        this.release(id)
        return this.saveFailed(queue, 'write_failed', `writing outbox item ${id} failed: ${errorMessage(error)}`)
      }
      if (written) break
      // an item of that id exists already (the clock went back across a restart): take the next id
      this.release(id)
      if (attempt >= SAVE_ATTEMPTS) return this.saveFailed(queue, 'id_taken', `outbox item ${id} already exists`)
      id = this.ids.next(Date.now())
      this.reserve(id, bytes)
    }
    // in the queues in the same step as it leaves the reservations, so the count never misses it
    this.release(id)
    this.disk.changeSinceCheck -= bytes
    this.queues.add({ id, queue, bytes, createdMs: Date.now() })
    this.totals.saved++
    this.metrics.saved.inc({ queue })
    return { saved: true, id, queue }
  }

  private reserve(id: string, bytes: number): void {
    this.pending.set(id, bytes)
    this.pendingBytes += bytes
  }

  private release(id: string): void {
    this.pendingBytes -= this.pending.get(id) ?? 0
    this.pending.delete(id)
  }

  private saveFailed(queue: OutboxQueueName, reason: string, detail: string): SaveResult {
    this.metrics.saveFailures.inc({ reason })
    this.log.error('outbox item not saved', { queue, reason, error: detail })
    return { saved: false, reason, detail }
  }

  /** What to drop for an incoming item (or, without one, to trim the queues), under the count, byte and disk limits. */
  private planRoomFor(freeDiskBytes: number, incoming?: { queue: OutboxQueueName; bytes: number }) {
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

  /** Takes a dropped item out of the queues and counts it; its folder is deleted later. False if it was gone already. */
  private forget(item: QueuedItem, reason: string): boolean {
    if (!this.queues.remove(item.id)) return false
    this.disk.changeSinceCheck += item.bytes
    this.countDrop(item.queue, reason)
    this.drops.dropped('outbox item dropped', { id: item.id, queue: item.queue, reason, bytes: item.bytes })
    return true
  }

  private async deleteFolder(item: QueuedItem): Promise<void> {
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
      await this.uploader.quarantine({ id: broken.id, queue: broken.queue, bytes: 0, createdMs: 0 }, 'incomplete', broken.problem)
    }
    if (scan.ignored.length > 0) this.log.warn('ignored entries in the outbox queues that are not item folders', { entries: scan.ignored.slice(0, 10) })
    for (const found of scan.items) {
      this.queues.add({ id: found.id, queue: found.queue, bytes: found.bytes, createdMs: identifierTimeMs(found.id) ?? found.mtimeMs })
    }
    const trim = this.planRoomFor(await this.estimateFreeDisk())
    if (trim.accept) {
      const dropped = trim.drop.filter((item) => this.forget(item, trim.reason))
      // through the write queue's slots: a restart with a much smaller cap deletes thousands of folders
      await Promise.all(dropped.map((item) => this.writes.run(() => this.deleteFolder(item))))
    }
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

  // ---------------------------------------------------------------- modes and uploading

  /** `continuous_upload` while the upload loop runs, else `stopped` (as upstream's `get_mode`). */
  getMode(): OutboxMode {
    return this.uploader.isRunning ? 'continuous_upload' : 'stopped'
  }

  /**
   * Switches the mode and persists it. `stopped` waits (up to `stopTimeoutMs`) for an upload in flight and
   * returns whether it finished in time — if not, it is aborted and false returned. An unknown mode throws.
   */
  async setMode(mode: string): Promise<boolean> {
    if (!isOneOf(OUTBOX_MODES, mode)) throw new RangeError(`outbox mode must be one of ${OUTBOX_MODES.join(', ')}, got ${quoteInput(mode)}`)
    // no new round may start while the mode is being persisted
    if (mode === 'stopped') this.uploader.halt()
    try {
      await this.store.writeMode(mode)
    } catch (error) {
      // the mode still applies until the process ends
      this.metrics.modePersistFailures.inc()
      this.log.error('persisting the outbox mode failed; it will not survive a restart', { mode, error: errorMessage(error) })
    }
    if (mode === 'continuous_upload') {
      this.uploader.start()
      return true
    }
    return this.uploader.stop()
  }

  /** Stops uploading for shutdown (the persisted mode is kept); waits like `setMode('stopped')`, or `timeoutMs`. */
  stop(timeoutMs = this.uploader.stopTimeoutMs): Promise<boolean> {
    this.drops.flush()
    return this.uploader.stop(timeoutMs)
  }

  /**
   * Uploads one batch now (the loop calls this; tests and tools may too). Never two at once: a call while
   * a round runs gets that round's result. Never throws.
   */
  uploadOnce(): Promise<UploadRound> {
    return this.uploader.uploadOnce()
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
}
