import { afterEach, describe, expect, test } from 'bun:test'
import type { Socket as ServerSocket } from 'socket.io'
import { SocketResponse, decode } from '../../src/contract/index.ts'
import { LoopSocketError } from '../../src/loop/loop-error.ts'
import { LoopRestClient } from '../../src/loop/loop-rest-client.ts'
import { LoopSocket, type ConnectAttempt, type LoopSocketOptions } from '../../src/loop/loop-socket.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import { makeTestCertificates, startScriptedLoop, type ScriptedLoop } from './scripted-loop.ts'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function peer(options: Parameters<typeof startScriptedLoop>[0] = {}): ScriptedLoop {
  const loop = startScriptedLoop({ socketIo: true, ...options })
  cleanups.push(() => loop.stop())
  return loop
}

function loopSocket(loop: ScriptedLoop, extra: Partial<LoopSocketOptions> = {}): LoopSocket {
  const socket = new LoopSocket({
    url: loop.url.replace(/^http/, 'ws'),
    organization: 'zauberzeug',
    project: 'demo',
    nodeType: 'trainer',
    backoff: { initialMs: 50, maxMs: 200 },
    ...extra,
  })
  cleanups.push(() => socket.shutdown())
  return socket
}

/** The server side of the first connected client. */
async function serverSocket(loop: ScriptedLoop): Promise<ServerSocket> {
  return waitFor(() => [...loop.io.sockets.sockets.values()][0], 5_000, 'a client on the server')
}

describe('handshake', () => {
  test('organization, project, nodeType and cookies on the polling handshake and the websocket upgrade', async () => {
    const loop = peer()
    const socket = loopSocket(loop, { refreshCookies: () => 'session=abc; other=1' })
    socket.start()
    await socket.waitUntilConnected(5_000)
    const server = await serverSocket(loop)
    await waitFor(() => server.conn.transport.name === 'websocket', 5_000, 'the websocket upgrade')
    const polling = loop.handshakes.find((h) => h.transport === 'polling' && h.sid === null)!
    const upgrade = loop.handshakes.find((h) => h.upgrade)!
    for (const handshake of [polling, upgrade]) {
      expect(handshake).toMatchObject({ organization: 'zauberzeug', project: 'demo', nodeType: 'trainer', cookie: 'session=abc; other=1' })
    }
    expect(upgrade.transport).toBe('websocket')
    expect(socket.connected).toBe(true)
    expect(socket.counters).toMatchObject({ connectAttempts: 1, connects: 1, connectErrors: 0, disconnects: 0 })
  })

  test.skipIf(!Bun.which('openssl'))('wss with the CA bundle; without it the connection is refused', async () => {
    const tmp = await makeTempDir()
    cleanups.push(() => tmp.cleanup())
    const certs = await makeTestCertificates(tmp.path)
    const loop = peer({ tls: { cert: certs.cert, key: certs.key } })
    const untrusted = loopSocket(loop, { connectTimeoutMs: 2_000 })
    untrusted.start()
    await waitFor(() => untrusted.counters.connectErrors >= 1, 5_000, 'a failed TLS attempt')
    expect(untrusted.counters.connects).toBe(0)
    await untrusted.shutdown()
    const trusted = loopSocket(loop, { ca: certs.ca })
    trusted.start()
    await trusted.waitUntilConnected(5_000)
    const server = await serverSocket(loop)
    await waitFor(() => server.conn.transport.name === 'websocket', 5_000, 'the wss upgrade')
  })
})

describe('Loop → node events and their acks (§5.1)', () => {
  test('string → payload, boolean → success, throw → error_msg, async handlers, arguments in order', async () => {
    const loop = peer()
    const socket = loopSocket(loop)
    const seen: unknown[][] = []
    socket
      .on('as_string', () => '<svg/>')
      .on('as_true', () => true)
      .on('as_false', () => false)
      .on('throws', () => {
        throw new Error('hyperparameters missing or not a dict')
      })
      .on('async_string', async (org: string, project: string, details: { n: number }) => {
        seen.push([org, project, details])
        await Bun.sleep(10)
        return `${org}/${project}/${details.n}`
      })
      .on('async_throws', async () => {
        await Bun.sleep(5)
        throw new Error('async failure')
      })
      .on('nothing', () => undefined)
      .on('unsupported', () => 42)
    socket.start()
    await socket.waitUntilConnected(5_000)
    const server = await serverSocket(loop)
    const call = async (event: string, ...args: unknown[]) => decode(SocketResponse, await server.timeout(3_000).emitWithAck(event, ...args))

    expect(await call('as_string')).toEqual({ success: true, error_msg: null, payload: '<svg/>' })
    expect(await call('as_true')).toEqual({ success: true, error_msg: null, payload: null })
    expect(await call('as_false')).toEqual({ success: false, error_msg: null, payload: null })
    expect(await call('throws')).toEqual({ success: false, error_msg: 'hyperparameters missing or not a dict', payload: null })
    expect(await call('async_string', 'zz', 'p', { n: 3 })).toEqual({ success: true, error_msg: null, payload: 'zz/p/3' })
    expect(seen).toEqual([['zz', 'p', { n: 3 }]])
    expect(await call('async_throws')).toEqual({ success: false, error_msg: 'async failure', payload: null })
    expect(await call('nothing')).toEqual({ success: true, error_msg: null, payload: null })
    const unsupported = await call('unsupported')
    expect(unsupported.success).toBe(false)
    expect(unsupported.error_msg).toContain('number')
  })

  test('handlers registered after connecting work, and failures are counted', async () => {
    const loop = peer()
    const metrics = new MetricsRegistry()
    const socket = loopSocket(loop, { metrics })
    socket.start()
    await socket.waitUntilConnected(5_000)
    socket.on('late', () => {
      throw new Error('boom')
    })
    const server = await serverSocket(loop)
    expect(await server.timeout(3_000).emitWithAck('late')).toEqual({ success: false, error_msg: 'boom', payload: null })
    expect(metrics.counter('loop_socket_handler_errors_total', '').get({ event: 'late' })).toBe(1)
  })

  test('events the node does not handle, JavaScript object members included, get a failure ack naming them', async () => {
    const loop = peer()
    const socket = loopSocket(loop)
    socket.on('known', () => 'yes')
    socket.start()
    await socket.waitUntilConnected(5_000)
    const server = await serverSocket(loop)
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'soft_reload']) {
      const answer = decode(SocketResponse, await server.timeout(3_000).emitWithAck(name, { x: 1 }))
      expect(answer).toEqual({ success: false, error_msg: `unknown event "${name}"; this node handles known, restart`, payload: null })
    }
    const long = decode(SocketResponse, await server.timeout(3_000).emitWithAck('n'.repeat(10_000)))
    expect(long.error_msg!.length).toBeLessThan(300)
    expect(decode(SocketResponse, await server.timeout(3_000).emitWithAck('known'))).toEqual({ success: true, error_msg: null, payload: 'yes' })
  })

  test('restart is surfaced to onRestart', async () => {
    const loop = peer()
    let restarts = 0
    const socket = loopSocket(loop, { onRestart: () => void restarts++ })
    socket.start()
    await socket.waitUntilConnected(5_000)
    ;(await serverSocket(loop)).emit('restart')
    await waitFor(() => restarts === 1, 5_000, 'the restart callback')
  })

  test('reserved event names are refused', () => {
    const socket = new LoopSocket({ url: 'ws://127.0.0.1:1', organization: 'o', project: 'p', nodeType: 'node' })
    expect(() => socket.on('connect', () => true)).toThrow(/onConnect/)
    expect(() => socket.on('restart', () => true)).toThrow(/onRestart/)
  })
})

describe('node → Loop calls (§5.3)', () => {
  test('emitWithAck resolves with the reply; no reply → ack_timeout; not connected → not_connected', async () => {
    const loop = peer()
    loop.io.on('connection', (client) => {
      client.on('update_training', (org: string, project: string, training: unknown, ack: (reply: unknown) => void) => {
        ack({ success: true, error_msg: null, payload: { org, project, training } })
      })
      client.on('silent', () => {})
    })
    const socket = loopSocket(loop)
    const offline = await socket.emitWithAck('update_trainer', [{}], 100).catch((error) => error)
    expect(offline).toBeInstanceOf(LoopSocketError)
    expect((offline as LoopSocketError).kind).toBe('not_connected')
    socket.start()
    await socket.waitUntilConnected(5_000)
    expect(await socket.emitWithAck('update_training', ['zz', 'p', { trainer_id: 't' }], 3_000))
      .toEqual({ success: true, error_msg: null, payload: { org: 'zz', project: 'p', training: { trainer_id: 't' } } })
    const timeout = await socket.emitWithAck('silent', [1], 150).catch((error) => error)
    expect(timeout).toBeInstanceOf(LoopSocketError)
    expect((timeout as LoopSocketError).kind).toBe('ack_timeout')
    expect((timeout as LoopSocketError).message).toContain('"silent" within 150 ms')
  })

  test('a connection lost while waiting for the ack rejects with disconnected', async () => {
    const loop = peer()
    loop.io.on('connection', (client) => {
      client.on('hang', () => client.disconnect(true))
    })
    const socket = loopSocket(loop)
    socket.start()
    await socket.waitUntilConnected(5_000)
    const lost = (await socket.emitWithAck('hang', [], 5_000).catch((e) => e)) as LoopSocketError
    expect(lost).toBeInstanceOf(LoopSocketError)
    expect(lost.kind).toBe('disconnected')
  })

  test('emitExpectingSuccess: success → the SocketResponse; success false → rejected; other shapes → invalid_reply', async () => {
    const loop = peer()
    loop.io.on('connection', (client) => {
      client.on('ok', (ack: (reply: unknown) => void) => ack({ success: true, payload: 7 }))
      client.on('no', (ack: (reply: unknown) => void) => ack({ success: false, error_msg: 'unknown training' }))
      client.on('odd', (ack: (reply: unknown) => void) => ack('yes'))
    })
    const socket = loopSocket(loop)
    socket.start()
    await socket.waitUntilConnected(5_000)
    expect(await socket.emitExpectingSuccess('ok', [], 3_000)).toEqual({ success: true, error_msg: null, payload: 7 })
    const rejected = (await socket.emitExpectingSuccess('no', [], 3_000).catch((e) => e)) as LoopSocketError
    expect(rejected.kind).toBe('rejected')
    expect(rejected.message).toContain('unknown training')
    const odd = (await socket.emitExpectingSuccess('odd', [], 3_000).catch((e) => e)) as LoopSocketError
    expect(odd.kind).toBe('invalid_reply')
  })
})

describe('reconnection', () => {
  test('after the Loop goes away: one attempt at a time with backoff, cookies refreshed, reconnects when it is back', async () => {
    const first = startScriptedLoop({ socketIo: true })
    const port = first.port
    const attempts: ConnectAttempt[] = []
    const disconnectReasons: string[] = []
    const socket = loopSocket(first, {
      // deterministic delays at the top of the jitter range: 100, 200, 200, … ms while the Loop is down
      random: () => 1,
      refreshCookies: (attempt) => {
        attempts.push(attempt)
        return `session=attempt${attempt.attempt}`
      },
    })
    socket.onDisconnect((reason) => void disconnectReasons.push(reason))
    socket.start()
    await socket.waitUntilConnected(5_000)
    await first.stop()
    await waitFor(() => !socket.connected, 5_000, 'the disconnect')
    const downSince = performance.now()
    await waitFor(() => socket.counters.connectErrors >= 3, 10_000, 'three failed attempts')
    const downFor = performance.now() - downSince
    // every retry waited ≥ 100 ms (then 200 ms), so a storm is impossible: bound by elapsed time
    expect(socket.counters.connectAttempts - 1).toBeLessThanOrEqual(Math.floor(downFor / 100) + 1)
    expect(socket.counters.maxAttemptsInFlight).toBe(1)

    const second = startScriptedLoop({ socketIo: true, port })
    cleanups.push(() => second.stop())
    await socket.waitUntilConnected(10_000)
    expect(socket.counters.connects).toBe(2)
    expect(disconnectReasons).toHaveLength(1)
    expect(disconnectReasons[0]).toMatch(/^transport (close|error)$/)
    expect(attempts[0]).toEqual({ attempt: 1, consecutiveFailures: 0, reconnect: false })
    expect(attempts.slice(1).every((a) => a.reconnect)).toBe(true)
    const last = attempts.at(-1)!
    const handshake = await waitFor(() => second.handshakes.find((h) => h.sid === null), 5_000, 'the new handshake')
    expect(handshake.cookie).toBe(`session=attempt${last.attempt}`)
    expect(socket.counters.connectAttempts).toBe(attempts.length)
  })

  test('a failing cookie refresh counts as a failed attempt and is retried with backoff', async () => {
    const loop = peer()
    let calls = 0
    const socket = loopSocket(loop, {
      refreshCookies: () => {
        if (++calls < 3) throw new Error('login refused')
        return undefined
      },
    })
    socket.start()
    await socket.waitUntilConnected(5_000)
    expect(socket.counters).toMatchObject({ connectAttempts: 3, connectErrors: 2, connects: 1 })
    expect(loop.handshakes.filter((h) => h.sid === null)).toHaveLength(1)
  })

  test('a server that rejects the handshake is retried with growing delays, never in parallel', async () => {
    const loop = peer()
    let rejected = 0
    loop.io.use((_socket, next) => {
      if (++rejected <= 3) next(new Error('unauthorized'))
      else next()
    })
    const socket = loopSocket(loop)
    socket.start()
    await socket.waitUntilConnected(10_000)
    expect(socket.counters).toMatchObject({ connectAttempts: 4, connectErrors: 3, connects: 1, maxAttemptsInFlight: 1 })
  })

  test('shutdown stops reconnecting for good', async () => {
    const first = startScriptedLoop({ socketIo: true })
    const port = first.port
    const socket = loopSocket(first)
    socket.start()
    await socket.waitUntilConnected(5_000)
    await first.stop()
    await waitFor(() => socket.counters.disconnects === 1, 5_000, 'the disconnect')
    await socket.shutdown()
    const attemptsAtShutdown = socket.counters.connectAttempts
    const second = startScriptedLoop({ socketIo: true, port })
    cleanups.push(() => second.stop())
    // several backoff periods (≤ 200 ms each) pass without any attempt
    await Bun.sleep(600)
    expect(socket.counters.connectAttempts).toBe(attemptsAtShutdown)
    expect(second.handshakes).toHaveLength(0)
    expect(socket.connected).toBe(false)
    expect(() => socket.start()).toThrow(/shut down/)
  })

  test('shutdown while connected disconnects; hooks and metrics follow the connection', async () => {
    const loop = peer()
    const metrics = new MetricsRegistry()
    const events: string[] = []
    const socket = loopSocket(loop, { metrics })
    socket.onConnect(() => void events.push('connect'))
    socket.onDisconnect((reason) => void events.push(`disconnect:${reason}`))
    socket.start()
    await socket.waitUntilConnected(5_000)
    expect(metrics.gauge('loop_socket_connected', '').get()).toBe(1)
    await socket.shutdown()
    expect(events).toEqual(['connect', 'disconnect:io client disconnect'])
    expect(metrics.gauge('loop_socket_connected', '').get()).toBe(0)
    expect(metrics.counter('loop_socket_connect_attempts_total', '').get()).toBe(1)
    await waitFor(() => loop.io.sockets.sockets.size === 0, 5_000, 'the server to see the disconnect')
  })
})

describe('with the REST client (forRestClient)', () => {
  test('the handshake carries the login cookie; after a Loop restart the node logs in again', async () => {
    const first = startScriptedLoop({ socketIo: true })
    const port = first.port
    // like the Loop: no valid session → the connection is refused
    const requireSession = (loop: ScriptedLoop) =>
      loop.io.use((client, next) => (loop.isSession(client.handshake.headers.cookie) ? next() : next(new Error('not logged in'))))
    requireSession(first)
    const rest = new LoopRestClient({ baseUrl: first.url, username: 'alice', password: 'secret' })
    const socket = LoopSocket.forRestClient(rest, { organization: 'zz', project: 'p', nodeType: 'trainer', backoff: { initialMs: 50, maxMs: 200 } })
    cleanups.push(() => socket.shutdown())
    socket.start()
    await socket.waitUntilConnected(5_000)
    expect(first.count('/api/login')).toBe(1)
    expect(first.handshakes[0]!.cookie).toBe('session=s1')
    await first.stop()
    await waitFor(() => !socket.connected, 5_000, 'the disconnect')

    // the restarted Loop knows no sessions: the old cookie would be refused
    const second = startScriptedLoop({ socketIo: true, port })
    cleanups.push(() => second.stop())
    requireSession(second)
    await socket.waitUntilConnected(10_000)
    expect(second.count('/api/login')).toBeGreaterThanOrEqual(1)
    const accepted = second.handshakes.filter((h) => h.sid === null).at(-1)!
    expect(second.isSession(accepted.cookie)).toBe(true)
    expect(rest.cookieHeader()).toBe(accepted.cookie!)
  })
})
