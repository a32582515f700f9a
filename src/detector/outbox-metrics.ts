import type { Counter, Histogram, MetricsRegistry } from '../foundation/metrics.ts'
import type { OutboxQueueName, OutboxQueues } from './outbox-policy.ts'

export interface OutboxMetrics {
  saved: Counter
  saveFailures: Counter
  uploaded: Counter
  rejected: Counter
  dropped: Counter
  uploadFailures: Counter
  modePersistFailures: Counter
  uploadDuration: Histogram
}

/** What the gauges read when /metrics is scraped. */
export interface OutboxGaugeSource {
  queues: OutboxQueues
  writes(): { inFlight: number; backlogItems: number; backlogBytes: number }
}

const QUEUES: readonly OutboxQueueName[] = ['priority', 'normal']

export function registerOutboxMetrics(registry: MetricsRegistry, source: OutboxGaugeSource): OutboxMetrics {
  const { queues } = source
  const items = registry.gauge('outbox_items', 'Items waiting in the outbox, by queue')
  items.collect(() => {
    for (const queue of QUEUES) items.set(queues.count(queue), { queue })
  })
  const bytes = registry.gauge('outbox_bytes', 'Bytes (json + jpg) waiting in the outbox, by queue')
  bytes.collect(() => {
    for (const queue of QUEUES) bytes.set(queues.bytes(queue), { queue })
  })
  const oldestAge = registry.gauge('outbox_oldest_item_age_seconds', 'Age of the oldest waiting item, by queue (0 when empty)')
  oldestAge.collect(() => {
    const now = Date.now()
    for (const queue of QUEUES) {
      const oldest = queues.oldest(queue)
      oldestAge.set(oldest ? Math.max(0, (now - oldest.createdMs) / 1000) : 0, { queue })
    }
  })
  const inFlight = registry.gauge('outbox_writes_in_flight', 'Outbox items being written to disk right now (at most the write concurrency)')
  inFlight.collect(() => inFlight.set(source.writes().inFlight))
  const backlogItems = registry.gauge('outbox_write_backlog_items', 'Items accepted by the outbox and held in memory until written (including those being written)')
  backlogItems.collect(() => backlogItems.set(source.writes().backlogItems))
  const backlogBytes = registry.gauge('outbox_write_backlog_bytes', 'Bytes of the items held in memory until written')
  backlogBytes.collect(() => backlogBytes.set(source.writes().backlogBytes))
  return {
    saved: registry.counter('outbox_saved_total', 'Items saved to the outbox, by queue'),
    saveFailures: registry.counter('outbox_save_failures_total', 'Items that could not be saved, by reason'),
    uploaded: registry.counter('outbox_uploaded_total', 'Items the Loop accepted'),
    rejected: registry.counter('outbox_rejected_total', 'Items quarantined in outbox/rejected, by reason'),
    dropped: registry.counter('outbox_dropped_total', 'Items dropped to respect the outbox limits or its write backlog, by queue and reason'),
    uploadFailures: registry.counter('outbox_upload_failures_total', 'Upload requests that left the items queued, by reason'),
    modePersistFailures: registry.counter('outbox_mode_persist_failures_total', 'Failures to persist the outbox mode'),
    uploadDuration: registry.histogram('outbox_upload_duration_seconds', 'Duration of one batch upload request, by outcome'),
  }
}
