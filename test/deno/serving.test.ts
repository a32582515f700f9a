/**
 * Serving on the runtime that runs this file: `bun test` takes the Bun path of src/runtime/, and
 * serving-under-deno.test.ts runs this same file with `deno test` (the `bun:test` shim), which takes the Deno
 * path. One Elysia app and socket.io on one port: REST, the 413/431 answers, socket.io events with acks and
 * binary attachments over WebSocket and over long-polling, a frame over the cap, a port in use, a stop.
 */
import { expect, test } from 'bun:test'
import { Elysia } from 'elysia'
import { io as connect, type Socket } from 'socket.io-client'
import { setLogSink, createLogger } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { createSocketIo, serve, type RunningServer } from '../../src/node/http-server.ts'
import { RUNTIME } from '../../src/runtime/runtime-name.ts'

const EXPECTED_RUNTIME = 'Deno' in globalThis ? 'deno' : 'bun'
const MESSAGE_CAP = 256 * 1024

const logLines: string[] = []
setLogSink((line) => void logLines.push(line))

async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

interface Served {
  server: RunningServer
  metrics: MetricsRegistry
}

async function withServer(run: (served: Served) => Promise<void>): Promise<void> {
  const metrics = new MetricsRegistry()
  const socketIo = createSocketIo({ maxMessageBytes: MESSAGE_CAP, log: createLogger('test.serving'), metrics })
  socketIo.io.on('connection', (socket) => {
    socket.on('measure', (data: { name: string; image: Uint8Array }, ack: (answer: unknown) => void) => {
      const bytes = new Uint8Array(data.image)
      ack({ name: data.name, bytes: bytes.byteLength, sum: bytes.reduce((a, b) => a + b, 0), binary: data.image instanceof Uint8Array })
    })
    socket.on('echo back', (ack: (answer: unknown) => void) => ack({ image: new Uint8Array([1, 2, 3, 250]) }))
  })
  const app = new Elysia()
    .get('/hello', () => ({ hello: 'world', runtime: RUNTIME }))
    .get('/who-am-i', ({ request, server }) => ({ address: server?.requestIP(request)?.address }))
    .post('/count', async ({ request }) => ({ bytes: (await request.arrayBuffer()).byteLength }), { parse: 'none' })
  const server = serve(app, { port: 0, hostname: '127.0.0.1', socketIo, maxRequestBodyBytes: 64 * 1024 })
  try {
    await run({ server, metrics })
  } finally {
    await server.stop(true)
  }
}

async function connected(url: string, transports: ('websocket' | 'polling')[]): Promise<Socket> {
  const client = connect(url, { path: '/ws/socket.io', transports, reconnection: false })
  await eventually(() => client.connected, `a socket.io connection over ${transports.join(', ')}`)
  return client
}

test('the runtime edge knows which runtime runs it', () => {
  expect(RUNTIME).toBe(EXPECTED_RUNTIME)
})

test('REST on the same port as socket.io: a route, a body, the client address, 413 and 431 with a detail', async () => {
  await withServer(async ({ server }) => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`)
    expect(await (await fetch(`${server.url}/hello`)).json()).toEqual({ hello: 'world', runtime: EXPECTED_RUNTIME })
    expect(await (await fetch(`${server.url}/count`, { method: 'POST', body: new Uint8Array(1000) })).json()).toEqual({ bytes: 1000 })
    // the local loop's rate limit counts requests by the client's address
    expect(await (await fetch(`${server.url}/who-am-i`)).json()).toEqual({ address: '127.0.0.1' })
    // the socket.io message cap raises the body limit to itself
    const big = await fetch(`${server.url}/count`, { method: 'POST', body: new Uint8Array(MESSAGE_CAP + 1) })
    expect(big.status).toBe(413)
    expect(await big.json()).toEqual({ detail: `request body larger than ${MESSAGE_CAP} bytes` })
    const headers = await fetch(`${server.url}/hello`, { headers: { 'x-padding': 'p'.repeat(20_000) } })
    expect(headers.status).toBe(431)
    expect(await headers.json()).toEqual({ detail: 'request headers larger than 16384 bytes (request line and header lines)' })
    expect((await fetch(`${server.url}/nowhere`)).status).toBe(404)
  })
}, 30_000)

for (const transports of [['websocket'], ['polling'], ['polling', 'websocket']] as ('websocket' | 'polling')[][]) {
  test(`socket.io over ${transports.join(' → ')}: acks, binary attachments both ways`, async () => {
    await withServer(async ({ server }) => {
      const client = await connected(server.url, transports)
      try {
        const image = Uint8Array.from({ length: 50_000 }, (_, i) => i % 251)
        const sum = image.reduce((a, b) => a + b, 0)
        for (let round = 0; round < 3; round++) {
          expect(await client.timeout(10_000).emitWithAck('measure', { name: `frame ${round}`, image })).toEqual({ name: `frame ${round}`, bytes: 50_000, sum, binary: true })
        }
        const answer = (await client.timeout(10_000).emitWithAck('echo back')) as { image: ArrayBuffer | Uint8Array }
        expect([...new Uint8Array(answer.image)]).toEqual([1, 2, 3, 250])
        if (transports.length === 2) await eventually(() => client.io.engine.transport.name === 'websocket', 'the upgrade to WebSocket')
        expect(client.connected).toBe(true)
      } finally {
        client.close()
      }
    })
  }, 30_000)
}

test('a WebSocket frame over the socket.io message cap closes that connection; it is logged and counted', async () => {
  await withServer(async ({ server, metrics }) => {
    const client = await connected(server.url, ['websocket'])
    const reasons: string[] = []
    client.on('disconnect', (reason) => void reasons.push(reason))
    try {
      client.emit('measure', { name: 'too big', image: new Uint8Array(MESSAGE_CAP + 1000) })
      await eventually(() => reasons.length > 0, 'the disconnect after an oversized frame')
      await eventually(() => metrics.render().includes('socket_io_errors_total{reason="frame_too_large"} 1'), 'the frame_too_large count')
      expect(logLines.some((line) => line.includes(`larger than the socket.io message cap of ${MESSAGE_CAP} bytes`))).toBe(true)
    } finally {
      client.close()
    }
    // the server still serves
    const again = await connected(server.url, ['websocket'])
    expect(await again.timeout(10_000).emitWithAck('measure', { name: 'small', image: new Uint8Array([7]) })).toEqual({ name: 'small', bytes: 1, sum: 7, binary: true })
    again.close()
  })
}, 30_000)

test('a second server on a port in use fails to start (no shared port); a stopped server frees its port', async () => {
  const first = serve(new Elysia().get('/who', () => 'first'), { port: 0, hostname: '127.0.0.1' })
  const { port } = first
  try {
    expect(() => serve(new Elysia().get('/who', () => 'second'), { port, hostname: '127.0.0.1' })).toThrow(`cannot listen on 127.0.0.1:${port}: the port is in use`)
    for (let i = 0; i < 10; i++) expect(await (await fetch(`${first.url}/who`)).text()).toBe('first')
  } finally {
    await first.stop()
  }
  const second = serve(new Elysia().get('/who', () => 'second'), { port, hostname: '127.0.0.1' })
  try {
    expect(await (await fetch(`${second.url}/who`)).text()).toBe('second')
  } finally {
    await second.stop()
  }
}, 30_000)

test('stop() lets a request in flight finish and then refuses new connections', async () => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  let entered = false
  const server = serve(new Elysia().get('/slow', async () => {
    entered = true
    await gate
    return 'finished'
  }), { port: 0, hostname: '127.0.0.1' })
  const inFlight = fetch(`${server.url}/slow`).then((response) => response.text())
  await eventually(() => entered, 'the slow request to arrive')
  let stopped = false
  const stopping = server.stop().then(() => void (stopped = true))
  await new Promise((resolve) => setTimeout(resolve, 200))
  expect(stopped).toBe(false)
  release()
  expect(await inFlight).toBe('finished')
  await stopping
  const afterStop = await fetch(`${server.url}/slow`).then(() => 'answered', (error: Error) => error.message)
  expect(afterStop).not.toBe('answered')
}, 30_000)
