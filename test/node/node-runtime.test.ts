import { describe, expect, test, afterAll } from 'bun:test'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { NodeRuntime } from '../../src/node/node-runtime.ts'
import { getLogLevel, parseLevel, setLogLevel, type Logger } from '../../src/foundation/log.ts'
import { reachableFrom } from '../../src/node/listen-address.ts'
import { makeTempDir } from '../support/temp.ts'

async function readFirstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader()
  let text = ''
  while (!text.includes('\n')) {
    const { value, done } = await reader.read()
    if (done) break
    text += new TextDecoder().decode(value)
  }
  reader.releaseLock()
  return text.split('\n')[0]!
}

describe('node runtime in a child process', () => {
  test('SIGTERM during a slow request lets it finish, persists state and exits 0', async () => {
    const temp = await makeTempDir()
    const marker = join(temp.path, 'shutdown-marker')
    const child = Bun.spawn([process.execPath, join(import.meta.dir, 'fixtures/slow-node.ts'), marker], { stdout: 'pipe', stderr: 'inherit', env: process.env })
    try {
      const { port } = JSON.parse(await readFirstLine(child.stdout))
      const slow = fetch(`http://127.0.0.1:${port}/slow`)
      await Bun.sleep(300) // the request is in flight
      child.kill('SIGTERM')
      const response = await slow
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual({ finished: true })
      expect(await child.exited).toBe(0)
      expect(await readFile(marker, 'utf8')).toBe('persisted')
      // no new connections after shutdown
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()
    } finally {
      child.kill('SIGKILL')
      await temp.cleanup()
    }
  })
})

describe('repeated signals', () => {
  async function startSlowNode(slowMs: number) {
    const temp = await makeTempDir()
    const child = Bun.spawn([process.execPath, join(import.meta.dir, 'fixtures/slow-node.ts'), join(temp.path, 'marker'), String(slowMs)], { stdout: 'pipe', stderr: 'inherit', env: process.env })
    const { port } = JSON.parse(await readFirstLine(child.stdout))
    const slow = fetch(`http://127.0.0.1:${port}/slow`).then((r) => r.status, () => 'cut off')
    await Bun.sleep(300) // the request is in flight
    return { child, slow, cleanup: async () => (child.kill('SIGKILL'), await temp.cleanup()) }
  }

  test('the same signal twice at once (terminal and npm both deliver Ctrl-C) is one graceful shutdown', async () => {
    const { child, slow, cleanup } = await startSlowNode(1500)
    try {
      child.kill('SIGINT')
      await Bun.sleep(100) // a pending signal is not queued twice: let the first one be handled
      child.kill('SIGINT')
      expect(await slow).toBe(200)
      expect(await child.exited).toBe(0)
    } finally {
      await cleanup()
    }
  })

  test('a second signal a while later exits at once', async () => {
    const { child, slow, cleanup } = await startSlowNode(30_000)
    try {
      child.kill('SIGTERM')
      await Bun.sleep(1_500)
      child.kill('SIGTERM')
      expect(await child.exited).toBe(130)
      expect(await slow).toBe('cut off')
    } finally {
      await cleanup()
    }
  })
})

describe('the listening log line', () => {
  test('names the address actually bound, a URL to reach it and who can reach it', async () => {
    const lines: Record<string, unknown>[] = []
    const log: Logger = {
      debug() {}, warn() {}, error() {},
      info: (msg, fields) => void lines.push({ msg, ...fields }),
      child: () => log,
    }
    const node = new NodeRuntime({ name: 'bind node', uuid: 'u-2', nodeType: 'node', port: 0, hostname: '127.0.0.1', repeatIntervalMs: 60_000, log })
    const { port } = await node.start()
    await node.shutdown()
    expect(lines.find((line) => line.msg === 'listening')).toMatchObject({
      address: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}`, reachableFrom: 'this machine only',
    })
  })

  test('a wildcard or network address is reported as exposed, without authentication', () => {
    // decided without binding: tests listen on 127.0.0.1 only
    expect(reachableFrom('0.0.0.0')).toStartWith('every network interface of this machine, without authentication')
    expect(reachableFrom('::')).toStartWith('every network interface of this machine, without authentication')
    expect(reachableFrom('192.168.1.5')).toStartWith('the network of 192.168.1.5, without authentication')
    expect(reachableFrom('0.0.0.0')).toContain('--bind 127.0.0.1')
    for (const loopback of ['127.0.0.1', '127.0.1.1', '::1', 'localhost']) expect(reachableFrom(loopback)).toBe('this machine only')
  })
})

describe('generic routes', () => {
  const node = new NodeRuntime({ name: 'routes node', uuid: 'u-1', nodeType: 'node', port: 0, hostname: '127.0.0.1', repeatIntervalMs: 60_000 })
  let notReady: string | undefined = 'model not loaded'
  node.setHooks({ notReadyReason: () => notReady })
  const started = node.start()
  afterAll(() => node.shutdown())

  test('/health answers while /ready reports why it is not ready, then ready', async () => {
    const { url } = await started
    const health = await fetch(`${url}/health`)
    expect(health.status).toBe(200)
    expect((await health.json()).status).toBe('ok')
    const notReadyResponse = await fetch(`${url}/ready`)
    expect(notReadyResponse.status).toBe(503)
    expect(await notReadyResponse.json()).toEqual({ ready: false, reason: 'model not loaded' })
    notReady = undefined
    const ready = await fetch(`${url}/ready`)
    expect(ready.status).toBe(200)
  })

  test('/metrics is Prometheus text with request counts and readiness', async () => {
    const { url } = await started
    await fetch(`${url}/health`)
    const text = await (await fetch(`${url}/metrics`)).text()
    expect(text).toContain('# TYPE lln_http_requests_total counter')
    expect(text).toMatch(/lln_http_requests_total\{method="GET",route="\/health",status="200"\} \d+/)
    expect(text).toMatch(/lln_node_ready \d/)
    expect(text).toContain('lln_node_info{name="routes node",node_type="node",uuid="u-1"} 1')
  })

  test('PUT /debug_logging and /socketio accept on/off and reject anything else with 400', async () => {
    const { url } = await started
    const put = (path: string, body: string) => fetch(`${url}${path}`, { method: 'PUT', body })
    expect(await (await put('/debug_logging', 'on')).json()).toBe('on')
    expect(await (await put('/debug_logging', 'off')).json()).toBe('off')
    const bad = await put('/debug_logging', 'maybe')
    expect(bad.status).toBe(400)
    expect(await bad.json()).toEqual({ detail: 'Invalid state' })
    expect(await (await put('/socketio', 'off')).json()).toBe('off')
    expect(node.repeatLoop.muted).toBe(true)
    expect(await (await put('/socketio', 'on')).json()).toBe('on')
    expect(node.repeatLoop.muted).toBe(false)
    expect((await put('/socketio', '')).status).toBe(400)
  })
  const levelBefore = getLogLevel()
  afterAll(() => setLogLevel(levelBefore))
})

describe('log levels', () => {
  test('only the four level names parse; Object.prototype members (LOG_LEVEL=constructor) do not', () => {
    expect(['debug', 'INFO', ' warn ', 'error'].map(parseLevel)).toEqual(['debug', 'info', 'warn', 'error'])
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'verbose']) expect(parseLevel(name)).toBeUndefined()
  })
})
