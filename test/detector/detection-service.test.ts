import { afterEach, describe, expect, test } from 'bun:test'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ActiveDetector } from '../../src/detector/active-detector.ts'
import { DetectionService, OutboxBusyError } from '../../src/detector/detection-service.ts'
import { Outbox, type OutboxOptions } from '../../src/detector/outbox.ts'
import { OutboxStore } from '../../src/detector/outbox-store.ts'
import { RelevanceFilter } from '../../src/detector/relevance-filter.ts'
import { httpStatusOf } from '../../src/detector/rest-routes.ts'
import { decodeImage, type ImageInput } from '../../src/inference/image-decoding.ts'
import { createLogger, setLogSink } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { FIXED_BOX_OUTPUT, fixedBoxLogic } from '../support/fixed-box-logic.ts'
import { makeTempDir } from '../support/temp.ts'

// The autoupload path of the detection flow (issue 11): a detection never waits for the outbox, and nothing
// it hands on grows with the request rate — encodings and writes are bounded, the rest is dropped and counted.

const JPEG = new Uint8Array(await Bun.file(new URL('../fixtures/chelsea.jpg', import.meta.url)).arrayBuffer())
const rawFrame = (): ImageInput => ({ kind: 'raw', bytes: new Uint8Array(64 * 48 * 3).fill(128), dtype: 'uint8', shape: [48, 64, 3] })

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function serviceWith(outboxOptions: Partial<OutboxOptions> = {}) {
  const temp = await makeTempDir('lln-detection-service-')
  cleanups.push(temp.cleanup)
  const previous = setLogSink(() => undefined)
  cleanups.push(() => setLogSink(previous))
  await new OutboxStore(temp.path).writeMode('stopped')
  const metrics = new MetricsRegistry()
  const outbox = await Outbox.open({ dataFolder: temp.path, upload: async () => new Response(null, { status: 503 }), metrics, ...outboxOptions })
  cleanups.push(() => outbox.stop())
  const active = new ActiveDetector()
  await active.swap(fixedBoxLogic)
  const background: Promise<unknown>[] = []
  const service = new DetectionService({
    active, outbox, metrics, log: createLogger('test'),
    filter: new RelevanceFilter({ minUncertain: 0.3, maxUncertain: 0.6 }),
    track: (work) => (background.push(work), work),
  })
  const dropped = (reason: string) => metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason })
  const saved = () => metrics.counter('outbox_saved_total', '').get({ queue: 'normal' })
  const settle = () => Promise.all(background)
  return { service, outbox, active, dropped, saved, settle, normalFolder: join(temp.path, 'outbox', 'normal') }
}

/** The mean pixel value (rounded) of every JPEG queued in `folder`. */
async function savedPixelMeans(folder: string): Promise<number[]> {
  return Promise.all((await readdir(folder)).map(async (id) => {
    const { data } = await decodeImage({ kind: 'encoded', bytes: await Bun.file(join(folder, id, `image_${id}.jpg`)).bytes() })
    return Math.round(data.reduce((sum, v) => sum + v, 0) / data.length)
  }))
}

describe('autoupload from the detection flow', () => {
  test('raw frames: a few encodings at once; the others are dropped as encode_backlog before any encoding', async () => {
    const { service, dropped, saved, settle, normalFolder } = await serviceWith()
    const answers = await Promise.all(Array.from({ length: 30 }, () => service.detect(rawFrame(), { autoupload: 'all' }, 'socket')))
    expect(answers).toHaveLength(30)
    await settle()
    // 2 encoding and 2 waiting when the burst arrived
    expect(saved()).toBe(4)
    expect(dropped('encode_backlog')).toBe(26)
    expect(await readdir(normalFolder)).toHaveLength(4)
  })

  test('JPEG images while the write backlog is full: the detections answer, the surplus is dropped as write_backlog', async () => {
    const { service, dropped, saved, settle } = await serviceWith({ writeBacklog: { maxItems: 3 } })
    const answers = await Promise.all(Array.from({ length: 20 }, () => service.detect({ kind: 'encoded', bytes: JPEG }, { autoupload: 'all' }, 'rest')))
    expect(answers.every((a) => a.box_detections?.length === 1)).toBe(true)
    await settle()
    expect(saved()).toBe(3)
    expect(dropped('write_backlog')).toBe(17)
  })

  test('a non-JPEG image is encoded from the pixels the model decoded, not decoded again; without them from the image', async () => {
    const { service, settle, normalFolder, active } = await serviceWith()
    // a model that returns its decoded pixels, as the inference engine does when asked: plain white, where the image is gray
    const white = { width: 64, height: 48, data: new Uint8Array(64 * 48 * 3).fill(255) }
    const asked: unknown[] = []
    await active.swap({ ...fixedBoxLogic, detect: async (_image, options) => (asked.push(options), { ...structuredClone(FIXED_BOX_OUTPUT), decoded: white }) })
    await service.detect(rawFrame(), { autoupload: 'all' }, 'socket')
    await settle()
    expect(asked).toEqual([{ keepDecoded: true }])
    expect(await savedPixelMeans(normalFolder)).toEqual([255])

    // a custom logic that ignores keepDecoded: the image itself is encoded
    await active.swap(fixedBoxLogic)
    await service.detect(rawFrame(), { autoupload: 'all' }, 'socket')
    await settle()
    expect((await savedPixelMeans(normalFolder)).sort()).toEqual([128, 255])
    // nothing may go to the outbox: no pixels are asked for
    await active.swap({ ...fixedBoxLogic, detect: async (_image, options) => (asked.push(options), structuredClone(FIXED_BOX_OUTPUT)) })
    await service.detect(rawFrame(), { autoupload: 'disabled' }, 'socket')
    expect(asked.at(-1)).toEqual({ keepDecoded: false })
  })

  test('/upload while the write backlog is full: a 503 (try again), not a server error', async () => {
    const { service } = await serviceWith({ writeBacklog: { maxItems: 2 } })
    const metadata = { box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [], tags: [], created: null, source: 'test' }
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => service.upload({ kind: 'encoded', bytes: JPEG }, metadata as never, false)))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2)
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []))
    expect(refusals).toHaveLength(4)
    for (const refusal of refusals) {
      expect(refusal).toBeInstanceOf(OutboxBusyError)
      expect(httpStatusOf(refusal)).toBe(503)
    }
  })
})
