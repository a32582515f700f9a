import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DataExchange } from '../../src/loop/data-exchange.ts'
import { LoopError, LoopSocketError } from '../../src/loop/loop-error.ts'
import { LoopRestClient } from '../../src/loop/loop-rest-client.ts'
import type { LoopSocket } from '../../src/loop/loop-socket.ts'
import { createLogger } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { LoopReachability, LoopTrainerPort } from '../../src/trainer/loop-trainer-port.ts'
import { CriticalError, StepCancelledError } from '../../src/trainer/training-errors.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

describe('LoopReachability.isUnreachable (pure)', () => {
  const http = (status: number) => new LoopError({ kind: 'http', method: 'GET', path: '/api/x', detail: 'failed', status })
  test('no answer, a timeout or a failing gateway is an outage; an answer of the Loop itself is not', () => {
    expect(LoopReachability.isUnreachable(new LoopError({ kind: 'network', method: 'GET', path: '/api/x', detail: 'refused' }))).toBe(true)
    expect(LoopReachability.isUnreachable(new LoopError({ kind: 'timeout', method: 'GET', path: '/api/x', detail: 'slow' }))).toBe(true)
    for (const status of [502, 503, 504]) expect(LoopReachability.isUnreachable(http(status))).toBe(true)
    for (const status of [400, 404, 422, 500]) expect(LoopReachability.isUnreachable(http(status))).toBe(false)
    expect(LoopReachability.isUnreachable(new LoopSocketError('not_connected', 'update_training', 'x'))).toBe(true)
    expect(LoopReachability.isUnreachable(new LoopSocketError('rejected', 'update_training', 'x'))).toBe(false)
    expect(LoopReachability.isUnreachable(new Error('boom'))).toBe(false)
  })
})

describe('LoopTrainerPort against a real local loop', () => {
  let testLoop: TestLoop
  let metrics: MetricsRegistry
  let socket: { connected: boolean } | undefined

  function trainerPort(): LoopTrainerPort {
    const rest = new LoopRestClient({ baseUrl: testLoop.loop.url, timeoutMs: 5_000 })
    metrics = new MetricsRegistry()
    const log = createLogger('test')
    const reachability = new LoopReachability({
      backendReady: () => rest.backendReady(1_000), socket: () => socket as LoopSocket | undefined, initialWaitMs: 20, maxWaitMs: 100, socketPollMs: 10, log, metrics,
    })
    return new LoopTrainerPort({ exchange: new DataExchange(rest, { organization: 'local', project: 'demo' }), reachability, socket: () => socket as LoopSocket | undefined, log })
  }

  beforeEach(async () => {
    socket = undefined
    testLoop = await startTestLoop({ seedProject: false })
    await testLoop.loop.createProject('local', { project_name: 'demo', complete: 2, box_categories: 1 })
  })
  afterEach(() => testLoop.cleanup())

  test('a call that finds the Loop down waits for it (not a step failure) and goes on when it is back', async () => {
    const trainer = trainerPort()
    const ids = await trainer.fetchImageIds('state=complete')
    expect(ids).toHaveLength(2)
    await testLoop.loop.stop()
    let settled = false
    const pending = trainer.fetchImageIds('state=complete', new AbortController().signal).finally(() => { settled = true })
    await Bun.sleep(400)
    expect(settled).toBe(false)
    expect(metrics.render()).toContain('trainer_loop_reachable 0')
    await testLoop.restart()
    expect((await pending).sort()).toEqual([...ids].sort())
    expect(metrics.render()).toContain('trainer_loop_unreachable_total{need="rest"} 1')
    expect(metrics.render()).toContain('trainer_loop_reachable 1')
    const bytes = await trainer.downloadImage(ids[0]!, new AbortController().signal)
    expect([bytes[0], bytes[1]]).toEqual([0xff, 0xd8])
  })

  test('waiting for the Loop ends at once when the step is cancelled', async () => {
    const trainer = trainerPort()
    await testLoop.loop.stop()
    const cancel = new AbortController()
    const pending = trainer.fetchImageData(['a'], cancel.signal)
    await Bun.sleep(100)
    cancel.abort(new Error('training aborted'))
    await expect(pending).rejects.toBeInstanceOf(StepCancelledError)
  })

  test('a model the Loop refuses (4xx) is a CriticalError; a missing image a 404 the downloader can skip', async () => {
    const trainer = trainerPort()
    const file = join(testLoop.folder, 'model.bin')
    await writeFile(file, 'weights')
    const modelJson = join(testLoop.folder, 'model.json')
    await writeFile(modelJson, JSON.stringify({ categories: [] }))
    const upload = trainer.uploadModel(999, 'mocked', [file, modelJson], new AbortController().signal)
    await expect(upload).rejects.toBeInstanceOf(CriticalError)
    await expect(upload).rejects.toThrow('training 999 does not exist')
    const missing = await trainer.downloadImage('no-such-image', new AbortController().signal).catch((error: unknown) => error)
    expect(missing).toBeInstanceOf(LoopError)
    expect((missing as LoopError).status).toBe(404)
  })

  test('update_training fails fast without a connection; waitForConnection waits for the socket', async () => {
    const trainer = trainerPort()
    const out = { trainer_id: 'n', trainer_name: null, confusion_matrix: {}, train_image_count: 0, test_image_count: 0, hyperparameters: {}, best_epoch: 1 }
    await expect(trainer.updateTraining(out, new AbortController().signal)).rejects.toThrow('SocketIO client is not connected')
    socket = { connected: false }
    let connected = false
    const waiting = trainer.waitForConnection(new AbortController().signal).then(() => { connected = true })
    await Bun.sleep(100)
    expect(connected).toBe(false)
    socket.connected = true
    await waiting
    expect(metrics.render()).toContain('trainer_loop_unreachable_total{need="socket"} 1')
  })
})
