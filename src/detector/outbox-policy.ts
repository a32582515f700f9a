import { formatOutboxIdentifier } from '../contract/index.ts'
import { backoffDelayMs, type BackoffPolicy } from '../foundation/backoff.ts'
import { parseRetryAfter } from '../loop/retry-policy.ts'

/**
 * The outbox's decisions (§7.8 plus the fixes of §15.9), pure so they are testable without disks,
 * servers or clocks: which items go next, which are dropped under the caps, how a rejected batch is
 * split, what an upload answer means, and how long to wait before the next upload.
 */

export type OutboxQueueName = 'priority' | 'normal'

export interface QueuedItem {
  /** the outbox identifier, `YYYY-MM-DD_HH:MM:SS.ffffff` local time for items made here */
  id: string
  queue: OutboxQueueName
  /** json + jpg */
  bytes: number
  /** when it was saved (epoch ms), for the oldest-item-age metric */
  createdMs: number
}

export interface OutboxLimits {
  /** items in both queues together */
  maxItems: number
  /** bytes (json + jpg) in both queues together */
  maxBytes: number
}

/** Sized for an edge device; upstream kept 1 000 normal items and no byte limit. */
export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { maxItems: 10_000, maxBytes: 2 * 1024 ** 3 }
/** Free disk space the outbox leaves alone: it drops old items rather than fill the disk below this. */
export const DEFAULT_MIN_FREE_DISK_BYTES = 256 * 1024 ** 2
/**
 * Items written to disk at once. Each write holds a few descriptors (two files and a folder) and a thread of
 * the I/O pool for its fsyncs; more at once does not make a disk faster, it only runs out of descriptors.
 */
export const DEFAULT_WRITE_CONCURRENCY = 8

/** Accepted items held in memory until they are written (those being written included). */
export interface WriteBacklogLimits {
  maxItems: number
  maxBytes: number
}

/** A burst of a few seconds at the disk's pace; beyond it new images are dropped as `write_backlog`. */
export const DEFAULT_WRITE_BACKLOG: WriteBacklogLimits = { maxItems: 64, maxBytes: 64 * 1024 ** 2 }
/** Upstream `BATCH_SIZE`. */
export const UPLOAD_BATCH_SIZE = 20
/** Upstream `UPLOAD_INTERVAL_S`. */
export const UPLOAD_INTERVAL_MS = 5_000
/** Upstream `UPLOAD_TIMEOUT_S`. */
export const UPLOAD_TIMEOUT_MS = 30_000
/** Upstream waits this long for the upload task when switching to `stopped`: one interval plus one upload. */
export const STOP_TIMEOUT_MS = 31_000
/** After failures the wait grows from the interval up to this. */
export const MAX_UPLOAD_BACKOFF_MS = 5 * 60_000
/** The longest Retry-After honoured; a server asking for more is retried after this. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000
/** A 429 never brings the next attempt sooner than this, even with `Retry-After: 0`. */
export const MIN_RATE_LIMIT_DELAY_MS = 1_000

const IDENTIFIER_PATTERN = /^(\d{4})-(\d{2})-(\d{2})_(\d{2}):(\d{2}):(\d{2})\.(\d{6})$/

/** True for names the outbox itself makes (used to recognise its own staging folders). */
export function isOutboxIdentifier(name: string): boolean {
  return IDENTIFIER_PATTERN.test(name)
}

/** The local time an identifier names, as epoch ms; undefined when it is not an identifier. */
export function identifierTimeMs(id: string): number | undefined {
  const m = IDENTIFIER_PATTERN.exec(id)
  if (!m) return undefined
  const [year, month, day, hour, minute, second, micros] = m.slice(1).map(Number) as number[]
  const ms = new Date(year!, month! - 1, day!, hour!, minute!, second!, Math.floor(micros! / 1000)).getTime()
  return Number.isFinite(ms) ? ms : undefined
}

/**
 * Makes identifiers that are unique within this process even when many items arrive in one millisecond:
 * each one is at least a microsecond after the previous one. Identifiers sort like the save order.
 */
export class OutboxIdentifierClock {
  private lastMicros = 0

  next(nowMs: number): string {
    const micros = Math.max(Math.floor(nowMs) * 1000, this.lastMicros + 1)
    this.lastMicros = micros
    return formatOutboxIdentifier(new Date(Math.floor(micros / 1000)), micros % 1000)
  }
}

function insertSorted(list: QueuedItem[], item: QueuedItem): void {
  let low = 0
  let high = list.length
  // items almost always arrive in order; check the end first
  if (high === 0 || list[high - 1]!.id <= item.id) {
    list.push(item)
    return
  }
  while (low < high) {
    const mid = (low + high) >>> 1
    if (list[mid]!.id <= item.id) low = mid + 1
    else high = mid
  }
  list.splice(low, 0, item)
}

/** Both queues in memory, each sorted oldest first by identifier, with running totals. */
export class OutboxQueues {
  readonly priority: QueuedItem[] = []
  readonly normal: QueuedItem[] = []
  private readonly byId = new Map<string, QueuedItem>()
  private readonly bytesOf = { priority: 0, normal: 0 }

  add(item: QueuedItem): boolean {
    if (this.byId.has(item.id)) return false
    insertSorted(this[item.queue], item)
    this.byId.set(item.id, item)
    this.bytesOf[item.queue] += item.bytes
    return true
  }

  get(id: string): QueuedItem | undefined {
    return this.byId.get(id)
  }

  has(id: string): boolean {
    return this.byId.has(id)
  }

  remove(id: string): QueuedItem | undefined {
    const item = this.byId.get(id)
    if (!item) return undefined
    const list = this[item.queue]
    // removals are mostly at either end: the oldest (drops) or the newest/oldest (uploads)
    const index = list[0] === item ? 0 : list[list.length - 1] === item ? list.length - 1 : list.indexOf(item)
    list.splice(index, 1)
    this.byId.delete(id)
    this.bytesOf[item.queue] -= item.bytes
    return item
  }

  clear(): void {
    this.priority.length = 0
    this.normal.length = 0
    this.byId.clear()
    this.bytesOf.priority = 0
    this.bytesOf.normal = 0
  }

  count(queue?: OutboxQueueName): number {
    return queue ? this[queue].length : this.byId.size
  }

  bytes(queue?: OutboxQueueName): number {
    return queue ? this.bytesOf[queue] : this.bytesOf.priority + this.bytesOf.normal
  }

  oldest(queue: OutboxQueueName): QueuedItem | undefined {
    return this[queue][0]
  }
}

/** The next upload batch: the priority queue oldest first, then the normal queue newest first (§7.8). */
export function selectBatch(queues: { priority: readonly QueuedItem[]; normal: readonly QueuedItem[] }, batchSize = UPLOAD_BATCH_SIZE): QueuedItem[] {
  const batch = queues.priority.slice(0, batchSize)
  for (let i = queues.normal.length - 1; i >= 0 && batch.length < batchSize; i--) batch.push(queues.normal[i]!)
  return batch
}

export type DropReason = 'limit' | 'disk_low'

export type DropPlan =
  | { accept: true; drop: QueuedItem[]; reason: DropReason }
  | { accept: false; reason: 'too_large' | 'queue_full' | 'disk_full'; detail: string }

/**
 * Whether one more item of `bytes` may wait in memory to be written, or why not. The check comes before
 * anything else about the item, so an image the disk cannot keep up with costs neither memory nor a file.
 * An item bigger than `maxBytes` is accepted when nothing else waits, so that every size that fits the
 * outbox can be saved.
 */
export function writeBacklogRoom(backlog: { items: number; bytes: number }, limits: WriteBacklogLimits, bytes: number): { ok: true } | { ok: false; detail: string } {
  if (backlog.items >= limits.maxItems) {
    return { ok: false, detail: `${backlog.items} items are waiting to be written, the most the outbox holds in memory; the disk does not keep up` }
  }
  if (backlog.items > 0 && backlog.bytes + bytes > limits.maxBytes) {
    return { ok: false, detail: `${backlog.bytes} bytes are waiting to be written; with ${bytes} more they would exceed the ${limits.maxBytes} bytes the outbox holds in memory` }
  }
  return { ok: true }
}

export interface QueueSnapshot {
  priority: readonly QueuedItem[]
  normal: readonly QueuedItem[]
  /** bytes of both queues, when the caller keeps a running total (saves summing them again) */
  totalBytes?: number
}

/**
 * The byte limit in effect: the configured one, or less when the disk would otherwise fall below
 * `minFreeBytes` — the outbox may grow only into the free space above that reserve.
 */
export function effectiveByteLimit(input: { maxBytes: number; usedBytes: number; freeDiskBytes: number; minFreeBytes: number }): { maxBytes: number; byDisk: boolean } {
  const byDisk = input.usedBytes + Math.max(0, input.freeDiskBytes - input.minFreeBytes)
  return byDisk < input.maxBytes ? { maxBytes: byDisk, byDisk: true } : { maxBytes: input.maxBytes, byDisk: false }
}

function* dropCandidates(queues: QueueSnapshot, includePriority: boolean, busy: ReadonlySet<string>): Generator<QueuedItem> {
  for (const item of queues.normal) if (!busy.has(item.id)) yield item
  if (includePriority) for (const item of queues.priority) if (!busy.has(item.id)) yield item
}

/**
 * What to drop so that the queues plus an incoming item fit the limits.
 * Policy: the oldest NORMAL items go first. Priority items are only dropped to make room for another
 * priority item, oldest first, and only when no normal item is left; a normal item is never allowed to
 * push out a priority item — then the incoming normal item itself is refused. An item bigger than the
 * byte limit is refused. Items being uploaded (`busy`) are never dropped. Without `incoming`, the plan
 * trims the queues to the limits (after a restart with smaller limits).
 * `pending` counts items being written, which are not in the queues yet but will be. `byDisk` says the
 * byte limit comes from the free disk space (see effectiveByteLimit), which only changes the reasons.
 */
export function planDrops(input: {
  queues: QueueSnapshot
  limits: OutboxLimits
  incoming?: { queue: OutboxQueueName; bytes: number }
  pending?: { items: number; bytes: number }
  busy?: ReadonlySet<string>
  byDisk?: boolean
}): DropPlan {
  const { queues, limits, incoming } = input
  const reason: DropReason = input.byDisk ? 'disk_low' : 'limit'
  if (incoming && incoming.bytes > limits.maxBytes) {
    return input.byDisk
      ? { accept: false, reason: 'disk_full', detail: `the item has ${incoming.bytes} bytes; the disk reserve leaves room for ${limits.maxBytes}` }
      : { accept: false, reason: 'too_large', detail: `the item has ${incoming.bytes} bytes, more than the outbox limit of ${limits.maxBytes}` }
  }
  let items = queues.priority.length + queues.normal.length + (input.pending?.items ?? 0) + (incoming ? 1 : 0)
  let bytes = (queues.totalBytes ?? sum(queues.priority) + sum(queues.normal)) + (input.pending?.bytes ?? 0) + (incoming?.bytes ?? 0)
  const fits = () => items <= limits.maxItems && bytes <= limits.maxBytes
  if (fits()) return { accept: true, drop: [], reason }

  const drop: QueuedItem[] = []
  for (const candidate of dropCandidates(queues, !incoming || incoming.queue === 'priority', input.busy ?? new Set())) {
    drop.push(candidate)
    items--
    bytes -= candidate.bytes
    if (fits()) return { accept: true, drop, reason }
  }
  if (!incoming) return { accept: true, drop, reason } // trimming: everything droppable is dropped
  const overBytes = bytes > limits.maxBytes
  return {
    accept: false,
    reason: input.byDisk && overBytes ? 'disk_full' : 'queue_full',
    detail: fullQueueDetail(queues, input.pending?.items ?? 0, input.busy ?? new Set(), incoming.queue,
      overBytes ? `${limits.maxBytes} bytes${input.byDisk ? ' (what the free disk space allows)' : ''}` : `${limits.maxItems} items`),
  }
}

/** What fills an outbox that refuses an item: the items the incoming one may not push out, counted by kind. */
function fullQueueDetail(queues: QueueSnapshot, pendingItems: number, busy: ReadonlySet<string>, incoming: OutboxQueueName, limit: string): string {
  const uploading = (items: readonly QueuedItem[]) => items.filter((item) => busy.has(item.id)).length
  const held = incoming === 'normal'
    ? [[queues.priority.length, 'priority items'], [uploading(queues.normal), 'normal items being uploaded'], [pendingItems, 'items being written']] as const
    : [[uploading(queues.priority) + uploading(queues.normal), 'items being uploaded'], [pendingItems, 'items being written']] as const
  const parts = held.filter(([count]) => count > 0).map(([count, what]) => `${count} ${what}`)
  const rule = incoming === 'normal' ? 'a normal item never replaces a priority one, nor one being uploaded or written' : 'items being uploaded or written cannot be dropped'
  return `the outbox is at its limit of ${limit}, held by ${parts.join(', ') || 'nothing it may drop'}; ${rule}`
}

function sum(items: readonly QueuedItem[]): number {
  let total = 0
  for (const item of items) total += item.bytes
  return total
}

/**
 * How a batch the Loop rejected is searched for the bad items (upstream bisection): a single item is
 * rejected for good (quarantined); more are split in half, first half first.
 */
export function splitRejectedBatch<T>(items: readonly T[]): { quarantine: T } | { halves: [T[], T[]] } {
  if (items.length === 1) return { quarantine: items[0]! }
  const middle = Math.floor(items.length / 2)
  return { halves: [items.slice(0, middle), items.slice(middle)] }
}

export type UploadAnswer =
  | { kind: 'delivered' }
  | { kind: 'rejected'; reason: string }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }

/**
 * What an HTTP answer to a batch upload means. Any 2xx delivers (upstream: only 200). 422 — and 413,
 * which a single oversized item also causes — rejects the batch, which is then bisected. 429 waits for
 * Retry-After. Everything else keeps the items for a later try.
 */
export function classifyUploadStatus(status: number, retryAfter: string | null, nowMs: number): UploadAnswer {
  if (status >= 200 && status < 300) return { kind: 'delivered' }
  if (status === 422) return { kind: 'rejected', reason: 'loop_rejected' }
  if (status === 413) return { kind: 'rejected', reason: 'too_large_for_loop' }
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(retryAfter, nowMs)
    return retryAfterMs === undefined ? { kind: 'retry', reason: 'rate_limited' } : { kind: 'retry', reason: 'rate_limited', retryAfterMs }
  }
  return { kind: 'retry', reason: `http_${status}` }
}

/** What an upload that threw means: `timeout` when our own deadline fired, `aborted` on stop, else `network`. */
export function classifyUploadError(error: unknown, timedOut: boolean, aborted: boolean): UploadAnswer & { kind: 'retry' } {
  if (aborted) return { kind: 'retry', reason: 'aborted' }
  const name = (error as { name?: string } | null)?.name
  if (timedOut || name === 'TimeoutError') return { kind: 'retry', reason: 'timeout' }
  return { kind: 'retry', reason: 'network' }
}

/** How one upload round ended, as far as scheduling the next one is concerned. */
export type RoundEnd =
  | { kind: 'idle' }
  | { kind: 'progress'; remaining: number }
  | { kind: 'failed'; consecutiveFailures: number; retryAfterMs?: number }

export interface UploadSchedule {
  intervalMs: number
  maxBackoffMs: number
  maxRetryAfterMs: number
}

/**
 * Delay before the next upload round. While items remain and uploads succeed there is no wait (a deep
 * queue drains at full speed, still one request at a time); an empty queue waits the interval; failures
 * back off exponentially with jitter from the interval up to `maxBackoffMs`; a 429's Retry-After is
 * honoured (at least MIN_RATE_LIMIT_DELAY_MS, at most `maxRetryAfterMs`).
 */
export function nextUploadDelayMs(end: RoundEnd, schedule: UploadSchedule, random: () => number = Math.random): number {
  if (end.kind === 'idle') return schedule.intervalMs
  if (end.kind === 'progress') return end.remaining > 0 ? 0 : schedule.intervalMs
  if (end.retryAfterMs !== undefined) return Math.min(schedule.maxRetryAfterMs, Math.max(MIN_RATE_LIMIT_DELAY_MS, end.retryAfterMs))
  const policy: BackoffPolicy = { initialMs: schedule.intervalMs, maxMs: Math.max(schedule.intervalMs, schedule.maxBackoffMs), jitter: 'equal' }
  return backoffDelayMs(Math.max(0, end.consecutiveFailures - 1), policy, random)
}
