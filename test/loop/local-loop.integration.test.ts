/**
 * The Loop client against the embedded LocalLoop (src/local-loop): in-process for login, rate limits,
 * acks and the data exchange, and as a separate `loop` CLI process for the SIGKILL reconnect test.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { decode, SocketResponse } from '../../src/contract/index.ts'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { DataExchange } from '../../src/loop/data-exchange.ts'
import { LoopError } from '../../src/loop/loop-error.ts'
import { LoopRestClient, type LoopRestClientOptions } from '../../src/loop/loop-rest-client.ts'
import { LoopSocket } from '../../src/loop/loop-socket.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import type { Child } from '../support/child-process.ts'
import { startNodeProcess } from '../support/node-process.ts'
import { startTestLoop, type TestLoopOptions } from '../support/test-loop.ts'

const USER = { username: 'node-user', password: 'node-secret' }

let tmp: { path: string; cleanup(): Promise<void> }
const cleanups: (() => Promise<void>)[] = []
beforeEach(async () => {
  tmp = await makeTempDir('lln-loop-client-')
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
  await tmp.cleanup()
})

async function startLoop(options: TestLoopOptions = {}): Promise<LocalLoop> {
  const testLoop = await startTestLoop({ ...USER, ...options })
  cleanups.push(testLoop.cleanup)
  return testLoop.loop
}

function restClient(loop: { url: string }, extra: Partial<LoopRestClientOptions> = {}): LoopRestClient {
  return new LoopRestClient({ baseUrl: loop.url, ...USER, ...extra })
}

function trackSocket(socket: LoopSocket): LoopSocket {
  cleanups.push(() => socket.shutdown())
  return socket
}

describe('login', () => {
  test('logs in, and logs in again after the Loop restarted on the same data folder and port', async () => {
    const testLoop = await startTestLoop(USER)
    cleanups.push(testLoop.cleanup)
    const first = testLoop.loop
    const metrics = new MetricsRegistry()
    const rest = restClient(first, { metrics })
    const exchange = new DataExchange(rest, { organization: 'local', project: 'demo' })
    expect(await exchange.fetchImageIds()).toEqual([])
    const logins = () => metrics.counter('loop_requests_total', '').get({ method: 'POST', status: '200' })
    expect(logins()).toBe(1)

    const port = first.port
    await first.stop()
    const second = await testLoop.restart()
    expect(second.port).toBe(port)
    // the restarted Loop forgot the session: 401 → one relogin → the call succeeds
    expect(await exchange.fetchImageIds()).toEqual([])
    expect(logins()).toBe(2)
    expect(metrics.counter('loop_request_retries_total', '').get({ reason: '401' })).toBe(1)
  })

  test('wrong credentials are a login LoopError from the real Loop', async () => {
    const loop = await startLoop()
    const error = await restClient(loop, { password: 'wrong' }).ensureLogin().catch((e) => e)
    expect(error).toBeInstanceOf(LoopError)
    expect((error as LoopError).kind).toBe('login')
    expect((error as LoopError).status).toBe(401)
  })
})

describe('rate limits', () => {
  test('429 answers are waited out (Retry-After) and every call succeeds', async () => {
    const loop = await startLoop({ rateLimit: { perSecond: 20, burst: 2 } })
    const metrics = new MetricsRegistry()
    const rest = restClient(loop, { metrics })
    const exchange = new DataExchange(rest, { organization: 'local', project: 'demo' })
    await rest.ensureLogin()
    const results = await Promise.all(Array.from({ length: 6 }, () => exchange.fetchImageIds()))
    expect(results).toEqual(Array.from({ length: 6 }, () => []))
    expect(metrics.counter('loop_request_retries_total', '').get({ reason: '429' })).toBeGreaterThan(0)
    expect(loop.stats().requests.rate_limited).toBe(metrics.counter('loop_requests_total', '').get({ method: 'GET', status: '429' }))
  })

  test('beyond the retry budget: a rate_limited LoopError carrying Retry-After', async () => {
    const loop = await startLoop({ rateLimit: { perSecond: 0.5, burst: 1 } })
    const rest = restClient(loop, { rateLimit: { maxRetries: 0 } })
    // the login takes the only token
    await rest.ensureLogin()
    const error = await rest.getJson('/local/projects/demo/data').catch((e) => e)
    expect(error).toBeInstanceOf(LoopError)
    expect((error as LoopError).kind).toBe('rate_limited')
    expect((error as LoopError).retryAfterMs).toBeGreaterThanOrEqual(1_000)
  })
})

describe('socket.io with the local Loop', () => {
  test('acks are §5.1 SocketResponses: string → payload, bool → success, throw → error_msg, async', async () => {
    const loop = await startLoop()
    const rest = restClient(loop)
    const socket = trackSocket(LoopSocket.forRestClient(rest, { organization: 'local', project: 'demo', nodeType: 'trainer' }))
    socket
      .on('as_string', () => 'hello')
      .on('as_bool', (flag: boolean) => flag)
      .on('throws', () => {
        throw new Error('hyperparameters missing or not a dict')
      })
      .on('begin_training', async (organization: string, project: string, details: { training_number: number }) => {
        await Bun.sleep(10)
        return `${organization}/${project}#${details.training_number}`
      })
    socket.start()
    await socket.waitUntilConnected(10_000)
    await waitFor(() => loop.connectedNodes().length === 1, 5_000, 'the Loop to see the node')
    expect(loop.connectedNodes()[0]!.nodeType).toBe('trainer')
    const call = async (event: string, ...args: unknown[]) => decode(SocketResponse, await loop.emit(() => true, event, args, { timeoutMs: 5_000 }))

    expect(await call('as_string')).toEqual({ success: true, error_msg: null, payload: 'hello' })
    expect(await call('as_bool', true)).toEqual({ success: true, error_msg: null, payload: null })
    expect(await call('as_bool', false)).toEqual({ success: false, error_msg: null, payload: null })
    expect(await call('throws')).toEqual({ success: false, error_msg: 'hyperparameters missing or not a dict', payload: null })
    expect(await call('begin_training', 'local', 'demo', { training_number: 3 })).toEqual({ success: true, error_msg: null, payload: 'local/demo#3' })
  })

  test('node → Loop calls: the Loop acknowledges update_trainer', async () => {
    const loop = await startLoop()
    const socket = trackSocket(LoopSocket.forRestClient(restClient(loop), { organization: 'local', project: 'demo', nodeType: 'trainer' }))
    socket.start()
    await socket.waitUntilConnected(10_000)
    const reply = await socket.emitExpectingSuccess('update_trainer', [{ id: 'node-1', name: 'trainer one', state: 'idle', uptime: 1, errors: {}, progress: null, pretrained_models: [], architecture: null, context: null }], 5_000)
    expect(reply.success).toBe(true)
    await waitFor(() => loop.nodeStatuses().some((s) => s.nodeId === 'node-1'), 5_000, 'the status to arrive')
  })

  test('restart from the Loop reaches onRestart', async () => {
    const loop = await startLoop()
    let restarted = 0
    const socket = trackSocket(LoopSocket.forRestClient(restClient(loop), { organization: 'local', project: 'demo', nodeType: 'trainer', onRestart: () => void restarted++ }))
    socket.start()
    await socket.waitUntilConnected(10_000)
    await waitFor(() => loop.connectedNodes().length === 1, 5_000, 'the Loop to see the node')
    await loop.emit(() => true, 'restart', [], { expectAck: false })
    await waitFor(() => restarted === 1, 5_000, 'onRestart')
  })

  test('reconnects after the Loop process is SIGKILLed and restarted on the same port, without a storm', async () => {
    const dataFolder = join(tmp.path, 'loop-process')
    const children: Child[] = []
    cleanups.push(async () => {
      for (const child of children) await child.kill('SIGKILL')
    })
    const startProcess = async (port: number) => {
      const { child, url } = await startNodeProcess(['loop', '--port', String(port), '--data', dataFolder, '--user', USER.username, '--password', USER.password])
      children.push(child)
      return { child, port: Number(new URL(url).port) }
    }
    const first = await startProcess(0)
    const rest = new LoopRestClient({ baseUrl: `http://127.0.0.1:${first.port}`, ...USER, timeoutMs: 2_000 })
    const socket = trackSocket(LoopSocket.forRestClient(rest, {
      organization: 'local', project: 'demo', nodeType: 'trainer', backoff: { initialMs: 100, maxMs: 400 }, random: () => 1, connectTimeoutMs: 2_000,
    }))
    socket.start()
    await socket.waitUntilConnected(10_000)

    first.child.proc.kill('SIGKILL')
    await first.child.proc.exited
    await waitFor(() => !socket.connected, 10_000, 'the client to notice the dead Loop')
    const downSince = performance.now()
    const attemptsAtDrop = socket.counters.connectAttempts
    await waitFor(() => socket.counters.connectAttempts - attemptsAtDrop >= 4, 15_000, 'four reconnect attempts')
    const downForMs = performance.now() - downSince
    // random=1: the delays are 200, 400, 400 … ms, so at most one attempt per 200 ms — a storm is impossible
    expect(socket.counters.connectAttempts - attemptsAtDrop).toBeLessThanOrEqual(Math.floor(downForMs / 200) + 1)
    expect(socket.counters.maxAttemptsInFlight).toBe(1)

    const second = await startProcess(first.port)
    await socket.waitUntilConnected(20_000)
    expect(socket.counters.connects).toBe(2)
    // the new process knows no sessions; the reconnect logged in again and the Loop accepted it
    const reply = await socket.emitExpectingSuccess('update_trainer', [{ id: 'node-2', name: 'n', state: 'idle', uptime: 0, errors: {}, progress: null, architecture: null, context: null }], 5_000)
    expect(reply.success).toBe(true)
    await second.child.kill('SIGTERM')
  }, 60_000)
})

describe('data exchange with the local Loop', () => {
  test('image ids, data and files; model upload and download; detections; deployment target; detector status', async () => {
    const loop = await startLoop()
    const generated = await loop.createProject('zauberzeug', { project_name: 'exchange', complete: 3, inbox: 2, box_categories: 2, trainings: 1 })
    const rest = restClient(loop)
    const exchange = new DataExchange(rest, { organization: 'zauberzeug', project: 'exchange' })

    const complete = await exchange.fetchImageIds('state=complete')
    expect(complete.sort()).toEqual([...generated.image_ids.complete].sort())
    expect((await exchange.fetchImageIds()).length).toBe(5)
    const data = await exchange.fetchImageData(complete)
    expect(data.map((d) => d.id).sort()).toEqual([...complete].sort())
    expect(data.every((d) => d.width! > 0 && d.height! > 0 && (d.set === 'train' || d.set === 'test'))).toBe(true)

    const images = join(tmp.path, 'images')
    const downloaded = await exchange.downloadImages(complete, images, { concurrency: 2 })
    expect(downloaded.failed).toEqual([])
    expect(downloaded.downloaded.sort()).toEqual([...complete].sort())
    const first = new Uint8Array(await Bun.file(join(images, `${complete[0]}.jpg`)).arrayBuffer())
    expect([first[0], first[1]]).toEqual([0xff, 0xd8])
    expect((await exchange.downloadImages(complete, images)).skipped.length).toBe(3)

    const files = join(tmp.path, 'upload')
    await Bun.write(join(files, 'model.onnx'), new Uint8Array(1024).fill(3))
    await Bun.write(join(files, 'model.json'), JSON.stringify({ categories: generated.categories, resolution: 320 }))
    const trainingNumber = generated.trainings[0]!
    const modelId = await exchange.uploadModel(trainingNumber, 'onnx', [join(files, 'model.onnx'), join(files, 'model.json')])
    expect(typeof modelId).toBe('string')
    const models = await exchange.fetchModels()
    const uploaded = models.find((m) => m.id === modelId)!
    expect(uploaded.formats).toContain('onnx')

    const target = join(tmp.path, 'models', uploaded.version)
    const written = await exchange.downloadModel(modelId, 'onnx', target)
    expect(written.map((p) => p.slice(target.length + 1)).sort()).toContain('model.onnx')
    expect((await Bun.file(join(target, 'model.onnx')).arrayBuffer()).byteLength).toBe(1024)
    expect((await readdir(target)).includes('model.json')).toBe(true)

    const missing = await exchange.downloadModel('00000000-0000-0000-0000-000000000000', 'onnx', join(tmp.path, 'nope')).catch((e) => e)
    expect(missing).toBeInstanceOf(LoopError)
    expect((missing as LoopError).status).toBe(404)

    const category = generated.categories[0]!
    await exchange.uploadDetections(complete.map((id) => ({
      image_id: id,
      box_detections: [{ category_name: category.name, category_id: category.id, model_name: uploaded.version, confidence: 0.8, x: 1, y: 2, width: 10, height: 10 }],
    })))
    expect(loop.listImages('zauberzeug', 'exchange', 'complete').every((image) => image.has_trainer_detections)).toBe(true)

    loop.setDeploymentTarget('zauberzeug', 'exchange', { modelId })
    expect(await exchange.fetchDeploymentTarget()).toEqual({ model_uuid: modelId, version: uploaded.version })

    const status = { uuid: 'det-1', name: 'detector one', state: 'online', uptime: 12, model_format: 'onnx', current_model: uploaded.version, target_model: uploaded.version, errors: {}, operation_mode: 'idle' }
    await exchange.sendDetectorStatus(status)
    expect(loop.detectorStatuses('zauberzeug', 'exchange').map((s) => s.uuid)).toContain('det-1')
  })
})
