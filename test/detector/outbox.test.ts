import { afterEach, beforeEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ImageMetadata } from '../../src/contract/index.ts'
import { Outbox, type OutboxOptions } from '../../src/detector/outbox.ts'
import { OutboxStore } from '../../src/detector/outbox-store.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

// integration tests with real servers and child processes; bun's default of 5 s is tight on a loaded 2-core machine
setDefaultTimeout(60_000)

// The outbox against a real HTTP peer on 127.0.0.1 that parses the multipart body and answers as scripted.

const JPEG = new Uint8Array(await Bun.file(new URL('../fixtures/chelsea.jpg', import.meta.url)).arrayBuffer())
const OTHER_JPEG = new Uint8Array(await Bun.file(new URL('../fixtures/coffee.jpg', import.meta.url)).arrayBuffer())

const metadataFor = (source: string): ImageMetadata => ({
  box_detections: [{ category_name: 'dirt', x: 1, y: 2, width: 30, height: 40, model_name: '1.1', confidence: 0.42, category_id: 'c1' }],
  point_detections: [], segmentation_detections: [], classification_detections: [],
  box_annotations: [], point_annotations: [], classification_annotation: null,
  tags: ['uncertain'], created: '2025-03-05_14:22:01.123', source,
})

interface ReceivedPart {
  field: string
  name: string
  type: string
  bytes: Uint8Array
}

interface ReceivedBatch {
  path: string
  parts: ReceivedPart[]
  /** item ids in the order their json parts arrived */
  ids: string[]
  /** `source` of each item's metadata, same order */
  sources: string[]
  at: number
  /** the status the script answered */
  status?: number
}

type Script = (batch: ReceivedBatch, index: number) => Response | Promise<Response>

async function startPeer(script: Script = () => Response.json({ ok: true }), port = 0) {
  const batches: ReceivedBatch[] = []
  let inFlight = 0
  let maxInFlight = 0
  const server = Bun.serve({
    port,
    hostname: '127.0.0.1',
    async fetch(request) {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      try {
        const form = await request.formData()
        const parts: ReceivedPart[] = []
        for (const [field, entry] of form.entries()) {
          // bun-types declares entries as strings; multipart file parts are File objects
          const value = entry as string | File
          if (typeof value === 'string') parts.push({ field, name: '', type: 'text', bytes: new TextEncoder().encode(value) })
          else parts.push({ field, name: value.name, type: value.type, bytes: new Uint8Array(await value.arrayBuffer()) })
        }
        const jsonParts = parts.filter((p) => p.name.endsWith('.json'))
        const batch: ReceivedBatch = {
          path: new URL(request.url).pathname,
          parts,
          ids: jsonParts.map((p) => p.name.slice('image_'.length, -'.json'.length)),
          sources: jsonParts.map((p) => JSON.parse(new TextDecoder().decode(p.bytes)).source),
          at: performance.now(),
        }
        batches.push(batch)
        const response = await script(batch, batches.length - 1)
        batch.status = response.status
        return response
      } finally {
        inFlight--
      }
    },
  })
  return {
    server,
    batches,
    url: `http://127.0.0.1:${server.port}`,
    get maxInFlight() {
      return maxInFlight
    },
    /** sources of the items in batches the script accepted */
    uploadedSources: () => batches.filter((b) => b.status !== undefined && b.status < 300).flatMap((b) => b.sources),
  }
}
type Peer = Awaited<ReturnType<typeof startPeer>>

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** the structured log lines of the running test */
let logs: Record<string, unknown>[] = []
beforeEach(() => {
  logs = []
  const previous = setLogSink((line) => logs.push(JSON.parse(line)))
  cleanups.push(() => setLogSink(previous))
})
const logged = (msg: string) => logs.filter((l) => l.msg === msg)

async function tempData(): Promise<string> {
  const dir = await makeTempDir('lln-outbox-')
  cleanups.push(dir.cleanup)
  return dir.path
}

async function peer(script?: Script): Promise<Peer> {
  const p = await startPeer(script)
  cleanups.push(() => p.server.stop(true))
  return p
}

/** Opens an outbox on the peer; `stopped` writes the persisted mode first so nothing uploads until asked. */
async function openOutbox(dataFolder: string, target: Peer | { url: string }, options: Partial<OutboxOptions> & { stopped?: boolean } = {}): Promise<Outbox> {
  if (options.stopped) await new OutboxStore(dataFolder).writeMode('stopped')
  const outbox = await Outbox.open({
    dataFolder,
    loop: { baseUrl: target.url, organization: 'zauberzeug', project: 'demo' },
    intervalMs: 50,
    maxBackoffMs: 200,
    random: () => 0.5,
    ...options,
  })
  cleanups.push(() => outbox.stop())
  return outbox
}

async function saveMany(outbox: Outbox, sources: string[], priority = false): Promise<string[]> {
  const ids: string[] = []
  for (const source of sources) {
    const result = await outbox.save(JPEG, metadataFor(source), priority)
    if (!result.saved) throw new Error(`save failed: ${result.detail}`)
    ids.push(result.id)
  }
  return ids
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`)
const entries = (folder: string) => readdir(folder).catch(() => [] as string[])

describe('saving', () => {
  test('an item is a folder <id>/ with image_<id>.json and image_<id>.jpg in upstream layout', async () => {
    const data = await tempData()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true })
    const result = await outbox.save(JPEG, metadataFor('one'), false)
    expect(result.saved).toBe(true)
    if (!result.saved) return
    expect(result.id).toMatch(/^\d{4}-\d{2}-\d{2}_\d{2}:\d{2}:\d{2}\.\d{6}$/)
    const folder = join(data, 'outbox', 'normal', result.id)
    expect((await entries(folder)).sort()).toEqual([`image_${result.id}.jpg`, `image_${result.id}.json`])
    expect(new Uint8Array(await Bun.file(join(folder, `image_${result.id}.jpg`)).arrayBuffer())).toEqual(JPEG)
    expect(await Bun.file(join(folder, `image_${result.id}.json`)).json()).toEqual(metadataFor('one'))
    expect(await entries(join(data, 'tmp'))).toEqual([])
    const priority = await outbox.save(JPEG, metadataFor('two'), true)
    expect(priority.saved && (await entries(join(data, 'outbox', 'priority')))).toEqual([priority.saved ? priority.id : ''])
  })

  test('many concurrent saves get unique identifiers', async () => {
    const data = await tempData()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true })
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => outbox.save(JPEG, metadataFor(`c${i}`))))
    const ids = results.map((r) => (r.saved ? r.id : ''))
    expect(new Set(ids).size).toBe(50)
    expect((await entries(join(data, 'outbox', 'normal'))).sort()).toEqual([...ids].sort())
  })

  test('non-JPEG bytes are refused with a reason, counted, and nothing is written', async () => {
    const data = await tempData()
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, metrics })
    const result = await outbox.save(new TextEncoder().encode('not a jpeg'), metadataFor('x'))
    expect(result).toMatchObject({ saved: false, reason: 'not_jpeg' })
    expect(metrics.counter('outbox_save_failures_total', '').get({ reason: 'not_jpeg' })).toBe(1)
    expect(await entries(join(data, 'outbox', 'normal'))).toEqual([])
  })
})

describe('the bounded write queue (issue 11: an autoupload flood)', () => {
  test('a burst: at most writeConcurrency writes at once, at most the backlog held; the rest refused at once as write_backlog and counted', async () => {
    const data = await tempData()
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, metrics, writeConcurrency: 2, writeBacklog: { maxItems: 6 } })
    const settledOrder: string[] = []
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => outbox.save(JPEG, metadataFor(`b${i}`)).then((result) => {
      settledOrder.push(result.saved ? 'saved' : result.reason)
      return result
    })))
    expect(results.filter((r) => r.saved)).toHaveLength(6)
    expect(results.slice(6).every((r) => !r.saved && r.reason === 'write_backlog')).toBe(true)
    // the refusals were answered before any write finished: no file was opened for them
    expect(settledOrder.slice(0, 34)).toEqual(Array(34).fill('write_backlog'))
    expect(outbox.writeState()).toEqual({ inFlight: 0, peakInFlight: 2, backlogItems: 0, backlogBytes: 0 })
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'write_backlog' })).toBe(34)
    expect(outbox.totals).toMatchObject({ saved: 6, dropped: 34 })
    expect(await entries(join(data, 'outbox', 'normal'))).toHaveLength(6)
    expect(await entries(join(data, 'tmp'))).toEqual([])
    // a flood logs a few lines and a count, not a line per image
    expect(logged('outbox item dropped on arrival')).toHaveLength(10)
    await outbox.stop()
    expect(logged('outbox item dropped on arrival (more, not logged one by one)')).toEqual([expect.objectContaining({ queue: 'normal', reason: 'write_backlog', count: 24 })])
  })

  test('the gauges show the writes in flight and the backlog while a burst is written', async () => {
    const data = await tempData()
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, metrics, writeConcurrency: 3 })
    const saving = Promise.all(Array.from({ length: 10 }, (_, i) => outbox.save(JPEG, metadataFor(`g${i}`))))
    await waitFor(() => outbox.writeState().inFlight > 0, 5_000, 'writes in flight', 0)
    const text = metrics.render()
    const gauge = (name: string) => Number(new RegExp(`^lln_${name} (\\d+)$`, 'm').exec(text)?.[1])
    expect(gauge('outbox_writes_in_flight')).toBeGreaterThan(0)
    expect(gauge('outbox_writes_in_flight')).toBeLessThanOrEqual(3)
    expect(gauge('outbox_write_backlog_items')).toBeGreaterThan(0)
    expect(gauge('outbox_write_backlog_items')).toBeLessThanOrEqual(10)
    expect(gauge('outbox_write_backlog_bytes')).toBeGreaterThanOrEqual(gauge('outbox_write_backlog_items') * JPEG.length)
    expect((await saving).every((r) => r.saved)).toBe(true)
    expect(outbox.writeState()).toMatchObject({ inFlight: 0, backlogItems: 0, backlogBytes: 0, peakInFlight: 3 })
  })

  test('the cap counts items waiting to be written: a burst never makes the queue longer than maxItems', async () => {
    const data = await tempData()
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, metrics, limits: { maxItems: 5 } })
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => outbox.save(JPEG, metadataFor(`c${i}`))))
    expect(results.filter((r) => r.saved)).toHaveLength(5)
    const refused = results.filter((r) => !r.saved)
    expect(refused.every((r) => !r.saved && r.reason === 'queue_full')).toBe(true)
    // the reason says what holds the places: items being written, not priority items
    expect(refused[0]).toMatchObject({ detail: expect.stringContaining('5 items being written') })
    expect(refused[0]).not.toMatchObject({ detail: expect.stringContaining('priority items') })
    expect(outbox.count()).toBe(5)
    expect(await entries(join(data, 'outbox', 'normal'))).toHaveLength(5)
    // once written, each new normal item displaces the oldest one
    const before = outbox.queuedIds()
    const [next] = await saveMany(outbox, ['c-next'])
    expect(outbox.count()).toBe(5)
    expect(outbox.queuedIds()).toEqual([next!, ...before.slice(0, 4)])
    expect(await entries(join(data, 'outbox', 'normal'))).toHaveLength(5)
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'limit' })).toBe(1)
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'queue_full' })).toBe(15)
  })

  test('priority items are never displaced by normal ones, and the refusal says so truthfully', async () => {
    const data = await tempData()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, limits: { maxItems: 3 } })
    const priority = await saveMany(outbox, ['p0', 'p1', 'p2'], true)
    const refused = await outbox.save(JPEG, metadataFor('n'))
    expect(refused).toMatchObject({ saved: false, reason: 'queue_full', detail: expect.stringContaining('held by 3 priority items;') })
    expect(outbox.queuedIds()).toEqual(priority)
  })

  test('restart with a much smaller cap deletes the surplus a few folders at a time', async () => {
    const data = await tempData()
    const first = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true })
    await Promise.all(Array.from({ length: 60 }, (_, i) => first.save(JPEG, metadataFor(`r${i}`))))
    await first.stop()
    const second = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, limits: { maxItems: 3 }, writeConcurrency: 2 })
    expect(second.count()).toBe(3)
    expect(second.writeState().peakInFlight).toBe(2)
    expect(await entries(join(data, 'outbox', 'normal'))).toHaveLength(3)
  })
})

describe('uploading', () => {
  test('order and batches of 20: priority oldest first, then normal newest first; two named parts per item', async () => {
    const data = await tempData()
    const loop = await peer()
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, loop, { stopped: true, metrics })
    await saveMany(outbox, names('n', 30))
    await saveMany(outbox, names('p', 5), true)

    const first = await outbox.uploadOnce()
    expect(first).toMatchObject({ uploaded: 20, quarantined: 0, requests: 1 })
    expect(loop.batches[0]!.path).toBe('/api/zauberzeug/projects/demo/images')
    expect(loop.batches[0]!.sources).toEqual([...names('p', 5), ...names('n', 30).slice(15).reverse()])
    const second = await outbox.uploadOnce()
    expect(second.uploaded).toBe(15)
    expect(loop.batches[1]!.sources).toEqual(names('n', 30).slice(0, 15).reverse())
    expect(await outbox.uploadOnce()).toEqual({ uploaded: 0, quarantined: 0, requests: 0 })

    const batch = loop.batches[0]!
    expect(batch.parts).toHaveLength(40)
    expect(batch.parts.every((p) => p.field === 'files')).toBe(true)
    expect(new Set(batch.parts.map((p) => p.name)).size).toBe(40)
    batch.ids.forEach((id, i) => {
      const [json, jpg] = [batch.parts[2 * i]!, batch.parts[2 * i + 1]!]
      expect(json.name).toBe(`image_${id}.json`)
      expect(json.type).toStartWith('application/json')
      expect(jpg.name).toBe(`image_${id}.jpg`)
      expect(jpg.type).toBe('image/jpeg')
      expect(jpg.bytes).toEqual(JPEG)
    })

    expect(outbox.count()).toBe(0)
    expect(await entries(join(data, 'outbox', 'normal'))).toEqual([])
    expect(await entries(join(data, 'outbox', 'priority'))).toEqual([])
    expect(outbox.totals.uploaded).toBe(35)
    expect(metrics.counter('outbox_uploaded_total', '').get()).toBe(35)
    expect(metrics.histogram('outbox_upload_duration_seconds', '').count({ outcome: 'delivered' })).toBe(2)
  })

  test('continuous mode drains a deep queue without waiting the interval, one request at a time', async () => {
    const data = await tempData()
    const loop = await peer(async () => {
      await Bun.sleep(20)
      return new Response('ok')
    })
    // an interval this long would time the test out if the loop waited between batches
    const outbox = await openOutbox(data, loop, { stopped: true, intervalMs: 120_000 })
    await saveMany(outbox, names('n', 45))
    expect(await outbox.setMode('continuous_upload')).toBe(true)
    expect(outbox.getMode()).toBe('continuous_upload')
    await waitFor(() => outbox.count() === 0, 20_000, 'the queue to drain')
    expect(loop.batches.map((b) => b.ids.length)).toEqual([20, 20, 5])
    expect(loop.maxInFlight).toBe(1)
    expect(loop.uploadedSources().sort()).toEqual(names('n', 45))
  })

  test('422: the batch is bisected, bad items are quarantined in rejected/, the rest flows', async () => {
    const data = await tempData()
    const bad = new Set(['n02', 'n05'])
    const loop = await peer((batch) => batch.sources.some((s) => bad.has(s))
      ? Response.json({ detail: 'invalid image' }, { status: 422 })
      : new Response('ok'))
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, loop, { stopped: true, metrics })
    const ids = await saveMany(outbox, names('n', 8))

    const round = await outbox.uploadOnce()
    expect(round.uploaded).toBe(6)
    expect(round.quarantined).toBe(2)
    expect(round.failure).toBeUndefined()
    expect(outbox.count()).toBe(0)
    expect(loop.uploadedSources().sort()).toEqual(names('n', 8).filter((s) => !bad.has(s)))
    // newest first: [n07 n06 n05 n04 | n03 n02 n01 n00]; each half holds one bad item, found by halving again
    expect(round.requests).toBe(loop.batches.length)
    expect(loop.batches.map((b) => b.sources.join(' '))).toEqual([
      'n07 n06 n05 n04 n03 n02 n01 n00',
      'n07 n06 n05 n04', 'n07 n06', 'n05 n04', 'n05', 'n04',
      'n03 n02 n01 n00', 'n03 n02', 'n03', 'n02', 'n01 n00',
    ])

    const rejected = (await entries(join(data, 'outbox', 'rejected'))).sort()
    expect(rejected).toEqual([ids[2]!, ids[5]!].sort())
    for (const id of rejected) {
      const folder = join(data, 'outbox', 'rejected', id)
      expect((await entries(folder)).sort()).toEqual([`image_${id}.jpg`, `image_${id}.json`, 'reason.json'])
      const reason = await Bun.file(join(folder, 'reason.json')).json()
      expect(reason).toMatchObject({ reason: 'loop_rejected', queue: 'normal' })
      expect(reason.detail).toContain('422')
    }
    expect(outbox.totals.rejected).toBe(2)
    expect(logged('outbox item quarantined').map((l) => l.id).sort()).toEqual(rejected)
    expect(metrics.counter('outbox_rejected_total', '').get({ reason: 'loop_rejected' })).toBe(2)
  })

  test('429 with Retry-After: the items stay and the next try waits as asked', async () => {
    const data = await tempData()
    const loop = await peer((_batch, index) => index === 0
      ? new Response('slow down', { status: 429, headers: { 'retry-after': '1' } })
      : new Response('ok'))
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, loop, { stopped: true, metrics })
    await saveMany(outbox, names('n', 3))

    const limited = await outbox.uploadOnce()
    expect(limited).toMatchObject({ uploaded: 0, failure: 'rate_limited', retryAfterMs: 1_000 })
    expect(outbox.count()).toBe(3)
    expect(metrics.counter('outbox_upload_failures_total', '').get({ reason: 'rate_limited' })).toBe(1)

    // continuous mode: the first attempt gets the 429 again (index 0 was used above, so script it anew)
    loop.batches.length = 0
    await outbox.setMode('continuous_upload')
    await waitFor(() => outbox.count() === 0, 20_000, 'the upload after Retry-After')
    expect(loop.batches).toHaveLength(2)
    // the retry did not come before the server allowed it (a lower bound only; slow machines wait longer)
    expect(loop.batches[1]!.at - loop.batches[0]!.at).toBeGreaterThanOrEqual(950)
  })

  test('network down: items stay, failures are counted, and they are uploaded once the Loop is back', async () => {
    const data = await tempData()
    const down = await startPeer()
    const port = down.server.port!
    down.server.stop(true)
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, { url: `http://127.0.0.1:${port}` }, { stopped: true, metrics })
    await saveMany(outbox, names('n', 3))

    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 0, failure: 'network' })
    expect(outbox.count()).toBe(3)
    await outbox.setMode('continuous_upload')
    await waitFor(() => metrics.counter('outbox_upload_failures_total', '').get({ reason: 'network' }) >= 3, 10_000, 'retries while down')
    expect(outbox.count()).toBe(3)

    const back = await startPeer(undefined, port)
    cleanups.push(() => back.server.stop(true))
    await waitFor(() => outbox.count() === 0, 20_000, 'the upload once the Loop is back')
    expect(back.uploadedSources().sort()).toEqual(names('n', 3))
  })

  test('a hanging Loop: the upload times out and the items stay', async () => {
    const data = await tempData()
    const loop = await peer(async () => {
      await Bun.sleep(5_000)
      return new Response('late')
    })
    const outbox = await openOutbox(data, loop, { stopped: true, uploadTimeoutMs: 200 })
    await saveMany(outbox, ['n0'])
    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 0, failure: 'timeout' })
    expect(outbox.count()).toBe(1)
  })

  test('other HTTP errors keep the items for a later try', async () => {
    const data = await tempData()
    const loop = await peer((_b, index) => (index === 0 ? new Response('boom', { status: 500 }) : new Response('ok')))
    const outbox = await openOutbox(data, loop, { stopped: true })
    await saveMany(outbox, ['n0', 'n1'])
    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 0, failure: 'http_500' })
    expect(outbox.count()).toBe(2)
    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 2 })
  })

  test('an injected upload function receives the form and a signal', async () => {
    const data = await tempData()
    const loop = await peer()
    const seen: string[] = []
    const outbox = await openOutbox(data, loop, {
      stopped: true,
      upload: (form, signal) => {
        seen.push(`${form.getAll('files').length} parts, aborted=${signal.aborted}`)
        return fetch(`${loop.url}/api/org/projects/p/images`, { method: 'POST', body: form, signal, headers: { cookie: 'session=abc' } })
      },
    })
    await saveMany(outbox, ['n0'])
    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 1 })
    expect(seen).toEqual(['2 parts, aborted=false'])
    expect(loop.batches[0]!.path).toBe('/api/org/projects/p/images')
  })
})

describe('broken items never block the queue (fix of §15.9)', () => {
  test('an item that lost its jpg is quarantined during upload; the others are uploaded', async () => {
    const data = await tempData()
    const loop = await peer()
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, loop, { stopped: true, metrics })
    const ids = await saveMany(outbox, ['n0', 'n1', 'n2'])
    await rm(join(data, 'outbox', 'normal', ids[1]!, `image_${ids[1]}.jpg`))

    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 2, quarantined: 1 })
    expect(loop.uploadedSources().sort()).toEqual(['n0', 'n2'])
    expect(outbox.count()).toBe(0)
    expect(await entries(join(data, 'outbox', 'rejected'))).toEqual([ids[1]!])
    expect(await Bun.file(join(data, 'outbox', 'rejected', ids[1]!, 'reason.json')).json()).toMatchObject({ reason: 'incomplete' })
    expect(metrics.counter('outbox_rejected_total', '').get({ reason: 'incomplete' })).toBe(1)
  })

  test('torn JSON is quarantined as invalid metadata instead of being sent', async () => {
    const data = await tempData()
    const loop = await peer()
    const outbox = await openOutbox(data, loop, { stopped: true })
    const ids = await saveMany(outbox, ['n0', 'n1'])
    await writeFile(join(data, 'outbox', 'normal', ids[0]!, `image_${ids[0]}.json`), '{"box_detections": [')
    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 1, quarantined: 1 })
    expect(loop.uploadedSources()).toEqual(['n1'])
    expect(await Bun.file(join(data, 'outbox', 'rejected', ids[0]!, 'reason.json')).json()).toMatchObject({ reason: 'invalid_metadata' })
  })

  test('at start: incomplete item folders are quarantined and staging leftovers removed', async () => {
    const data = await tempData()
    const normal = join(data, 'outbox', 'normal')
    const good = '2025-03-05_14:22:01.000001'
    const broken = '2025-03-05_14:22:01.000002'
    await mkdir(join(normal, good), { recursive: true })
    await Bun.write(join(normal, good, `image_${good}.json`), JSON.stringify(metadataFor('good')))
    await Bun.write(join(normal, good, `image_${good}.jpg`), JPEG)
    await mkdir(join(normal, broken), { recursive: true })
    await Bun.write(join(normal, broken, `image_${broken}.json`), JSON.stringify(metadataFor('broken')))
    const staging = join(data, 'tmp', '2025-03-05_14:22:01.000003')
    await mkdir(staging, { recursive: true })
    await Bun.write(join(staging, 'image_2025-03-05_14:22:01.000003.json'), '{"half')
    await mkdir(join(data, 'tmp', 'someone-else'), { recursive: true })

    const loop = await peer()
    const outbox = await openOutbox(data, loop, { stopped: true })
    expect(outbox.queuedIds()).toEqual([good])
    expect((await entries(join(data, 'tmp'))).sort()).toEqual(['someone-else'])
    expect(await entries(join(data, 'outbox', 'rejected'))).toEqual([broken])
    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 1 })
    expect(loop.uploadedSources()).toEqual(['good'])
  })
})

describe('restart, modes, caps, reset', () => {
  test('restart resumes: a new Outbox on the folder has the same queue and uploads it', async () => {
    const data = await tempData()
    const loop = await peer()
    const first = await openOutbox(data, loop, { stopped: true })
    await saveMany(first, names('n', 4))
    await saveMany(first, names('p', 2), true)
    const order = first.queuedIds()
    expect(await first.stop()).toBe(true)

    const second = await openOutbox(data, loop)
    expect(second.getMode()).toBe('stopped')
    expect(second.queuedIds()).toEqual(order)
    expect(second.bytes()).toBe(first.bytes())
    await second.setMode('continuous_upload')
    await waitFor(() => second.count() === 0, 20_000, 'the resumed upload')
    expect(loop.uploadedSources()).toEqual(['p00', 'p01', 'n03', 'n02', 'n01', 'n00'])
  })

  test('the mode persists across restarts; an unknown mode is refused; an unreadable mode file means continuous', async () => {
    const data = await tempData()
    const target = { url: 'http://127.0.0.1:9' }
    const outbox = await openOutbox(data, target)
    expect(outbox.getMode()).toBe('continuous_upload')
    expect(await outbox.setMode('stopped')).toBe(true)
    expect(outbox.getMode()).toBe('stopped')
    await expect(outbox.setMode('paused')).rejects.toThrow(/continuous_upload, stopped/)
    await outbox.stop()
    expect((await openOutbox(data, target)).getMode()).toBe('stopped')

    const again = await openOutbox(data, target)
    await again.setMode('continuous_upload')
    await again.stop() // shutdown does not change the persisted mode
    expect((await openOutbox(data, target)).getMode()).toBe('continuous_upload')

    await writeFile(join(data, 'outbox', 'mode.json'), '{"mode": "sideways"}')
    expect((await openOutbox(data, target)).getMode()).toBe('continuous_upload')
  })

  test('stopping waits for the upload in flight, or gives up after the bound and aborts it', async () => {
    const data = await tempData()
    let delayMs = 300
    const loop = await peer(async () => {
      await Bun.sleep(delayMs)
      return new Response('ok')
    })
    const outbox = await openOutbox(data, loop, { stopped: true, stopTimeoutMs: 2_000 })
    await saveMany(outbox, ['n0'])
    const round = outbox.uploadOnce()
    await waitFor(() => loop.batches.length === 1, 5_000, 'the request')
    expect(await outbox.setMode('stopped')).toBe(true)
    expect(await round).toMatchObject({ uploaded: 1 })

    delayMs = 10_000
    const slow = await openOutbox(data, loop, { stopped: true, stopTimeoutMs: 100 })
    await saveMany(slow, ['n1'])
    const slowRound = slow.uploadOnce()
    await waitFor(() => loop.batches.length === 2, 5_000, 'the slow request')
    expect(await slow.setMode('stopped')).toBe(false)
    expect(await slowRound).toMatchObject({ uploaded: 0, failure: 'aborted' })
    expect(slow.count()).toBe(1)
  })

  test('count cap: the oldest normal item is dropped, logged and counted; priority items stay', async () => {
    const data = await tempData()
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, metrics, limits: { maxItems: 4 } })
    const priority = await saveMany(outbox, ['p0'], true)
    const normal = await saveMany(outbox, names('n', 5))
    expect(outbox.count()).toBe(4)
    expect(outbox.queuedIds()).toEqual([priority[0]!, normal[4]!, normal[3]!, normal[2]!])
    expect((await entries(join(data, 'outbox', 'normal'))).sort()).toEqual(normal.slice(2))
    expect(outbox.totals.dropped).toBe(2)
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'limit' })).toBe(2)
    expect(logged('outbox item dropped').map((l) => [l.id, l.queue, l.reason])).toEqual([[normal[0], 'normal', 'limit'], [normal[1], 'normal', 'limit']])

    // full of priority items: a priority item replaces the oldest priority one only when no normal one is left
    await saveMany(outbox, ['p1', 'p2', 'p3'], true)
    expect(outbox.count('priority')).toBe(4)
    expect(outbox.count('normal')).toBe(0)
    const refused = await outbox.save(JPEG, metadataFor('late normal'))
    expect(refused).toMatchObject({ saved: false, reason: 'queue_full' })
    const newest = await saveMany(outbox, ['p4'], true)
    expect(outbox.count('priority')).toBe(4)
    expect(outbox.queuedIds()).not.toContain(priority[0]!)
    expect(outbox.queuedIds().at(-1)).toBe(newest[0]!)
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'queue_full' })).toBe(1)
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'priority', reason: 'limit' })).toBe(1)
    expect(logged('outbox item dropped on arrival').map((l) => [l.queue, l.reason])).toEqual([['normal', 'queue_full']])
    expect(logged('outbox item dropped').at(-1)).toMatchObject({ id: priority[0], queue: 'priority', reason: 'limit' })
  })

  test('byte cap: oldest normal items go until the new one fits; a too large item is refused', async () => {
    const data = await tempData()
    const itemBytes = JPEG.length + new TextEncoder().encode(JSON.stringify(metadataFor('n00'))).length
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, limits: { maxBytes: itemBytes * 3 } })
    const ids = await saveMany(outbox, names('n', 5))
    expect(outbox.count()).toBe(3)
    expect(outbox.bytes()).toBe(itemBytes * 3)
    expect(outbox.queuedIds()).toEqual(ids.slice(2).reverse())

    const huge = new Uint8Array(itemBytes * 4)
    huge.set(JPEG)
    expect(await outbox.save(huge, metadataFor('huge'))).toMatchObject({ saved: false, reason: 'too_large' })
    expect(outbox.count()).toBe(3)
    // a bigger image pushes out as many old ones as it needs
    expect((await outbox.save(OTHER_JPEG.length > JPEG.length ? OTHER_JPEG : JPEG, metadataFor('other'))).saved).toBe(true)
    expect(outbox.bytes()).toBeLessThanOrEqual(itemBytes * 3)
  })

  test('low disk: old normal items make room so the disk keeps its reserve', async () => {
    const data = await tempData()
    const metrics = new MetricsRegistry()
    const itemBytes = JPEG.length + new TextEncoder().encode(JSON.stringify(metadataFor('n00'))).length
    // a fake disk with room for 3 items above the reserve; statfs would depend on everything else on this machine
    const reserve = 1_000_000
    let freeDisk = reserve + itemBytes * 3
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, metrics, minFreeDiskBytes: reserve, freeDiskBytes: async () => freeDisk })
    const ids = await saveMany(outbox, names('n', 5))
    expect(outbox.queuedIds()).toEqual(ids.slice(2).reverse())
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'disk_low' })).toBe(2)
    // the disk filled up from elsewhere: the outbox no longer grows; each priority item replaces a normal one
    freeDisk = 0
    await Bun.sleep(1_100) // the free space is read at most once a second
    await saveMany(outbox, ['p0', 'p1', 'p2'], true)
    expect([outbox.count('priority'), outbox.count('normal')]).toEqual([3, 0])
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'disk_low' })).toBe(5)
    // and a normal item finds nothing it may push out
    expect(await outbox.save(JPEG, metadataFor('n'))).toMatchObject({ saved: false, reason: 'disk_full' })
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'disk_full' })).toBe(1)
  })

  test('restart with smaller limits trims the loaded queue', async () => {
    const data = await tempData()
    const first = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true })
    const ids = await saveMany(first, names('n', 5))
    await first.stop()
    const metrics = new MetricsRegistry()
    const second = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { limits: { maxItems: 2 }, metrics })
    expect(second.queuedIds()).toEqual([ids[4]!, ids[3]!])
    expect(metrics.counter('outbox_dropped_total', '').get({ queue: 'normal', reason: 'limit' })).toBe(3)
    expect((await entries(join(data, 'outbox', 'normal'))).sort()).toEqual(ids.slice(3))
  })

  test('reset() after the data folder was wiped: the outbox keeps working', async () => {
    const data = await tempData()
    const loop = await peer()
    const outbox = await openOutbox(data, loop, { stopped: true })
    await saveMany(outbox, names('old', 3))
    await rm(data, { recursive: true, force: true })
    await mkdir(data)
    await outbox.reset()
    expect(outbox.count()).toBe(0)
    expect(outbox.getMode()).toBe('stopped')
    await saveMany(outbox, ['new'])
    expect(await entries(join(data, 'outbox', 'normal'))).toHaveLength(1)
    expect(await outbox.uploadOnce()).toMatchObject({ uploaded: 1 })
    expect(loop.uploadedSources()).toEqual(['new'])
    // the mode file was written again
    expect((await new OutboxStore(data).readMode())).toBe('stopped')
  })

  test('metrics: depth and bytes per queue and the oldest item age', async () => {
    const data = await tempData()
    const metrics = new MetricsRegistry()
    const outbox = await openOutbox(data, { url: 'http://127.0.0.1:9' }, { stopped: true, metrics })
    await saveMany(outbox, ['n0', 'n1'])
    await saveMany(outbox, ['p0'], true)
    const text = metrics.render()
    expect(text).toContain('outbox_items{queue="normal"} 2')
    expect(text).toContain('outbox_items{queue="priority"} 1')
    expect(text).toContain(`outbox_bytes{queue="normal"} ${outbox.bytes('normal')}`)
    expect(text).toMatch(/outbox_oldest_item_age_seconds\{queue="normal"\} \d/)
    expect(text).toContain('outbox_saved_total{queue="normal"} 2')
  })
})
