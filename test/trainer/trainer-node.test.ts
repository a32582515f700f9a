import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { readFile, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { isProcessAlive } from '../../src/trainer/process-group.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import {
  ALL_STATES_IN_ORDER, grandchildPid, waitForLogLine, reportedStates, reportedStatuses, startTrainer, TEST_TIMING, trainerDetectionCoverage, waitForTrainingState,
  type StartedTrainer,
} from './trainer-node-fixture.ts'

setDefaultTimeout(60_000)

const ORG = 'local'
let testLoop: TestLoop
let loop: LocalLoop
const started: StartedTrainer[] = []
let projectCount = 0

beforeAll(async () => {
  testLoop = await startTestLoop()
  loop = testLoop.loop
})
afterEach(async () => {
  for (const { node } of started.splice(0)) await node.stop()
})
afterAll(async () => {
  await testLoop?.cleanup()
})

async function trainer(env: Record<string, string> = {}): Promise<StartedTrainer> {
  const fresh = await startTrainer(loop, join(testLoop.folder, `trainer-${started.length}-${crypto.randomUUID().slice(0, 8)}`), env)
  started.push(fresh)
  return fresh
}

const categoriesOf = new Map<string, string[]>()

async function project(counts: { inbox?: number; annotate?: number; review?: number; complete?: number } = {}): Promise<string> {
  const name = `p${++projectCount}`
  const generated = await loop.createProject(ORG, { project_name: name, box_categories: 2, image_style: 'plain', ...counts })
  categoriesOf.set(name, generated.categories.map((c) => c.id).sort())
  return name
}

function startTraining(name: string, node: StartedTrainer['node'], hyperparameters: Record<string, unknown>) {
  return loop.startTraining(ORG, name, { node: node.uuid, modelVariant: 'small', hyperparameters })
}

const loopModels = (name: string) => loop.models(ORG, name).models as { id: string; version: string; formats: string[]; training_number: number }[]

describe('a training end to end against a local loop (testing trainer)', () => {
  test('every state in order, a model with its formats, post-training detections, then idle with the folder cleaned', async () => {
    const { node } = await trainer()
    const name = await project({ inbox: 3, annotate: 2, review: 2, complete: 8 })
    const { training, ack } = await startTraining(name, node, { epochs: 2, epoch_ms: 50, formats: 'mocked,mocked_2' })
    expect(ack).toEqual({ success: true, error_msg: null, payload: null })
    // the trainer knows the training by the Loop's id (logs, folder, persisted state)
    expect(node.supervisor.runner!.training.id).toBe(training.id)
    const folder = node.supervisor.runner!.training.training_folder
    expect(folder.endsWith(`/trainings/${training.id}`)).toBe(true)
    const result = await node.supervisor.waitUntilIdle()
    expect(result).toMatchObject({ outcome: 'completed', errors: {} })
    await waitFor(() => reportedStates(loop, node.uuid).join() === ALL_STATES_IN_ORDER.join(), 5_000, 'every state reported')

    const models = loopModels(name)
    expect(models).toHaveLength(1)
    expect(models[0]).toMatchObject({ version: `${training.number}.0`, training_number: training.number })
    expect(models[0]!.formats.sort()).toEqual(['mocked', 'mocked_2'])
    expect(trainerDetectionCoverage(loop, ORG, name)).toEqual({ with: 15, without: 0 })

    const update = loop.trainingUpdates().filter((u) => u.project === name).at(-1)!
    expect(update.training).toMatchObject({ trainer_id: node.uuid, trainer_name: 'trainer', best_epoch: 2 })
    expect((update.training.train_image_count ?? 0) + (update.training.test_image_count ?? 0)).toBe(8)
    expect(Object.keys(update.training.confusion_matrix ?? {}).sort()).toEqual(categoriesOf.get(name)!)

    const running = reportedStatuses(loop, node.uuid).find((s) => s.state === 'running')!
    expect(running.context).toEqual({ organization: ORG, project: name })
    expect(reportedStatuses(loop, node.uuid).at(-1)).toMatchObject({ state: 'idle', errors: {}, context: null })
    expect(existsSync(folder)).toBe(false)
    expect(existsSync(node.supervisor.lastTrainingFile.path)).toBe(false)
    const metrics = await (await fetch(`${node.url}/metrics`)).text()
    expect(metrics).toContain('trainer_trainings_total{outcome="completed"} 1')
    expect(metrics).toMatch(/trainer_status_updates_total\{result="ok"\} \d+/)
    expect(loop.trainings(ORG, name)[0]).toMatchObject({ state: 'ready_for_cleanup', outcome: 'completed', error: null })
  })

  test('KEEP_OLD_TRAININGS keeps the training folder after the training and when the next one begins', async () => {
    const { node } = await trainer({ KEEP_OLD_TRAININGS: 'true' })
    const name = await project({ complete: 2 })
    await startTraining(name, node, { epochs: 1, epoch_ms: 20 })
    const first = node.supervisor.runner!.training.training_folder
    await node.supervisor.waitUntilIdle()
    expect(existsSync(join(first, 'last_training.log'))).toBe(true)
    await startTraining(name, node, { epochs: 1, epoch_ms: 20 })
    const second = node.supervisor.runner!.training.training_folder
    await node.supervisor.waitUntilIdle()
    expect(second).not.toBe(first)
    expect(existsSync(first)).toBe(true)
    expect(existsSync(second)).toBe(true)
  })
})

describe('stop vs abort', () => {
  test('stop_training: the process group ends (grandchild included), the model is uploaded and detections are made', async () => {
    const { node } = await trainer()
    const name = await project({ complete: 3, inbox: 1 })
    await startTraining(name, node, { forever: true, epoch_ms: 50, grandchild: true })
    await waitForTrainingState(node, 'running')
    const folder = node.supervisor.runner!.training.training_folder
    const grandchild = await grandchildPid(folder)
    expect(isProcessAlive(grandchild)).toBe(true)
    const groupLeader = node.trainingExecutor!.pid!
    // a graceful stop keeps the model the program saves on SIGTERM; its handler is in place once an epoch is done
    await waitForLogLine(folder, /^epoch 1 done/)

    expect(await loop.stopTraining(node.uuid)).toEqual({ success: true, error_msg: null, payload: null })
    const result = await node.supervisor.waitUntilIdle()
    expect(result?.outcome).toBe('stopped')
    expect(isProcessAlive(grandchild)).toBe(false)
    expect(isProcessAlive(groupLeader)).toBe(false)
    expect(loopModels(name)).toHaveLength(1)
    expect(trainerDetectionCoverage(loop, ORG, name)).toEqual({ with: 4, without: 0 })
    await waitFor(() => loop.trainings(ORG, name)[0]!.outcome !== null, 5_000, 'the outcome in the Loop')
    expect(loop.trainings(ORG, name)[0]).toMatchObject({ outcome: 'stopped', error: null })
  })

  test('abort_training: nothing is uploaded, the group is killed even when a grandchild ignores SIGTERM, the training is gone', async () => {
    const { node } = await trainer()
    const name = await project({ complete: 3 })
    await startTraining(name, node, { forever: true, epoch_ms: 50, stubborn_grandchild: true })
    await waitForTrainingState(node, 'running')
    const folder = node.supervisor.runner!.training.training_folder
    const grandchild = await grandchildPid(folder)
    expect(isProcessAlive(grandchild)).toBe(true)

    // the ack comes once the training is gone
    expect(await loop.abortTraining(node.uuid)).toEqual({ success: true, error_msg: null, payload: null })
    expect(node.supervisor.isActive).toBe(false)
    expect(isProcessAlive(grandchild)).toBe(false)
    expect(loopModels(name)).toEqual([])
    expect(trainerDetectionCoverage(loop, ORG, name)).toEqual({ with: 0, without: 3 })
    expect(existsSync(node.supervisor.lastTrainingFile.path)).toBe(false)
    await waitFor(() => reportedStates(loop, node.uuid).at(-1) === 'idle', 5_000, 'idle reported')
    const states = reportedStates(loop, node.uuid)
    expect(states).not.toContain('train_model_uploading')
    expect(states.slice(-3)).toEqual(['running', 'ready_for_cleanup', 'idle'])
    expect(loop.trainings(ORG, name)[0]).toMatchObject({ outcome: 'aborted', error: null })
  })
})

describe('begin_training while a training runs', () => {
  test('the second begin gets {success:false} naming the active training; the first continues and completes', async () => {
    const { node } = await trainer()
    const name = await project({ complete: 2 })
    await startTraining(name, node, { forever: true, epoch_ms: 50 })
    await waitForTrainingState(node, 'running')
    const firstId = node.supervisor.runner!.trainingId

    const second = await startTraining(name, node, { epochs: 1 })
    expect(second.ack).toMatchObject({ success: false })
    expect((second.ack as { error_msg: string }).error_msg).toContain(`a training is already active (training ${firstId} is running)`)
    expect(second.training.state).toBe('refused by trainer')
    await waitForLogLine(node.supervisor.runner!.training.training_folder, /^epoch 2 done/)
    expect(node.supervisor.runner?.trainingId).toBe(firstId)
    expect(node.supervisor.status().state).toBe('running')

    node.stopTraining()
    expect((await node.supervisor.waitUntilIdle())?.outcome).toBe('stopped')
    expect(loopModels(name)).toHaveLength(1)
    const metrics = await (await fetch(`${node.url}/metrics`)).text()
    expect(metrics).toContain('trainer_begin_rejected_total{reason="busy"} 1')
  })
})

describe('bad input', () => {
  test('begin_training without hyperparameters or categories: a failure ack naming the field, nothing starts', async () => {
    const { node } = await trainer()
    const name = await project()
    const details = { categories: [], hyperparameters: { epochs: 1 }, training_number: 1, model_variant: 'small' }
    const { hyperparameters: _h, ...noHyperparameters } = details
    const { categories: _c, ...noCategories } = details
    expect(await loop.emitToNode(node.uuid, 'begin_training', ORG, name, noHyperparameters))
      .toEqual({ success: false, error_msg: 'hyperparameters missing or not a dict', payload: null })
    expect(await loop.emitToNode(node.uuid, 'begin_training', ORG, name, noCategories))
      .toEqual({ success: false, error_msg: 'categories missing or not a list', payload: null })
    expect(await loop.emitToNode(node.uuid, 'begin_training', ORG, name, { ...details, hyperparameters: 'fast' }))
      .toEqual({ success: false, error_msg: 'hyperparameters missing or not a dict', payload: null })
    expect(await loop.emitToNode(node.uuid, 'begin_training', 42, name, details))
      .toEqual({ success: false, error_msg: 'organization missing or not a str', payload: null })
    expect(node.supervisor.isActive).toBe(false)
    const metrics = await (await fetch(`${node.url}/metrics`)).text()
    expect(metrics).toContain('trainer_begin_rejected_total{reason="invalid"} 3')
    expect(metrics).toContain('trainer_loop_events_total{event="begin_training",result="refused"} 4')
  })

  test('a corrupt image in the data set is dropped and counted; the training goes on without it', async () => {
    const { node } = await trainer()
    const name = await project({ complete: 6 })
    const victim = loop.listImages(ORG, name, 'complete')[0]!
    const path = loop.store.images.path(loop.store.images.get(ORG, name, victim.id)!)
    const size = (await readFile(path)).length
    await truncate(path, Math.floor(size / 2))

    await startTraining(name, node, { epochs: 1, epoch_ms: 20 })
    expect((await node.supervisor.waitUntilIdle())?.outcome).toBe('completed')
    const update = loop.trainingUpdates().filter((u) => u.project === name).at(-1)!
    expect((update.training.train_image_count ?? 0) + (update.training.test_image_count ?? 0)).toBe(5)
    const metrics = await (await fetch(`${node.url}/metrics`)).text()
    expect(metrics).toMatch(/trainer_downloaded_images_total\{result="corrupt"\} [12]\n/)
    expect(trainerDetectionCoverage(loop, ORG, name)).toEqual({ with: 5, without: 1 })
    expect(loop.listImages(ORG, name).find((i) => i.id === victim.id)?.has_trainer_detections).toBe(false)
  })

  test('a training command that keeps failing ends, after the bounded retries, in a reported failed state', async () => {
    const { node } = await trainer()
    const name = await project({ complete: 2 })
    await startTraining(name, node, { epochs: 3, epoch_ms: 20, fail_at: 1 })
    const result = await node.supervisor.waitUntilIdle()
    expect(result?.outcome).toBe('failed')
    expect(result?.errors.run_training).toBe('simulated training failure at epoch 1 (gave up after 2 attempts)')
    await waitFor(() => reportedStates(loop, node.uuid).at(-1) === 'idle', 5_000, 'idle reported')
    const reported = reportedStatuses(loop, node.uuid).find((s) => s.state === 'ready_for_cleanup')!
    expect(reported.errors).toEqual({ run_training: 'simulated training failure at epoch 1 (gave up after 2 attempts)' })
    // the first failure was reported while the step was retried
    expect(reportedStatuses(loop, node.uuid).some((s) => s.state === 'train_model_downloaded' && s.errors?.run_training === 'simulated training failure at epoch 1')).toBe(true)
    expect(loopModels(name)).toEqual([])
    const metrics = await (await fetch(`${node.url}/metrics`)).text()
    expect(metrics).toContain('trainer_trainings_total{outcome="failed"} 1')
    expect(loop.trainings(ORG, name)[0]).toMatchObject({ outcome: 'failed', error: 'run_training: simulated training failure at epoch 1 (gave up after 2 attempts)' })
  })
})

describe('failures a retry cannot change fail the training at once', () => {
  test('a base model the Loop does not have (404) fails download_model on its first attempt, with the Loop\'s answer', async () => {
    const { node } = await trainer()
    const name = await project({ complete: 1 })
    const missing = '00000000-0000-4000-8000-00000000dead'
    await loop.startTraining(ORG, name, { node: node.uuid, modelVariant: 'small', hyperparameters: { epochs: 1 }, baseModelUuid: missing })
    const result = await node.supervisor.waitUntilIdle()
    expect(result?.outcome).toBe('failed')
    expect(result?.errors.download_model).toContain('404')
    expect(result?.errors.download_model).toContain(missing)
    expect(result?.errors.download_model).not.toContain('gave up')
    const metrics = node.runtime.metrics.render()
    expect(metrics).toContain('trainer_steps_total{result="critical_error",step="download_model"} 1')
    expect(metrics).not.toContain('trainer_steps_total{result="failed",step="download_model"}')
    await waitFor(() => loop.trainings(ORG, name)[0]!.outcome !== null, 5_000, 'the outcome in the Loop')
    expect(loop.trainings(ORG, name)[0]!.outcome).toBe('failed')
    expect(loop.trainings(ORG, name)[0]!.error).toContain(`download_model: GET /api/${ORG}/projects/${name}/models/${missing}`)
  })
})

describe('node lifecycle', () => {
  test('TRAINER_IDLE_TIMEOUT_SEC: an idle trainer exits with status 0', async () => {
    const { node, exits } = await trainer({ TRAINER_IDLE_TIMEOUT_SEC: '0.3' })
    await waitFor(() => exits.length > 0, 10_000, 'the idle exit')
    expect(exits).toEqual([{ code: 0, reason: 'idle for more than 0.3 s (TRAINER_IDLE_TIMEOUT_SEC)' }])
    expect(node.runtime.isShuttingDown).toBe(true)
  })

  test('RESTART_AFTER_TRAINING: the trainer exits with status 0 once the training is cleaned up', async () => {
    const { node, exits } = await trainer({ RESTART_AFTER_TRAINING: '1' })
    const name = await project({ complete: 1 })
    await startTraining(name, node, { epochs: 1, epoch_ms: 20 })
    await node.supervisor.waitUntilIdle()
    await waitFor(() => exits.length > 0, 10_000, 'the exit after the training')
    expect(exits).toEqual([{ code: 0, reason: 'RESTART_AFTER_TRAINING is set' }])
    expect(reportedStates(loop, node.uuid).at(-1)).toBe('idle')
  })

  test("the Loop's restart event: graceful shutdown that keeps the training for the next start, then exit 0", async () => {
    const { node, exits } = await trainer()
    const name = await project({ complete: 1 })
    await startTraining(name, node, { forever: true, epoch_ms: 50 })
    await waitForTrainingState(node, 'running')
    await loop.emit(node.uuid, 'restart', [], { expectAck: false })
    await waitFor(() => exits.length > 0, 10_000, 'the exit')
    expect(exits[0]).toEqual({ code: 0, reason: 'the Loop asked this node to restart' })
    const persisted = JSON.parse(await readFile(node.supervisor.lastTrainingFile.path, 'utf8'))
    expect(persisted.training_state).toBe('train_model_downloaded')
    expect(node.trainingExecutor).toBeUndefined()
  })

  test('/ready follows the Loop connection; PUT /socketio off disconnects', async () => {
    const { node } = await trainer()
    expect((await fetch(`${node.url}/ready`)).status).toBe(200)
    expect((await fetch(`${node.url}/socketio`, { method: 'PUT', body: 'off' })).status).toBe(200)
    const notReady = await fetch(`${node.url}/ready`)
    expect(notReady.status).toBe(503)
    expect(await notReady.json()).toEqual({ ready: false, reason: 'not connected to the Loop' })
    expect((await fetch(`${node.url}/socketio`, { method: 'PUT', body: 'on' })).status).toBe(200)
    await waitFor(async () => (await fetch(`${node.url}/ready`)).status === 200, 10_000, 'ready again')
  })
})

describe('backdoor controls (USE_BACKDOOR_CONTROLS)', () => {
  test('kill_training_process, force_status_update and reset', async () => {
    const plain = await trainer()
    expect((await fetch(`${plain.node.url}/reset`, { method: 'POST' })).status).toBe(404)

    const { node } = await trainer({ USE_BACKDOOR_CONTROLS: '1' })
    expect((await fetch(`${node.url}/kill_training_process`, { method: 'POST' })).status).toBe(409)
    const before = loop.statusHistory(node.uuid).length
    expect(await (await fetch(`${node.url}/force_status_update`, { method: 'POST' })).json()).toEqual({ sent: true })
    expect(loop.statusHistory(node.uuid).length).toBeGreaterThan(before)

    // killing the process ends run_training like a finished run: the model it saved is uploaded
    const name = await project({ complete: 2 })
    await startTraining(name, node, { forever: true, epoch_ms: 50 })
    await waitForTrainingState(node, 'running')
    await waitForLogLine(node.supervisor.runner!.training.training_folder, /^epoch 1 done/)
    expect((await fetch(`${node.url}/kill_training_process`, { method: 'POST' })).status).toBe(200)
    expect((await node.supervisor.waitUntilIdle())?.outcome).toBe('completed')
    expect(loopModels(name)).toHaveLength(1)

    await startTraining(name, node, { forever: true, epoch_ms: 50 })
    await waitForTrainingState(node, 'running')
    expect((await fetch(`${node.url}/reset`, { method: 'POST' })).status).toBe(200)
    expect(node.supervisor.isActive).toBe(false)
    expect(existsSync(node.supervisor.lastTrainingFile.path)).toBe(false)
    expect(loopModels(name)).toHaveLength(1)
  })
})

describe('shutdown grace', () => {
  test('a long TRAINER_CANCEL_GRACE_MS widens the shutdown grace, so the training process can stop before the node exits', async () => {
    const short = await trainer()
    expect(short.node.runtime.shutdownBudget.graceMs).toBe(8_000)
    const long = await startTrainer(loop, join(testLoop.folder, `trainer-long-grace-${crypto.randomUUID().slice(0, 8)}`), {}, { ...TEST_TIMING, executor: { stopGraceMs: 3_000, cancelGraceMs: 12_000 } })
    started.push(long)
    // cancelling the process, the last status, a margin: all kept for persisting, after 2 s for requests in flight
    expect(long.node.runtime.shutdownBudget).toEqual({ persistMs: 12_000 + 2_000 + 1_000, graceMs: 12_000 + 2_000 + 1_000 + 2_000 })
  })
})
