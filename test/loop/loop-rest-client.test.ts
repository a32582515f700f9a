import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { Type } from '@sinclair/typebox'
import { ImageIdsResponse } from '../../src/contract/index.ts'
import { ConfigError } from '../../src/config/read-settings.ts'
import { LoopError } from '../../src/loop/loop-error.ts'
import { LoopRestClient, type LoopRestClientOptions } from '../../src/loop/loop-rest-client.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { makeTempDir } from '../support/temp.ts'
import { closedPort, makeTestCertificates, startScriptedLoop, type ScriptedLoop } from './scripted-loop.ts'

let loop: ScriptedLoop
beforeEach(() => {
  loop = startScriptedLoop()
})
afterEach(async () => {
  await loop.stop()
})

function client(extra: Partial<LoopRestClientOptions> = {}): LoopRestClient {
  return new LoopRestClient({ baseUrl: loop.url, username: 'alice', password: 'secret', ...extra })
}

async function expectLoopError(promise: Promise<unknown>): Promise<LoopError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(LoopError)
    return error as LoopError
  }
  throw new Error('expected a LoopError, but the call succeeded')
}

/** Records the 429 delays the client asks for instead of waiting them. */
function recordingSleep() {
  const delays: number[] = []
  return { delays, sleep: async (ms: number) => void delays.push(ms) }
}

describe('login and session', () => {
  test('form login once, then the session cookie on every call under /api', async () => {
    loop.route = (req, { loggedIn }) => (loggedIn ? Response.json({ image_ids: ['a', 'b'] }) : new Response('', { status: 401 }))
    const rest = client()
    expect(rest.hasSession).toBe(false)
    expect(await rest.getJson('/zz/projects/p/data', ImageIdsResponse, { query: { state: 'complete' } })).toEqual({ image_ids: ['a', 'b'] })
    await rest.getJson('/zz/projects/p/data', ImageIdsResponse)
    const login = loop.requests.find((r) => r.path === '/api/login')!
    expect(login.contentType).toBe('application/x-www-form-urlencoded')
    expect(Object.fromEntries(new URLSearchParams(login.body))).toEqual({ username: 'alice', password: 'secret' })
    expect(loop.count('/api/login')).toBe(1)
    const calls = loop.requests.filter((r) => r.path === '/api/zz/projects/p/data')
    expect(calls.map((r) => r.cookie)).toEqual(['session=s1', 'session=s1'])
    expect(calls[0]!.search).toBe('?state=complete')
    expect(rest.cookieHeader()).toBe('session=s1')
  })

  test('ensureLogin(true) logs in again; concurrent callers share one login', async () => {
    const rest = client()
    await Promise.all([rest.ensureLogin(), rest.ensureLogin(), rest.ensureLogin()])
    expect(loop.count('/api/login')).toBe(1)
    await rest.ensureLogin()
    expect(loop.count('/api/login')).toBe(1)
    await rest.ensureLogin(true)
    expect(loop.count('/api/login')).toBe(2)
    expect(rest.cookieHeader()).toBe('session=s2')
  })

  test('wrong credentials give a login LoopError with status and body excerpt', async () => {
    const error = await expectLoopError(client({ password: 'nope' }).ensureLogin())
    expect(error.kind).toBe('login')
    expect(error.status).toBe(401)
    expect(error.bodyExcerpt).toContain('wrong username or password')
    expect(error.message).toContain('POST /api/login')
  })

  test('401 → one relogin and one retry; a second 401 is returned, not retried again', async () => {
    loop.route = (_req, { loggedIn }) => (loggedIn ? Response.json({ ok: true }) : new Response('session expired', { status: 401 }))
    const rest = client()
    await rest.ensureLogin()
    loop.dropSessions()
    expect(await rest.getJson('/thing')).toEqual({ ok: true })
    expect(loop.count('/api/login')).toBe(2)
    expect(loop.count('/api/thing')).toBe(2)

    loop.route = () => new Response('never', { status: 401 })
    const response = await rest.request('GET', '/always-401')
    expect(response.status).toBe(401)
    expect(loop.count('/api/always-401')).toBe(2)
    expect(loop.count('/api/login')).toBe(3)
    const error = await expectLoopError(rest.getJson('/always-401'))
    expect(error.kind).toBe('http')
    expect(error.status).toBe(401)
    expect(error.bodyExcerpt).toBe('never')
  })

  test('requests without login send no login and do not relogin on 401', async () => {
    loop.route = () => new Response('no', { status: 401 })
    const rest = client()
    const response = await rest.request('GET', '/public', { requiresLogin: false })
    expect(response.status).toBe(401)
    expect(loop.count('/api/login')).toBe(0)
    expect(loop.count('/api/public')).toBe(1)
  })

  test('logout posts with the session and forgets it', async () => {
    const rest = client()
    await rest.ensureLogin()
    await rest.logout()
    const logout = loop.requests.find((r) => r.path === '/api/logout')!
    expect(logout.cookie).toBe('session=s1')
    expect(rest.hasSession).toBe(false)
  })
})

describe('429 handling', () => {
  test('honours Retry-After in seconds and as an HTTP date', async () => {
    let n = 0
    loop.route = () => {
      n++
      if (n === 1) return new Response('slow down', { status: 429, headers: { 'retry-after': '2' } })
      if (n === 2) return new Response('slow down', { status: 429, headers: { 'retry-after': new Date(Date.now() + 3_000).toUTCString() } })
      return Response.json({ fine: true })
    }
    const { delays, sleep } = recordingSleep()
    const rest = client({ sleep })
    expect(await rest.getJson('/busy', undefined, { requiresLogin: false })).toEqual({ fine: true })
    expect(delays[0]).toBe(2_000)
    // HTTP dates have one-second resolution
    expect(delays[1]).toBeGreaterThanOrEqual(1_000)
    expect(delays[1]).toBeLessThanOrEqual(3_000)
    expect(delays).toHaveLength(2)
  })

  test('without Retry-After: exponential backoff with jitter, then a rate_limited LoopError', async () => {
    loop.route = () => new Response('{"detail":"too many requests"}', { status: 429 })
    const { delays, sleep } = recordingSleep()
    const metrics = new MetricsRegistry()
    const rest = client({ sleep, random: () => 1, metrics, rateLimit: { initialMs: 100, maxMs: 300, maxRetries: 4, maxTotalDelayMs: 10_000 } })
    const error = await expectLoopError(rest.getJson('/busy', undefined, { requiresLogin: false }))
    expect(delays).toEqual([100, 200, 300, 300])
    expect(loop.count('/api/busy')).toBe(5)
    expect(error.kind).toBe('rate_limited')
    expect(error.status).toBe(429)
    expect(error.bodyExcerpt).toContain('too many requests')
    expect(error.message).toContain('after 4 retries')
    expect(metrics.counter('loop_request_retries_total', '').get({ reason: '429' })).toBe(4)
    expect(metrics.counter('loop_requests_total', '').get({ method: 'GET', status: '429' })).toBe(5)
  })

  test('a Retry-After beyond the wait budget gives up at once', async () => {
    loop.route = () => new Response('', { status: 429, headers: { 'retry-after': '3600' } })
    const { delays, sleep } = recordingSleep()
    const error = await expectLoopError(client({ sleep, rateLimit: { maxTotalDelayMs: 60_000 } }).getJson('/busy', undefined, { requiresLogin: false }))
    expect(delays).toEqual([])
    expect(error.kind).toBe('rate_limited')
    expect(error.retryAfterMs).toBe(3_600_000)
    expect(error.message).toContain('Retry-After asks for 3600 s')
  })

  test('real waits: short backoff, then success; login is rate limited too', async () => {
    let limited = 2
    loop.route = () => (limited-- > 0 ? new Response('', { status: 429, headers: { 'retry-after': '0' } }) : Response.json([1]))
    const rest = client({ rateLimit: { initialMs: 5, maxMs: 10 } })
    expect(await rest.getJson('/busy', undefined, { requiresLogin: false })).toEqual([1])
    expect(loop.count('/api/busy')).toBe(3)
  })

  test('the caller can abort a 429 wait', async () => {
    loop.route = () => new Response('', { status: 429, headers: { 'retry-after': '30' } })
    const controller = new AbortController()
    const pending = client().getJson('/busy', undefined, { requiresLogin: false, signal: controller.signal })
    await Bun.sleep(50)
    controller.abort()
    const error = await expectLoopError(pending)
    expect(error.kind).toBe('aborted')
  })
})

describe('timeouts and failures', () => {
  test('a slow answer is a timeout LoopError, with and without login', async () => {
    loop.route = async () => {
      await Bun.sleep(2_000)
      return Response.json({})
    }
    const rest = client()
    const withoutLogin = await expectLoopError(rest.getJson('/slow', undefined, { requiresLogin: false, timeoutMs: 150 }))
    expect(withoutLogin.kind).toBe('timeout')
    expect(withoutLogin.message).toBe('GET /api/slow timed out after 150 ms')
    const withLogin = await expectLoopError(rest.getJson('/slow', undefined, { timeoutMs: 150 }))
    expect(withLogin.kind).toBe('timeout')
  })

  test('a failure is one structured log line and a metric', async () => {
    loop.route = async () => {
      await Bun.sleep(1_000)
      return Response.json({})
    }
    const lines: string[] = []
    const previous = setLogSink((line) => lines.push(line))
    const metrics = new MetricsRegistry()
    try {
      await expectLoopError(client({ metrics }).getJson('/slow', undefined, { requiresLogin: false, timeoutMs: 100 }))
    } finally {
      setLogSink(previous)
    }
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ level: 'warn', component: 'loop.rest', method: 'GET', path: '/api/slow', kind: 'timeout' })
    expect(metrics.counter('loop_requests_total', '').get({ method: 'GET', status: 'timeout' })).toBe(1)
  })

  test('the client-wide default timeout applies when the call sets none', async () => {
    loop.route = async () => {
      await Bun.sleep(2_000)
      return Response.json({})
    }
    const error = await expectLoopError(client({ timeoutMs: 100 }).getJson('/slow', undefined, { requiresLogin: false }))
    expect(error.kind).toBe('timeout')
    expect(error.message).toContain('100 ms')
  })

  test('a body that stalls after the headers times out too', async () => {
    loop.route = () => new Response(new ReadableStream({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode('{"image_ids": ['))
        await Bun.sleep(2_000)
        controller.close()
      },
    }), { headers: { 'content-type': 'application/json' } })
    const error = await expectLoopError(client().getJson('/stall', undefined, { requiresLogin: false, timeoutMs: 200 }))
    expect(error.kind).toBe('timeout')
  })

  test('no listener → network LoopError; backendReady is false, not a throw', async () => {
    const rest = new LoopRestClient({ baseUrl: `http://127.0.0.1:${await closedPort()}` })
    const error = await expectLoopError(rest.getJson('/status', undefined, { requiresLogin: false }))
    expect(error.kind).toBe('network')
    expect(error.status).toBeNull()
    expect(await rest.backendReady()).toBe(false)
  })

  test('backendReady is GET /api/status without login: 200 → true, else false', async () => {
    let status = 503
    loop.route = (req) => (new URL(req.url).pathname === '/api/status' ? new Response('', { status }) : undefined)
    const rest = client()
    expect(await rest.backendReady()).toBe(false)
    status = 200
    expect(await rest.backendReady()).toBe(true)
    expect(loop.count('/api/login')).toBe(0)
  })

  test('non-2xx from the JSON helpers: http LoopError with status and a bounded body excerpt', async () => {
    loop.route = () => new Response('x'.repeat(5_000), { status: 500, statusText: 'Internal Server Error' })
    const error = await expectLoopError(client().postJson('/fail', { a: 1 }, undefined, { requiresLogin: false }))
    expect(error.kind).toBe('http')
    expect(error.status).toBe(500)
    expect(error.bodyExcerpt.length).toBeLessThanOrEqual(501)
    expect(error.message).toStartWith('POST /api/fail failed with 500 Internal Server Error: xxx')
  })

  test('an answer that does not match the schema is an invalid_response LoopError naming the field', async () => {
    loop.route = () => Response.json({ image_ids: 'not a list' })
    const error = await expectLoopError(client().getJson('/data', ImageIdsResponse, { requiresLogin: false }))
    expect(error.kind).toBe('invalid_response')
    expect(error.message).toContain('/image_ids')
  })
})

describe('bodies', () => {
  test('JSON and multipart bodies; multipart parts are named files with the base name', async () => {
    const tmp = await makeTempDir()
    try {
      await Bun.write(`${tmp.path}/model.onnx`, new Uint8Array([1, 2, 3]))
      await Bun.write(`${tmp.path}/model.json`, '{"version":"1.0"}')
      let parts: { field: string; name: string; size: number }[] = []
      loop.route = async (req, { recorded }) => {
        if (recorded.path === '/api/json') return Response.json({ echo: JSON.parse(recorded.body), type: recorded.contentType })
        const form = await req.formData()
        parts = [...form.entries()].map(([field, value]) => ({ field, name: (value as unknown as File).name, size: (value as unknown as File).size }))
        return Response.json({ id: 'new-model' })
      }
      const rest = client()
      expect(await rest.putJson('/json', [{ a: 1 }], Type.Object({ echo: Type.Unknown(), type: Type.String() }))).toEqual({ echo: [{ a: 1 }], type: 'application/json' })
      const response = await rest.sendMultipart('PUT', '/upload', [{ path: `${tmp.path}/model.onnx` }, { path: `${tmp.path}/model.json` }])
      expect(await response.json()).toEqual({ id: 'new-model' })
      expect(parts).toEqual([{ field: 'files', name: 'model.onnx', size: 3 }, { field: 'files', name: 'model.json', size: 17 }])
      // the multipart body is rebuilt when a 401 forces a retry
      loop.dropSessions()
      await rest.sendMultipart('PUT', '/upload', [{ path: `${tmp.path}/model.onnx` }])
      expect(parts).toEqual([{ field: 'files', name: 'model.onnx', size: 3 }])
    } finally {
      await tmp.cleanup()
    }
  })

  test('a missing upload file fails before anything is sent', async () => {
    const error = await expectLoopError(client().sendMultipart('PUT', '/upload', [{ path: '/nonexistent/model.onnx' }]))
    expect(error.kind).toBe('missing_file')
    expect(error.message).toContain('/nonexistent/model.onnx')
    expect(loop.requests).toHaveLength(0)
  })
})

describe('metrics', () => {
  test('counts requests by status, retries by reason and observes latency', async () => {
    loop.route = (_req, { loggedIn }) => (loggedIn ? Response.json({}) : new Response('', { status: 401 }))
    const metrics = new MetricsRegistry()
    const rest = client({ metrics })
    await rest.ensureLogin()
    loop.dropSessions()
    await rest.getJson('/x')
    const requests = metrics.counter('loop_requests_total', '')
    expect(requests.get({ method: 'POST', status: '200' })).toBe(2)
    expect(requests.get({ method: 'GET', status: '401' })).toBe(1)
    expect(requests.get({ method: 'GET', status: '200' })).toBe(1)
    expect(metrics.counter('loop_request_retries_total', '').get({ reason: '401' })).toBe(1)
    expect(metrics.histogram('loop_request_duration_seconds', '').count({ method: 'GET' })).toBe(2)
    expect(metrics.render()).toContain('loop_requests_total{method="GET",status="401"} 1')
  })
})

describe('TLS with LOOP_SSL_CERT_PATH', () => {
  test.skipIf(!Bun.which('openssl'))('the CA file is trusted for every call; without it the call fails', async () => {
    const tmp = await makeTempDir()
    const certs = await makeTestCertificates(tmp.path)
    const secure = startScriptedLoop({ tls: { cert: certs.cert, key: certs.key } })
    try {
      secure.route = () => Response.json({ ok: true })
      const trusted = LoopRestClient.fromSettings({ loopHost: secure.url, username: 'alice', password: 'secret', sslCertPath: certs.caFile })
      expect(trusted.baseUrl).toBe(secure.url)
      expect(trusted.websocketUrl).toBe(`wss://127.0.0.1:${secure.port}`)
      expect(await trusted.getJson('/x')).toEqual({ ok: true })
      expect(secure.count('/api/login')).toBe(1)
      const untrusted = new LoopRestClient({ baseUrl: secure.url })
      const error = await expectLoopError(untrusted.getJson('/x', undefined, { requiresLogin: false }))
      expect(error.kind).toBe('network')
      expect(error.message).toMatch(/certificate/i)
    } finally {
      await secure.stop()
      await tmp.cleanup()
    }
  })

  test('an unreadable CA file is a ConfigError at construction', () => {
    expect(() => LoopRestClient.fromSettings({ loopHost: 'localhost:1', sslCertPath: '/nonexistent/ca.pem' })).toThrow(ConfigError)
  })

  test('fromSettings keeps the upstream scheme rule for bare hosts', () => {
    expect(LoopRestClient.fromSettings({ loopHost: 'learning-loop.ai' }).baseUrl).toBe('https://learning-loop.ai')
    expect(LoopRestClient.fromSettings({ loopHost: 'loop.local:8080' }).websocketUrl).toBe('ws://loop.local:8080')
  })
})
