/**
 * Issue 11: images that decode into far more memory than they take on the wire are refused from their header,
 * on every route; /upload validates every file before it queues any; header values are read as UTF-8 and a
 * creation date must be one. A real detector (built-in model) and a real local loop on free ports.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readdir, readFile } from 'node:fs/promises'
import { connect as connectTcp } from 'node:net'
import { join } from 'node:path'
import type { Socket } from 'socket.io-client'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { jpegClaimingSize, pngBomb } from '../support/image-bombs.ts'
import { waitFor } from '../support/temp.ts'
import { connectDetectorClient, startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

setDefaultTimeout(60_000)

const fixtures = join(import.meta.dir, '../fixtures')
const astronautJpeg = new Uint8Array(await readFile(join(fixtures, 'astronaut.jpg')))
const coffeeJpeg = new Uint8Array(await readFile(join(fixtures, 'coffee.jpg')))
// low enough that a raw frame over it stays small on the wire; the default (50 MP) is tested in test/inference
const BUDGET = 4_000_000
const ORG = 'local'
const PROJECT = 'demo'

let testLoop: TestLoop
let loop: LocalLoop
let detector: DetectorNode

beforeAll(async () => {
  testLoop = await startTestLoop()
  loop = testLoop.loop
  detector = await startTestDetector(loop.url, join(testLoop.folder, 'detector'), { MAX_IMAGE_PIXELS: String(BUDGET) })
  // queued items stay on disk where the tests can count them
  expect((await fetch(`${detector.url}/outbox_mode`, { method: 'PUT', body: 'stopped' })).status).toBe(200)
})

afterAll(async () => {
  await detector?.stop()
  await testLoop?.cleanup()
})

const file = (bytes: Uint8Array, name: string, type = 'image/jpeg') => new File([bytes as Uint8Array<ArrayBuffer>], name, { type })

async function postDetect(bytes: Uint8Array, headers: Record<string, string> = {}, name = 'image.jpg'): Promise<Response> {
  const form = new FormData()
  form.append('file', file(bytes, name))
  return fetch(`${detector.url}/detect`, { method: 'POST', body: form, headers })
}

async function postUpload(files: File[], query = ''): Promise<Response> {
  const form = new FormData()
  for (const f of files) form.append('files', f)
  return fetch(`${detector.url}/upload${query}`, { method: 'POST', body: form })
}

/** Outbox items on disk (both queues) and what /metrics says about them. */
async function queued(): Promise<{ onDisk: string[]; metric: number }> {
  const onDisk: string[] = []
  for (const queue of ['priority', 'normal']) {
    const folder = join(testLoop.folder, 'detector', 'outbox', queue)
    onDisk.push(...(await readdir(folder).catch(() => [] as string[])).map((id) => `${queue}/${id}`))
  }
  const metrics = await (await fetch(`${detector.url}/metrics`)).text()
  const metric = metrics.split('\n').filter((l) => l.startsWith('lln_outbox_items{')).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
  return { onDisk, metric }
}

/**
 * A multipart POST written byte for byte on a TCP socket: `fetch` will not send header values that are not
 * ASCII, but cameras and scripts do.
 */
async function rawPost(path: string, headerLines: Uint8Array[], bytes: Uint8Array): Promise<{ status: number; body: string }> {
  const encoder = new TextEncoder()
  const boundary = `b${crypto.randomUUID().replaceAll('-', '')}`
  const body = Buffer.concat([
    encoder.encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
    bytes, encoder.encode(`\r\n--${boundary}--\r\n`),
  ])
  const head = Buffer.concat([
    encoder.encode(`POST ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\n`),
    ...headerLines.flatMap((line) => [line, encoder.encode('\r\n')]), encoder.encode('\r\n'),
  ])
  const { hostname, port } = new URL(detector.url)
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    // written, not ended: Bun answers a half-closed connection with nothing
    const socket = connectTcp(Number(port), hostname, () => socket.write(Buffer.concat([head, body])))
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks)))
  })
  const text = answer.toString('utf8')
  const status = Number(text.slice(9, 12))
  const rest = text.slice(text.indexOf('\r\n\r\n') + 4)
  // chunked or not: the JSON object is all the body holds
  return { status, body: rest.slice(rest.indexOf('{'), rest.lastIndexOf('}') + 1) }
}

const utf8 = (text: string) => new TextEncoder().encode(text)

describe('the pixel budget is checked from the header, before decoding', () => {
  test('/detect: JPEGs claiming 9999×9999 and 40000×40000 and a PNG bomb → 422 naming size and budget; the node keeps serving', async () => {
    for (const [bytes, size] of [[jpegClaimingSize(9999, 9999), '9999×9999'], [jpegClaimingSize(40000, 40000), '40000×40000'], [pngBomb(20000, 20000), '20000×20000']] as const) {
      const response = await postDetect(bytes)
      expect(response.status).toBe(422)
      const { detail } = await response.json()
      expect(detail).toContain(size)
      expect(detail).toContain(`pixel budget of ${BUDGET}`)
    }
    expect((await fetch(`${detector.url}/health`)).status).toBe(200)
    const good = await postDetect(astronautJpeg, { autoupload: 'disabled' })
    expect(good.status).toBe(200)
    expect((await good.json()).box_detections).toHaveLength(1)
  })

  describe('socket.io', () => {
    let client: Socket
    beforeAll(async () => {
      client = await connectDetectorClient(detector.url)
    })
    afterAll(() => { client?.close() })
    const call = (event: string, ...args: unknown[]) => client.timeout(15_000).emitWithAck(event, ...args)

    test('a raw array over the budget, and encoded bombs, get an {error} ack on detect, batch_detect and upload', async () => {
      const before = await queued()
      // a real 2100×2000 grey frame (4.2 MB): more pixels than the budget, every byte present
      const frame = { bytes: new Uint8Array(2100 * 2000).fill(128), dtype: 'uint8', shape: [2000, 2100] }
      const single = await call('detect', { image: frame, autoupload: 'disabled' })
      expect(single.error).toContain('2100×2000')
      expect(single.error).toContain(`pixel budget of ${BUDGET}`)
      const batch = await call('batch_detect', { images: [astronautJpeg, jpegClaimingSize(9999, 9999)], autoupload: 'disabled' })
      expect(batch.error).toContain('9999×9999')
      for (const image of [frame, jpegClaimingSize(9999, 9999), pngBomb(20000, 20000)]) {
        const answer = await call('upload', { image, metadata: { source: 'socket-bomb' } })
        expect(answer.error).toContain('pixel budget')
      }
      expect(await queued()).toEqual(before)
      // the same client, the same connection, still served
      expect((await call('detect', { image: astronautJpeg, autoupload: 'disabled' })).box_detections).toHaveLength(1)
    })
  })
})

describe('/upload checks every file as /detect does, and queues all or none', () => {
  test('a file over the budget → 422 naming the file; nothing queued', async () => {
    const before = await queued()
    const response = await postUpload([file(jpegClaimingSize(40000, 40000), 'huge-header.jpg')])
    expect(response.status).toBe(422)
    const { detail } = await response.json()
    expect(detail).toContain('huge-header.jpg')
    expect(detail).toContain('40000×40000')
    expect(await queued()).toEqual(before)
  })

  test('good, broken, good → 422 naming the broken file and nothing queued; good, good → both queued', async () => {
    const before = await queued()
    const broken = astronautJpeg.slice(0, 3000)
    const response = await postUpload([file(coffeeJpeg, 'first-good.jpg'), file(broken, 'broken.jpg'), file(astronautJpeg, 'second-good.jpg')])
    expect(response.status).toBe(422)
    const { detail } = await response.json()
    expect(detail).toContain('broken.jpg')
    expect(detail).not.toContain('good.jpg')
    expect(await queued()).toEqual(before)

    const bomb = await postUpload([file(coffeeJpeg, 'ok.jpg'), file(pngBomb(20000, 20000), 'bomb.png', 'image/png')])
    expect(bomb.status).toBe(422)
    expect((await bomb.json()).detail).toContain('bomb.png')
    expect(await queued()).toEqual(before)

    const ok = await postUpload([file(coffeeJpeg, 'a.jpg'), file(astronautJpeg, 'b.jpg')], '?source=atomic-test')
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual([200, 'OK'])
    const after = await queued()
    expect(after.onDisk.length).toBe(before.onDisk.length + 2)
    expect(after.metric).toBe(before.metric + 2)
  })
})

describe('header values', () => {
  test('UTF-8 tags arrive intact; a header that is not UTF-8 is refused naming it', async () => {
    const ok = await rawPost('/detect', [utf8('autoupload: disabled'), utf8('tags: Straße,猫'), utf8('source: Köln')], astronautJpeg)
    expect(ok.status).toBe(200)
    const metadata = JSON.parse(ok.body)
    expect(metadata.tags).toEqual(['Straße', '猫'])
    expect(metadata.source).toBe('Köln')
    // "Straße" in latin-1: the lone 0xDF byte is not UTF-8
    const latin1 = await rawPost('/detect', [utf8('autoupload: disabled'), Uint8Array.from([...utf8('tags: Stra'), 0xdf, ...utf8('e')])], astronautJpeg)
    expect(latin1.status).toBe(422)
    expect(JSON.parse(latin1.body).detail).toMatch(/tags.*UTF-8/)
  })

  test('creation-date: ISO 8601 and the Loop\'s own form are kept; garbage → 422 on /detect and /upload', async () => {
    for (const date of ['2026-11-28T10:00:00', '2026-11-28T10:00:00.123456+02:00', '2026-11-28 10:00:00Z', '2026-11-28_10:00:00.123456', '2026-11-28']) {
      const response = await postDetect(coffeeJpeg, { autoupload: 'disabled', 'creation-date': date })
      expect(response.status).toBe(200)
      expect((await response.json()).created).toBe(date)
    }
    for (const date of ['garbage', '2026-13-01T00:00:00', '2026-02-30', '2026-11-28T25:00:00', '28.11.2026']) {
      const response = await postDetect(coffeeJpeg, { autoupload: 'disabled', 'creation-date': date })
      expect(response.status).toBe(422)
      expect((await response.json()).detail).toContain('creation')
    }
    const before = await queued()
    const upload = await postUpload([file(coffeeJpeg, 'a.jpg')], '?creation_date=garbage')
    expect(upload.status).toBe(422)
    expect((await upload.json()).detail).toContain('creation_date')
    expect(await queued()).toEqual(before)
  })
})
