import { afterEach, expect, setDefaultTimeout, test } from 'bun:test'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { ImageMetadata } from '../../src/contract/index.ts'
import { Outbox } from '../../src/detector/outbox.ts'
import { OutboxStore } from '../../src/detector/outbox-store.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop } from '../support/test-loop.ts'

// The outbox against the embedded Learning Loop: what it uploads appears as images of the project.

setDefaultTimeout(60_000)

const JPEG = new Uint8Array(await Bun.file(new URL('../fixtures/astronaut.jpg', import.meta.url)).arrayBuffer())
const ORGANIZATION = 'zauberzeug'
const PROJECT = 'demo'

const metadataFor = (source: string): ImageMetadata => ({
  box_detections: [{ category_name: 'dirt', x: 10, y: 20, width: 30, height: 40, model_name: '1.1', confidence: 0.42, category_id: null }],
  point_detections: [{ category_name: 'point', x: 5.5, y: 6.5, model_name: '1.1', confidence: 0.35, category_id: null }],
  segmentation_detections: [], classification_detections: [],
  tags: ['uncertain'], created: '2025-03-05_14:22:01.123', source,
})

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function setUp(rateLimit?: { perSecond: number; burst: number }) {
  const testLoop = await startTestLoop({ seedProject: { organization: ORGANIZATION, project: PROJECT }, rateLimit })
  cleanups.push(testLoop.cleanup)
  const loop = testLoop.loop
  const data = join(testLoop.folder, 'node')
  await new OutboxStore(data).writeMode('stopped')
  const metrics = new MetricsRegistry()
  const outbox = await Outbox.open({
    dataFolder: data, loop: { baseUrl: loop.url, organization: ORGANIZATION, project: PROJECT }, metrics, intervalMs: 100, maxBackoffMs: 500,
  })
  cleanups.push(() => outbox.stop())
  return { loop, outbox, data, metrics }
}

test('queued items become images of the project; a JPEG the Loop cannot read is quarantined, the rest flows', async () => {
  const { loop, outbox, data, metrics } = await setUp()
  const sources: string[] = []
  for (let i = 0; i < 25; i++) {
    const source = `normal-${i}`
    sources.push(source)
    expect((await outbox.save(JPEG, metadataFor(source))).saved).toBe(true)
  }
  for (let i = 0; i < 3; i++) {
    sources.push(`priority-${i}`)
    expect((await outbox.save(JPEG, metadataFor(`priority-${i}`), true)).saved).toBe(true)
  }
  // starts like a JPEG, but the Loop cannot read its size: it refuses the batch with 422
  const broken = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 1, 2, 3, 4, 5, 6, 7, 8])
  const brokenSave = await outbox.save(broken, metadataFor('broken'))
  expect(brokenSave.saved).toBe(true)

  await outbox.setMode('continuous_upload')
  await waitFor(() => outbox.count() === 0, 30_000, 'the outbox to drain into the local loop')

  const images = loop.listImages(ORGANIZATION, PROJECT)
  expect(images.map((i) => i.source).sort()).toEqual([...sources].sort())
  const stored = images.find((i) => i.source === 'normal-3')!
  expect(stored).toMatchObject({ tags: ['uncertain'], box_detections: 1, point_detections: 1 })
  expect(stored.width).toBeGreaterThan(0)
  expect(outbox.totals.uploaded).toBe(28)
  expect(await readdir(join(data, 'outbox', 'rejected'))).toEqual([brokenSave.saved ? brokenSave.id : ''])
  expect(metrics.counter('outbox_rejected_total', '').get({ reason: 'loop_rejected' })).toBe(1)
})

test('a rate-limited Loop: 429 with Retry-After is honoured and everything arrives', async () => {
  const { loop, outbox, metrics } = await setUp({ perSecond: 1, burst: 1 })
  for (let i = 0; i < 45; i++) expect((await outbox.save(JPEG, metadataFor(`item-${i}`))).saved).toBe(true)
  await outbox.setMode('continuous_upload')
  await waitFor(() => outbox.count() === 0, 30_000, 'all items despite the rate limit')
  expect(loop.listImages(ORGANIZATION, PROJECT)).toHaveLength(45)
  // three batches cannot pass a one-per-second limit without being told to wait at least once
  expect(metrics.counter('outbox_upload_failures_total', '').get({ reason: 'rate_limited' })).toBeGreaterThanOrEqual(1)
  expect(loop.stats().requests.rate_limited).toBe(metrics.counter('outbox_upload_failures_total', '').get({ reason: 'rate_limited' }))
})
