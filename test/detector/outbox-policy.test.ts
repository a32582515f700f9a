import { describe, expect, test } from 'bun:test'
import {
  classifyUploadError, classifyUploadStatus, effectiveByteLimit, identifierTimeMs, isOutboxIdentifier, MIN_RATE_LIMIT_DELAY_MS, nextUploadDelayMs,
  OutboxIdentifierClock, OutboxQueues, planDrops, selectBatch, splitRejectedBatch, writeBacklogRoom, type OutboxQueueName, type QueuedItem,
} from '../../src/detector/outbox-policy.ts'

const item = (id: string, queue: OutboxQueueName = 'normal', bytes = 100): QueuedItem => ({ id, queue, bytes, createdMs: 0 })
const ids = (items: readonly QueuedItem[]) => items.map((i) => i.id)
const queuesOf = (priority: string[], normal: string[], bytes = 100) => {
  const queues = new OutboxQueues()
  for (const id of priority) queues.add(item(id, 'priority', bytes))
  for (const id of normal) queues.add(item(id, 'normal', bytes))
  return queues
}

describe('identifiers', () => {
  test('local time with microseconds, unique and ordered within one millisecond', () => {
    const clock = new OutboxIdentifierClock()
    const now = new Date(2025, 2, 5, 14, 22, 1, 123).getTime()
    const made = [clock.next(now), clock.next(now), clock.next(now)]
    expect(made).toEqual(['2025-03-05_14:22:01.123000', '2025-03-05_14:22:01.123001', '2025-03-05_14:22:01.123002'])
    expect(made.every(isOutboxIdentifier)).toBe(true)
    expect(clock.next(now + 1)).toBe('2025-03-05_14:22:01.124000')
  })

  test('a clock that goes back still gives increasing identifiers', () => {
    const clock = new OutboxIdentifierClock()
    const now = new Date(2025, 2, 5, 14, 22, 1, 999).getTime()
    const first = clock.next(now)
    const second = clock.next(now - 5_000)
    expect(second > first).toBe(true)
  })

  test('1000 identifiers in one millisecond roll into the next millisecond', () => {
    const clock = new OutboxIdentifierClock()
    const now = new Date(2025, 0, 1, 0, 0, 0, 0).getTime()
    const made = Array.from({ length: 1001 }, () => clock.next(now))
    expect(new Set(made).size).toBe(1001)
    expect(made[1000]).toBe('2025-01-01_00:00:00.001000')
  })

  test('identifierTimeMs reads the local time back; other names are not identifiers', () => {
    expect(identifierTimeMs('2025-03-05_14:22:01.123456')).toBe(new Date(2025, 2, 5, 14, 22, 1, 123).getTime())
    expect(identifierTimeMs('something')).toBeUndefined()
    expect(isOutboxIdentifier('2025-03-05_14:22:01.123')).toBe(false)
    expect(isOutboxIdentifier('../2025-03-05_14:22:01.123456')).toBe(false)
  })
})

describe('queues and batch order', () => {
  test('priority oldest first, then normal newest first, at most the batch size', () => {
    const queues = queuesOf(['p2', 'p1'], ['n1', 'n3', 'n2'])
    expect(ids(selectBatch(queues, 20))).toEqual(['p1', 'p2', 'n3', 'n2', 'n1'])
    expect(ids(selectBatch(queues, 3))).toEqual(['p1', 'p2', 'n3'])
    expect(ids(selectBatch(queues, 1))).toEqual(['p1'])
    expect(selectBatch(new OutboxQueues(), 20)).toEqual([])
  })

  test('a batch of 20 from a deep normal queue is its 20 newest', () => {
    const normal = Array.from({ length: 30 }, (_, i) => `n${String(i).padStart(2, '0')}`)
    const batch = selectBatch(queuesOf([], normal), 20)
    expect(batch).toHaveLength(20)
    expect(ids(batch)).toEqual(normal.slice(10).reverse())
  })

  test('counts and bytes per queue follow adds and removes; duplicates are refused', () => {
    const queues = queuesOf(['p1'], ['n1', 'n2'])
    expect(queues.add(item('n1'))).toBe(false)
    expect([queues.count(), queues.count('priority'), queues.bytes(), queues.bytes('normal')]).toEqual([3, 1, 300, 200])
    expect(queues.remove('n1')?.id).toBe('n1')
    expect(queues.remove('n1')).toBeUndefined()
    expect([queues.count(), queues.bytes('normal'), queues.oldest('normal')?.id]).toEqual([2, 100, 'n2'])
    queues.clear()
    expect([queues.count(), queues.bytes()]).toEqual([0, 0])
  })
})

describe('drops under the caps', () => {
  const limits = { maxItems: 4, maxBytes: 1_000 }

  test('room left: nothing is dropped', () => {
    expect(planDrops({ queues: queuesOf(['p1'], ['n1']), limits, incoming: { queue: 'normal', bytes: 100 } })).toEqual({ accept: true, drop: [], reason: 'limit' })
  })

  test('count cap: the oldest normal item goes first, also for an incoming priority item', () => {
    const queues = queuesOf(['p1'], ['n1', 'n2', 'n3'])
    const normal = planDrops({ queues, limits, incoming: { queue: 'normal', bytes: 100 } })
    expect(normal.accept && ids(normal.drop)).toEqual(['n1'])
    const priority = planDrops({ queues, limits, incoming: { queue: 'priority', bytes: 100 } })
    expect(priority.accept && ids(priority.drop)).toEqual(['n1'])
  })

  test('byte cap: as many oldest normal items as needed', () => {
    const queues = queuesOf([], ['n1', 'n2', 'n3'], 300)
    const plan = planDrops({ queues, limits, incoming: { queue: 'normal', bytes: 500 } })
    expect(plan.accept && ids(plan.drop)).toEqual(['n1', 'n2'])
  })

  test('only priority items left: a priority item replaces the oldest priority item, a normal item is refused', () => {
    const queues = queuesOf(['p1', 'p2', 'p3', 'p4'], [])
    const priority = planDrops({ queues, limits, incoming: { queue: 'priority', bytes: 100 } })
    expect(priority.accept && ids(priority.drop)).toEqual(['p1'])
    const normal = planDrops({ queues, limits, incoming: { queue: 'normal', bytes: 100 } })
    expect(normal).toMatchObject({ accept: false, reason: 'queue_full' })
  })

  test('items being uploaded are never dropped', () => {
    const queues = queuesOf([], ['n1', 'n2', 'n3', 'n4'])
    const plan = planDrops({ queues, limits, incoming: { queue: 'normal', bytes: 100 }, busy: new Set(['n1', 'n2']) })
    expect(plan.accept && ids(plan.drop)).toEqual(['n3'])
    const allBusy = planDrops({ queues, limits, incoming: { queue: 'normal', bytes: 100 }, busy: new Set(['n1', 'n2', 'n3', 'n4']) })
    expect(allBusy).toMatchObject({ accept: false, reason: 'queue_full' })
  })

  test('items still being written count against the caps', () => {
    const plan = planDrops({ queues: queuesOf([], ['n1', 'n2']), limits, incoming: { queue: 'normal', bytes: 100 }, pending: { items: 2, bytes: 200 } })
    expect(plan.accept && ids(plan.drop)).toEqual(['n1'])
  })

  test('an item bigger than the byte cap is refused without dropping anything', () => {
    expect(planDrops({ queues: queuesOf([], ['n1']), limits, incoming: { queue: 'priority', bytes: 1_001 } })).toMatchObject({ accept: false, reason: 'too_large' })
  })

  test('a running byte total may be passed instead of summing the queues', () => {
    const queues = queuesOf([], ['n1', 'n2'])
    const plan = planDrops({ queues: { priority: queues.priority, normal: queues.normal, totalBytes: 950 }, limits, incoming: { queue: 'normal', bytes: 100 } })
    expect(plan.accept && ids(plan.drop)).toEqual(['n1'])
  })

  test('the disk reserve lowers the byte limit; drops and refusals then say so', () => {
    expect(effectiveByteLimit({ maxBytes: 1_000, usedBytes: 300, freeDiskBytes: 10_000, minFreeBytes: 500 })).toEqual({ maxBytes: 1_000, byDisk: false })
    expect(effectiveByteLimit({ maxBytes: 1_000, usedBytes: 300, freeDiskBytes: 700, minFreeBytes: 500 })).toEqual({ maxBytes: 500, byDisk: true })
    expect(effectiveByteLimit({ maxBytes: 1_000, usedBytes: 300, freeDiskBytes: 100, minFreeBytes: 500 })).toEqual({ maxBytes: 300, byDisk: true })
    const queues = queuesOf([], ['n1', 'n2', 'n3'])
    const plan = planDrops({ queues, limits: { maxItems: 10, maxBytes: 300 }, incoming: { queue: 'normal', bytes: 100 }, byDisk: true })
    expect(plan).toMatchObject({ accept: true, reason: 'disk_low' })
    expect(plan.accept && ids(plan.drop)).toEqual(['n1'])
    expect(planDrops({ queues, limits: { maxItems: 10, maxBytes: 50 }, incoming: { queue: 'normal', bytes: 100 }, byDisk: true })).toMatchObject({ accept: false, reason: 'disk_full' })
  })

  test('a refusal names what holds the places, never priority items that are not there', () => {
    const refusal = (input: Parameters<typeof planDrops>[0]) => {
      const plan = planDrops(input)
      if (plan.accept) throw new Error('expected a refusal')
      return plan.detail
    }
    const writing = refusal({ queues: queuesOf([], []), limits, incoming: { queue: 'normal', bytes: 100 }, pending: { items: 4, bytes: 400 } })
    expect(writing).toBe('the outbox is at its limit of 4 items, held by 4 items being written; a normal item never replaces a priority one, nor one being uploaded or written')
    const mixed = refusal({ queues: queuesOf(['p1'], ['n1', 'n2']), limits, incoming: { queue: 'normal', bytes: 100 }, pending: { items: 1, bytes: 100 }, busy: new Set(['n1', 'n2']) })
    expect(mixed).toBe('the outbox is at its limit of 4 items, held by 1 priority items, 2 normal items being uploaded, 1 items being written; a normal item never replaces a priority one, nor one being uploaded or written')
    const priorityIncoming = refusal({ queues: queuesOf(['p1', 'p2'], ['n1']), limits, incoming: { queue: 'priority', bytes: 100 }, pending: { items: 1, bytes: 100 }, busy: new Set(['p1', 'p2', 'n1']) })
    expect(priorityIncoming).toBe('the outbox is at its limit of 4 items, held by 3 items being uploaded, 1 items being written; items being uploaded or written cannot be dropped')
    const bytes = refusal({ queues: queuesOf(['p1'], [], 900), limits, incoming: { queue: 'normal', bytes: 200 } })
    expect(bytes).toMatch(/^the outbox is at its limit of 1000 bytes, held by 1 priority items;/)
  })

  test('trimming after a restart with smaller limits: normal first, then priority', () => {
    const plan = planDrops({ queues: queuesOf(['p1', 'p2', 'p3'], ['n1', 'n2']), limits: { maxItems: 2, maxBytes: 10_000 } })
    expect(plan.accept && ids(plan.drop)).toEqual(['n1', 'n2', 'p1'])
  })
})

describe('the write backlog', () => {
  const backlog = { maxItems: 3, maxBytes: 1_000 }

  test('room while both the count and the bytes fit; the refusal says which ran out', () => {
    expect(writeBacklogRoom({ items: 2, bytes: 600 }, backlog, 400)).toEqual({ ok: true })
    const full = writeBacklogRoom({ items: 3, bytes: 300 }, backlog, 100)
    expect(!full.ok && full.detail).toMatch(/^3 items are waiting to be written/)
    const heavy = writeBacklogRoom({ items: 1, bytes: 700 }, backlog, 400)
    expect(!heavy.ok && heavy.detail).toMatch(/^700 bytes are waiting to be written/)
  })

  test('an item bigger than the byte bound still goes when nothing else waits', () => {
    expect(writeBacklogRoom({ items: 0, bytes: 0 }, backlog, 5_000)).toEqual({ ok: true })
    expect(writeBacklogRoom({ items: 1, bytes: 10 }, backlog, 5_000).ok).toBe(false)
  })
})

describe('rejected batches are bisected', () => {
  test('halves, first half first; a single item is quarantined', () => {
    expect(splitRejectedBatch([1, 2, 3, 4, 5])).toEqual({ halves: [[1, 2], [3, 4, 5]] })
    expect(splitRejectedBatch([1, 2])).toEqual({ halves: [[1], [2]] })
    expect(splitRejectedBatch([7])).toEqual({ quarantine: 7 })
  })

  test('the plan isolates every bad item of a batch of 20', () => {
    const bad = new Set([3, 4, 17])
    const quarantined: number[] = []
    const delivered: number[] = []
    let requests = 0
    const send = (items: number[]): void => {
      requests++
      if (!items.some((i) => bad.has(i))) {
        delivered.push(...items)
        return
      }
      const split = splitRejectedBatch(items)
      if ('quarantine' in split) quarantined.push(split.quarantine)
      else split.halves.forEach(send)
    }
    send(Array.from({ length: 20 }, (_, i) => i))
    expect(quarantined).toEqual([3, 4, 17])
    expect(delivered.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i).filter((i) => !bad.has(i)))
    expect(requests).toBeLessThan(20)
  })
})

describe('upload answers', () => {
  const now = Date.UTC(2030, 0, 1)
  test('2xx delivers; 422 and 413 reject; 429 reads Retry-After; the rest retries', () => {
    expect(classifyUploadStatus(200, null, now)).toEqual({ kind: 'delivered' })
    expect(classifyUploadStatus(204, null, now)).toEqual({ kind: 'delivered' })
    expect(classifyUploadStatus(422, null, now)).toEqual({ kind: 'rejected', reason: 'loop_rejected' })
    expect(classifyUploadStatus(413, null, now)).toEqual({ kind: 'rejected', reason: 'too_large_for_loop' })
    expect(classifyUploadStatus(429, '7', now)).toEqual({ kind: 'retry', reason: 'rate_limited', retryAfterMs: 7_000 })
    expect(classifyUploadStatus(429, new Date(now + 3_000).toUTCString(), now)).toEqual({ kind: 'retry', reason: 'rate_limited', retryAfterMs: 3_000 })
    expect(classifyUploadStatus(429, null, now)).toEqual({ kind: 'retry', reason: 'rate_limited' })
    expect(classifyUploadStatus(503, null, now)).toEqual({ kind: 'retry', reason: 'http_503' })
    expect(classifyUploadStatus(401, null, now)).toEqual({ kind: 'retry', reason: 'http_401' })
  })

  test('thrown errors: timeout, abort on stop, network', () => {
    expect(classifyUploadError(new Error('x'), true, false).reason).toBe('timeout')
    expect(classifyUploadError(new DOMException('t', 'TimeoutError'), false, false).reason).toBe('timeout')
    expect(classifyUploadError(new Error('x'), false, true).reason).toBe('aborted')
    expect(classifyUploadError(new TypeError('fetch failed'), false, false).reason).toBe('network')
  })
})

describe('next upload delay', () => {
  const schedule = { intervalMs: 5_000, maxBackoffMs: 300_000, maxRetryAfterMs: 600_000 }
  test('a deep queue with successful uploads continues at once; an empty one waits the interval', () => {
    expect(nextUploadDelayMs({ kind: 'progress', remaining: 40 }, schedule)).toBe(0)
    expect(nextUploadDelayMs({ kind: 'progress', remaining: 0 }, schedule)).toBe(5_000)
    expect(nextUploadDelayMs({ kind: 'idle' }, schedule)).toBe(5_000)
  })

  test('failures back off exponentially with jitter, bounded', () => {
    const delays = (random: number) => [1, 2, 3, 4, 10, 100].map((n) => nextUploadDelayMs({ kind: 'failed', consecutiveFailures: n }, schedule, () => random))
    expect(delays(1)).toEqual([5_000, 10_000, 20_000, 40_000, 300_000, 300_000])
    expect(delays(0)).toEqual([2_500, 5_000, 10_000, 20_000, 150_000, 150_000])
  })

  test('Retry-After is honoured, within [1 s, max Retry-After], regardless of the backoff cap', () => {
    expect(nextUploadDelayMs({ kind: 'failed', consecutiveFailures: 1, retryAfterMs: 12_000 }, schedule)).toBe(12_000)
    expect(nextUploadDelayMs({ kind: 'failed', consecutiveFailures: 1, retryAfterMs: 400_000 }, schedule)).toBe(400_000)
    expect(nextUploadDelayMs({ kind: 'failed', consecutiveFailures: 1, retryAfterMs: 0 }, schedule)).toBe(MIN_RATE_LIMIT_DELAY_MS)
    expect(nextUploadDelayMs({ kind: 'failed', consecutiveFailures: 1, retryAfterMs: 86_400_000 }, schedule)).toBe(600_000)
  })
})
