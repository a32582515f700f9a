import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { io as connect, type Socket } from 'socket.io-client'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import { decodeImage } from '../../src/inference/image-decoding.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { waitFor } from '../support/temp.ts'
import { connectDetectorClient, startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

// Issue 11 (5–8) against a real detector and a real local loop: what the wire does with oversized and hostile input.
setDefaultTimeout(120_000)

const fixtures = join(import.meta.dir, '../fixtures')
const astronautJpeg = new Uint8Array(await readFile(join(fixtures, 'astronaut.jpg')))
const chelseaJpeg = new Uint8Array(await readFile(join(fixtures, 'chelsea.jpg')))

let testLoop: TestLoop
let loop: LocalLoop
let detector: DetectorNode
const logLines: string[] = []
let restoreSink: ((line: string) => void) | undefined

beforeAll(async () => {
  restoreSink = setLogSink((line) => {
    logLines.push(line)
  })
  testLoop = await startTestLoop()
  loop = testLoop.loop
  detector = await startTestDetector(loop.url, join(testLoop.folder, 'detector'))
})

afterAll(async () => {
  await detector?.stop()
  await testLoop?.cleanup()
  if (restoreSink) setLogSink(restoreSink)
})

/** Log lines written while `work` ran. */
async function linesDuring(work: () => Promise<void>): Promise<string[]> {
  const from = logLines.length
  await work()
  return logLines.slice(from)
}

const metricsText = async () => (await fetch(`${detector.url}/metrics`)).text()
function counterValue(text: string, pattern: RegExp): number {
  const match = text.split('\n').find((line) => pattern.test(line))
  return match ? Number(match.split(' ').at(-1)) : 0
}

describe('request bodies: capped, and never echoed or logged in full (5, 8)', () => {
  const settingRoutes = ['/model_version', '/outbox_mode', '/operation_mode']

  test('a multi-MB body to a setting route is a 413 with a short detail naming the limit', async () => {
    const body = 'x'.repeat(5 * 1024 * 1024)
    const lines = await linesDuring(async () => {
      for (const path of settingRoutes) {
        const response = await fetch(`${detector.url}${path}`, { method: 'PUT', body })
        const text = await response.text()
        expect(response.status).toBe(413)
        expect(text.length).toBeLessThan(300)
        expect(JSON.parse(text).detail).toMatch(/request body larger than \d+ bytes/)
      }
    })
    for (const line of lines) expect(line.length).toBeLessThan(2_000)
  })

  test('a 10 KB and a 1000-character garbage body get a 4xx whose answer and log line stay short', async () => {
    for (const size of [10_000, 1_000]) {
      const body = 'garbage-'.repeat(size / 8)
      const lines = await linesDuring(async () => {
        for (const path of settingRoutes) {
          const response = await fetch(`${detector.url}${path}`, { method: 'PUT', body })
          const text = await response.text()
          expect(response.status).toBeGreaterThanOrEqual(400)
          expect(response.status).toBeLessThan(500)
          expect(text.length).toBeLessThan(400)
        }
      })
      for (const line of lines) expect(line.length).toBeLessThan(1_000)
    }
  })

  test('the echo of a bad value is cut at about 100 characters and marked', async () => {
    const response = await fetch(`${detector.url}/operation_mode`, { method: 'PUT', body: 'z'.repeat(900) })
    expect(response.status).toBe(422)
    const { detail } = (await response.json()) as { detail: string }
    expect(detail).toContain('z'.repeat(90))
    expect(detail).not.toContain('z'.repeat(110))
    expect(detail).toContain('…')
  })

  test('a declared body over the server limit (128 MiB) is a 413 with a detail, not an empty answer', async () => {
    const declared = await fetch(`${detector.url}/detect`, { method: 'POST', body: new Uint8Array(129 * 1024 * 1024) })
    expect(declared.status).toBe(413)
    expect(((await declared.json()) as { detail: string }).detail).toMatch(/request body larger than \d+ bytes/)
  })

  test('a header block over the limit is a 431 with a detail naming the header limit', async () => {
    const response = await fetch(`${detector.url}/about`, { headers: { 'x-padding': 'p'.repeat(20_000) } })
    expect(response.status).toBe(431)
    expect(((await response.json()) as { detail: string }).detail).toMatch(/request headers larger than \d+ bytes/)
    expect((await fetch(`${detector.url}/about`)).status).toBe(200)
  })
})

describe('socket.io (6, 7)', () => {
  let client: Socket
  beforeAll(async () => {
    client = await connectDetectorClient(detector.url)
  })
  afterAll(() => {
    client?.close()
  })
  const call = (event: string, ...args: unknown[]) => client.timeout(60_000).emitWithAck(event, ...args)

  test('event names that are JavaScript object members are unknown events, and counted as unknown', async () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__']
    const before = counterValue(await metricsText(), /detector_socket_events_total\{event="unknown",outcome="error"\}/)
    for (const name of names) {
      const answer = await call(name, { x: 1 })
      expect(answer).toEqual({ error: expect.stringContaining(`unknown event "${name}"`) })
    }
    const text = await metricsText()
    expect(counterValue(text, /detector_socket_events_total\{event="unknown",outcome="error"\}/) - before).toBe(names.length)
    for (const name of names) expect(text).not.toContain(`event="${name}"`)
  })

  test('a 10 KB event name or mode string is answered with a capped echo', async () => {
    const unknown = (await call('e'.repeat(10_000))) as { error: string }
    expect(unknown.error).toContain('unknown event')
    expect(unknown.error.length).toBeLessThan(400)
    const mode = (await call('set_outbox_mode', 'm'.repeat(10_000))) as { error: string }
    expect(mode.error).toContain('outbox mode')
    expect(mode.error.length).toBeLessThan(400)
    const version = (await call('set_model_version_mode', '1'.repeat(5_000) + 'x')) as { error: string }
    expect(version.error).toContain('Invalid version number')
    expect(version.error.length).toBeLessThan(400)
  })

  test('batch_detect with 64 raw frames and with 64 JPEGs answers 64 items', async () => {
    const rgb = await decodeImage({ kind: 'encoded', bytes: astronautJpeg })
    const frame = () => ({ bytes: rgb.data.slice(), dtype: 'uint8', shape: [rgb.height, rgb.width, 3] })
    const raw = (await call('batch_detect', { images: Array.from({ length: 64 }, frame), autoupload: 'disabled' })) as { items: { box_detections: unknown[] }[] }
    expect(raw.items).toHaveLength(64)
    for (const item of raw.items) expect(item.box_detections).toHaveLength(1)
    const encoded = (await call('batch_detect', { images: Array.from({ length: 64 }, () => astronautJpeg.slice()), autoupload: 'disabled' })) as { items: unknown[] }
    expect(encoded.items).toHaveLength(64)
  })

  test('a batch over the attachment limit gets an {error} naming the limit; the connection stays', async () => {
    const lines = await linesDuring(async () => {
      const answer = (await call('batch_detect', { images: Array.from({ length: 300 }, () => chelseaJpeg.slice()), autoupload: 'disabled' })) as { error?: string }
      expect(answer.error).toMatch(/300 binary attachments.*at most 256/)
    })
    expect(client.connected).toBe(true)
    expect(lines.some((line) => line.includes('socket.io event refused') && line.includes('300 binary attachments'))).toBe(true)
    expect((await call('about')).state).toBe('online')
  })

  test('a malformed packet is logged as one line and counted before the connection is dropped', async () => {
    const other = connect(detector.url, { path: '/ws/socket.io', transports: ['websocket'], reconnection: false })
    await waitFor(() => other.connected, 10_000, 'second client connected')
    const before = counterValue(await metricsText(), /socket_io_errors_total\{reason="malformed"\}/)
    const disconnected = new Promise<string>((resolve) => other.on('disconnect', (reason) => resolve(reason)))
    const lines = await linesDuring(async () => {
      // a binary event that declares no attachments: the socket.io parser refuses it
      ;(other.io.engine as unknown as { write(data: string): void }).write('5-["detect",{}]')
      await disconnected
      await waitFor(() => logLines.some((line) => line.includes('Illegal attachments')), 5_000, 'the parser error in the log')
    })
    const line = lines.find((l) => l.includes('Illegal attachments'))!
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', msg: 'socket.io packet refused' })
    expect(counterValue(await metricsText(), /socket_io_errors_total\{reason="malformed"\}/) - before).toBe(1)
    other.close()
    expect((await call('about')).state).toBe('online')
  })

  test('a frame over the message cap drops that client with a log line naming the cap', async () => {
    const big = connect(detector.url, { path: '/ws/socket.io', transports: ['websocket'], reconnection: false })
    await waitFor(() => big.connected, 10_000, 'big client connected')
    const disconnected = new Promise((resolve) => big.on('disconnect', resolve))
    const lines = await linesDuring(async () => {
      big.emit('detect', { image: new Uint8Array(70 * 1024 * 1024) })
      await disconnected
      await waitFor(() => logLines.some((line) => line.includes('larger than the socket.io message cap')), 5_000, 'the cap in the log')
    })
    expect(lines.some((line) => line.includes(String(64 * 1024 * 1024)))).toBe(true)
    big.close()
  })
})
