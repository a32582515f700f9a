import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Elysia } from 'elysia'
import { io as connect, type Socket } from 'socket.io-client'
import { RefusedEvent } from '../../src/node/bounded-socket-parser.ts'
import { createSocketIo, serve, type RunningServer } from '../../src/node/http-server.ts'
import { createLogger, setLogSink } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { NodeRuntime } from '../../src/node/node-runtime.ts'
import { waitFor } from '../support/temp.ts'

// The shared server of every node and the local loop: request limits answered with a detail (issue 11: 5, 8)
// and socket.io packets over the limits answered, logged and counted (issue 11: 7).

const logLines: string[] = []
let restoreSink: ((line: string) => void) | undefined
beforeAll(() => {
  restoreSink = setLogSink((line) => {
    logLines.push(line)
  })
})
afterAll(() => {
  if (restoreSink) setLogSink(restoreSink)
})

/** A body of `bytes` sent in chunks, without a Content-Length. */
function chunkedBody(bytes: number): ReadableStream<Uint8Array> {
  let left = bytes
  return new ReadableStream({
    pull(controller) {
      if (left <= 0) return controller.close()
      const size = Math.min(left, 16 * 1024)
      left -= size
      controller.enqueue(new Uint8Array(size).fill(97))
    },
  })
}

describe('request limits of a node', () => {
  const node = new NodeRuntime({ name: 'limits node', uuid: 'u-limits', nodeType: 'node', port: 0, hostname: '127.0.0.1', repeatIntervalMs: 60_000, maxRequestBodyBytes: 64 * 1024 })
  node.app.post('/echo', async ({ request }) => ({ bytes: (await request.arrayBuffer()).byteLength }), { parse: 'none' })
  const started = node.start()
  afterAll(() => node.shutdown())

  test('a declared body over the server limit is a 413 naming the limit, before the route reads it', async () => {
    const { url } = await started
    const response = await fetch(`${url}/echo`, { method: 'POST', body: new Uint8Array(1024 * 1024) })
    expect(response.status).toBe(413)
    expect(await response.json()).toEqual({ detail: 'request body larger than 65536 bytes' })
  })

  test('a chunked body is cut off where it passes the limit (413); a smaller one arrives whole', async () => {
    const { url } = await started
    const big = await fetch(`${url}/echo`, { method: 'POST', body: chunkedBody(1024 * 1024), duplex: 'half' } as RequestInit)
    expect(big.status).toBe(413)
    expect(await big.json()).toEqual({ detail: 'request body larger than 65536 bytes' })
    const small = await fetch(`${url}/echo`, { method: 'POST', body: chunkedBody(40_000), duplex: 'half' } as RequestInit)
    expect(small.status).toBe(200)
    expect(await small.json()).toEqual({ bytes: 40_000 })
  })

  test('headers over 16 KiB are a 431 naming the header limit; past 64 KiB Bun itself refuses them', async () => {
    const { url } = await started
    const over = await fetch(`${url}/health`, { headers: { 'x-padding': 'p'.repeat(20_000) } })
    expect(over.status).toBe(431)
    expect(((await over.json()) as { detail: string }).detail).toBe('request headers larger than 16384 bytes (request line and header lines)')
    // Bun's parser answers these before any JavaScript runs: the status is right, the body stays empty
    expect((await fetch(`${url}/health`, { headers: { 'x-padding': 'p'.repeat(100_000) } })).status).toBe(431)
    expect((await fetch(`${url}/health`)).status).toBe(200)
  })

  test('refusals are counted in http_requests_total with their status and logged as one line each', async () => {
    const { url } = await started
    const from = logLines.length
    expect((await fetch(`${url}/health`, { headers: { 'x-padding': 'p'.repeat(20_000) } })).status).toBe(431)
    expect((await fetch(`${url}/echo`, { method: 'POST', body: new Uint8Array(100_000) })).status).toBe(413)
    expect((await fetch(`${url}/socketio`, { method: 'PUT', body: 'o'.repeat(2_000) })).status).toBe(413)
    // a route's answer is counted after it was sent (onAfterResponse): wait for that
    await waitFor(() => /http_requests_total\{method="PUT",route="\/socketio",status="413"\} 1/.test(node.metrics.render()), 5_000, 'the 413 of PUT /socketio counted')
    const metrics = node.metrics.render()
    expect(metrics).toMatch(/http_requests_total\{method="GET",route="\(refused\)",status="431"\} [1-9]/)
    expect(metrics).toMatch(/http_requests_total\{method="POST",route="\(refused\)",status="413"\} [1-9]/)
    expect(metrics).toMatch(/http_requests_total\{method="PUT",route="\/socketio",status="413"\} 1/)
    const refusals = logLines.slice(from).map((line) => JSON.parse(line)).filter((record) => record.msg === 'request refused')
    expect(refusals.map((record) => record.status)).toEqual([431, 413, 413])
  })

  test('PUT /debug_logging and /socketio take at most 1 KiB (413 beyond); a long wrong body is a short 400', async () => {
    const { url } = await started
    for (const path of ['/debug_logging', '/socketio']) {
      const big = await fetch(`${url}${path}`, { method: 'PUT', body: 'o'.repeat(30_000) })
      expect(big.status).toBe(413)
      expect(await big.json()).toEqual({ detail: 'request body larger than 1024 bytes' })
      const wrong = await fetch(`${url}${path}`, { method: 'PUT', body: 'o'.repeat(1000) })
      expect(wrong.status).toBe(400)
      expect(await wrong.json()).toEqual({ detail: 'Invalid state' })
    }
  })
})

describe('socket.io limits', () => {
  let server: RunningServer
  let client: Socket
  const metrics = new MetricsRegistry()
  beforeAll(async () => {
    const socketIo = createSocketIo({ maxAttachments: 4, maxEventBytes: 100_000, log: createLogger('test.socket.io'), metrics })
    socketIo.io.on('connection', (socket) => {
      socket.on('store', (data: unknown, ack: (answer: unknown) => void) => {
        if (data instanceof RefusedEvent) ack({ error: data.message })
        else ack({ parts: (data as { parts: Uint8Array[] }).parts.length })
      })
    })
    server = serve(new Elysia(), { port: 0, hostname: '127.0.0.1', socketIo })
    client = connect(server.url, { path: '/ws/socket.io', transports: ['websocket'], reconnection: false })
    await waitFor(() => client.connected, 10_000, 'client connected')
  })
  afterAll(async () => {
    client?.close()
    await server?.stop(true)
  })
  const store = (parts: Uint8Array[]) => client.timeout(10_000).emitWithAck('store', { parts })
  const counted = (reason: string) => Number(/ (\d+)$/.exec(metrics.render().split('\n').find((l) => l.includes(`socket_io_errors_total{reason="${reason}"}`)) ?? ' 0')![1])

  test('up to the attachment limit an event arrives whole', async () => {
    expect(await store([new Uint8Array(10), new Uint8Array(10), new Uint8Array(10), new Uint8Array(10)])).toEqual({ parts: 4 })
  })

  test('more attachments than allowed: an {error} ack naming the limit, a log line, a count; the connection stays', async () => {
    const from = logLines.length
    expect(await store(Array.from({ length: 5 }, () => new Uint8Array(10)))).toEqual({ error: 'store: 5 binary attachments; at most 4 per event' })
    expect(client.connected).toBe(true)
    expect(logLines.slice(from).map((line) => JSON.parse(line))).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'socket.io event refused', event: '"store"', reason: 'too_many_attachments' }))
    expect(counted('too_many_attachments')).toBe(1)
    expect(await store([new Uint8Array(1)])).toEqual({ parts: 1 })
  })

  test('attachments over the byte limit in all: the rest is dropped as it arrives, then an {error} ack', async () => {
    expect(await store([new Uint8Array(60_000), new Uint8Array(60_000), new Uint8Array(60_000)])).toEqual({ error: 'store: binary attachments of more than 100000 bytes in all' })
    expect(counted('attachments_too_large')).toBe(1)
    expect(await store([new Uint8Array(60_000)])).toEqual({ parts: 1 })
  })

  test('a refused handshake is logged and counted', async () => {
    const from = logLines.length
    const response = await fetch(`${server.url}/ws/socket.io/?EIO=4&transport=${'x'.repeat(5_000)}`)
    expect(response.status).toBe(400)
    const line = logLines.slice(from).find((l) => l.includes('socket.io request refused'))
    expect(line).toBeDefined()
    expect(line!.length).toBeLessThan(3_000)
    expect(counted('handshake')).toBe(1)
  })
})

describe('one server per port', () => {
  test('a second server on a port in use fails to start instead of sharing the port (Elysia asks Bun for reusePort)', async () => {
    const first = serve(new Elysia().get('/who', () => 'first'), { port: 0, hostname: '127.0.0.1' })
    try {
      expect(() => serve(new Elysia().get('/who', () => 'second'), { port: first.port, hostname: '127.0.0.1' })).toThrow(`cannot listen on 127.0.0.1:${first.port}: the port is in use`)
      for (let i = 0; i < 20; i++) expect(await (await fetch(`${first.url}/who`)).text()).toBe('first')
    } finally {
      await first.stop(true)
    }
  })
})
