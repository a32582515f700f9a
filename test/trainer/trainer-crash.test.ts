import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isProcessAlive } from '../../src/trainer/process-group.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import { freePort, runNodeCommand } from '../support/node-process.ts'
import { LoopProcess, startTrainerProcess, type TrainerProcess } from './node-processes.ts'

/**
 * Acceptance 3 of issue 5: the trainer (a child process running the CLI) is killed with SIGKILL in `running`,
 * in `train_model_uploading` and in `detection_uploading`, then started again — once with the Loop down at
 * the restart and started 10 s later. The training must complete with nothing uploaded twice and nothing missing.
 * The Loop is its own child process; the kills are timed by the progress files on disk, so they land between
 * two requests, never in the middle of one.
 */
setDefaultTimeout(120_000)

let temp: Awaited<ReturnType<typeof makeTempDir>>
let loop: LoopProcess
const trainers: TrainerProcess[] = []

beforeAll(async () => {
  temp = await makeTempDir('lln-trainer-crash-')
  loop = new LoopProcess(freePort(), join(temp.path, 'loop'))
  await loop.start()
})
afterEach(async () => {
  for (const trainer of trainers.splice(0)) await trainer.child.kill('SIGTERM')
  if (!loop.running) await loop.start()
})
afterAll(async () => {
  await loop?.stop()
  await temp?.cleanup()
})

async function trainer(dataFolder: string, options: Parameters<typeof startTrainerProcess>[2] = {}): Promise<TrainerProcess> {
  const started = await startTrainerProcess(loop.url, dataFolder, options)
  trainers.push(started)
  return started
}

async function killHard(process: TrainerProcess): Promise<void> {
  process.child.proc.kill('SIGKILL')
  await process.child.proc.exited
  trainers.splice(trainers.indexOf(process), 1)
}

/** The one training folder of `project` in the trainer's data folder. */
async function trainingFolder(dataFolder: string, project: string): Promise<string> {
  const trainings = join(dataFolder, 'local', project, 'trainings')
  const [id] = await waitFor(async () => {
    const entries = await readdir(trainings).catch(() => [] as string[])
    return entries.length === 1 ? entries : undefined
  }, 20_000, 'the training folder')
  return join(trainings, id!)
}

const readText = (path: string) => readFile(path, 'utf8').catch(() => '')

/** The training ended: the last-training file is gone and the Loop heard `idle` after `ready_for_cleanup`. */
async function waitUntilTrainingDone(dataFolder: string, uuid: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => {
    if (existsSync(join(dataFolder, `last_training__${uuid}.json`))) return false
    const states = await loop.states(uuid)
    return states.lastIndexOf('ready_for_cleanup') >= 0 && states.at(-1) === 'idle'
  }, timeoutMs, 'the training to finish')
}

async function expectCompleteAndOnce(project: string, expected: { formats: string[]; images: number; modelUploads: number; detectionUploads: number }, counts: { modelUploads: number; detectionUploads: number }): Promise<void> {
  const models = await loop.models(project)
  expect(models).toHaveLength(1)
  expect(models[0]!.version).toBe(`${models[0]!.training_number}.0`)
  expect(models[0]!.formats.sort()).toEqual(expected.formats)
  expect(await loop.imagesWithoutTrainerDetections(project)).toEqual({ total: expected.images, without: 0 })
  expect(counts).toEqual({ modelUploads: expected.modelUploads, detectionUploads: expected.detectionUploads })
}

function delta(after: { modelUploads: number; detectionUploads: number }, before: { modelUploads: number; detectionUploads: number }) {
  return { modelUploads: after.modelUploads - before.modelUploads, detectionUploads: after.detectionUploads - before.detectionUploads }
}

test('kill -9 in running: the training process group dies with the node; after the restart the training resumes from its checkpoint', async () => {
  const data = join(temp.path, 'running')
  await loop.createProject('running', { inbox: 2, complete: 6 })
  const before = await loop.requestCounts()
  const first = await trainer(data)
  expect((await loop.startTraining('running', first.uuid, { epochs: 12, epoch_ms: 250, formats: 'mocked,mocked_2' })).ack.success).toBe(true)
  const folder = await trainingFolder(data, 'running')
  await waitFor(async () => (JSON.parse((await readText(join(folder, 'checkpoint.json'))) || '{"epoch":0}').epoch as number) >= 2, 30_000, 'epoch 2')
  const trainingPid = Number(/\{"pid":(\d+)\}/.exec(await readText(join(folder, 'last_training.log')))![1])
  expect(isProcessAlive(trainingPid)).toBe(true)

  await killHard(first)
  // no handler runs on SIGKILL: the executor's watchdog takes the training group down
  await waitFor(() => !isProcessAlive(trainingPid), 5_000, 'the orphaned training process to die')
  expect(JSON.parse(await readText(join(data, `last_training__${first.uuid}.json`))).training_state).toBe('train_model_downloaded')

  const second = await trainer(data)
  expect(second.uuid).toBe(first.uuid)
  await waitUntilTrainingDone(data, second.uuid)
  const resumedAt = Number(/\{"resumed_at_epoch":(\d+)\}/.exec(await readText(join(folder, 'last_training.log')))?.[1])
  expect(resumedAt).toBeGreaterThanOrEqual(2)
  await expectCompleteAndOnce('running', { formats: ['mocked', 'mocked_2'], images: 8, modelUploads: 2, detectionUploads: 1 }, delta(await loop.requestCounts(), before))
})

test('kill -9 in train_model_uploading after the first of two formats: the restart uploads only the second', async () => {
  const data = join(temp.path, 'model-upload')
  await loop.createProject('model-upload', { inbox: 1, complete: 3 })
  const before = await loop.requestCounts()
  const pause = ['--upload-pause-ms', '1500']
  const first = await trainer(data, { flags: pause })
  await loop.startTraining('model-upload', first.uuid, { epochs: 2, epoch_ms: 50, formats: 'mocked,mocked_2' })
  const folder = await trainingFolder(data, 'model-upload')
  await waitFor(async () => (await readText(join(folder, 'model_uploading_progress.txt'))).trim() === 'mocked', 30_000, 'the first format uploaded')
  await killHard(first)
  expect((await loop.models('model-upload'))[0]?.formats).toEqual(['mocked'])
  expect((await loop.states(first.uuid)).at(-1)).toBe('train_model_uploading')

  const second = await trainer(data, { flags: pause })
  await waitUntilTrainingDone(data, second.uuid)
  await expectCompleteAndOnce('model-upload', { formats: ['mocked', 'mocked_2'], images: 4, modelUploads: 2, detectionUploads: 1 }, delta(await loop.requestCounts(), before))
})

test('kill -9 in detection_uploading in the middle of a detections file: the restart goes on from the saved offset', async () => {
  const data = join(temp.path, 'detection-upload')
  // 120 images in detection files of 110 and 10: POSTs of 100 + 10, then 10
  await loop.createProject('detection-upload', { inbox: 10, annotate: 5, review: 5, complete: 100 })
  const before = await loop.requestCounts()
  const options = { flags: ['--upload-pause-ms', '1200'], env: { INFERENCE_BATCH_SIZE: '110' } }
  const first = await trainer(data, options)
  await loop.startTraining('detection-upload', first.uuid, { epochs: 1, epoch_ms: 20 })
  const folder = await trainingFolder(data, 'detection-upload')
  await waitFor(async () => (await readText(join(folder, 'detection_uploading_progress.txt'))).trim() === '100', 60_000, 'the first batch of detections uploaded')
  await killHard(first)
  expect(await loop.imagesWithoutTrainerDetections('detection-upload')).toEqual({ total: 120, without: 20 })

  const second = await trainer(data, options)
  await waitUntilTrainingDone(data, second.uuid)
  await expectCompleteAndOnce('detection-upload', { formats: ['mocked'], images: 120, modelUploads: 1, detectionUploads: 3 }, delta(await loop.requestCounts(), before))
})

test('kill -9 in running, restart while the Loop is down: the training resumes offline, Loop steps wait, and it completes once the Loop is back', async () => {
  const data = join(temp.path, 'loop-down')
  await loop.createProject('loop-down', { inbox: 1, complete: 4 })
  const first = await trainer(data)
  await loop.startTraining('loop-down', first.uuid, { epochs: 10, epoch_ms: 250 })
  const folder = await trainingFolder(data, 'loop-down')
  await waitFor(async () => (JSON.parse((await readText(join(folder, 'checkpoint.json'))) || '{"epoch":0}').epoch as number) >= 2, 30_000, 'epoch 2')
  await killHard(first)
  await loop.stop()

  const restartedAt = Date.now()
  const second = await trainer(data, { waitReady: false })
  // offline steps proceed: the training process is started again (resumed from its checkpoint) without the Loop
  await waitFor(async () => /\{"resumed_at_epoch":\d+\}/.test(await readText(join(folder, 'last_training.log'))), 20_000, 'the training resumed offline')
  const notReady = await fetch(`${second.url}/ready`)
  expect(notReady.status).toBe(503)
  // the Loop steps wait: the model cannot be uploaded, so the training stays on disk
  await Bun.sleep(Math.max(0, 10_000 - (Date.now() - restartedAt)))
  expect(existsSync(join(data, `last_training__${second.uuid}.json`))).toBe(true)
  await loop.start()

  await waitUntilTrainingDone(data, second.uuid, 90_000)
  // the restarted loop counts requests from zero: everything this training uploaded came after it was back
  await expectCompleteAndOnce('loop-down', { formats: ['mocked'], images: 5, modelUploads: 1, detectionUploads: 1 }, await loop.requestCounts())
  expect((await fetch(`${second.url}/ready`)).status).toBe(200)
})

/** `learning-loop-node loop admin …` against the loop child; returns its exit code and output. */
const loopAdmin = (...args: string[]) => runNodeCommand(['loop', 'admin', ...args, '--url', loop.url])

test('SIGTERM stops the trainer gracefully (exit 0, process group gone, training kept); the admin CLI starts and aborts trainings', async () => {
  const data = join(temp.path, 'cli')
  await loop.createProject('cli', { complete: 2 })
  const first = await trainer(data)
  const started = await loopAdmin('start-training', '--org', 'local', '--project', 'cli', '--node', first.uuid, '--variant', 'small',
    '--hyperparameters', JSON.stringify({ forever: true, epoch_ms: 50, grandchild: true }))
  expect(started.code).toBe(0)
  expect(JSON.parse(started.stdout).ack).toEqual({ success: true, error_msg: null, payload: null })
  const folder = await trainingFolder(data, 'cli')
  const grandchild = Number(/\{"grandchild_pid":(\d+)\}/.exec(await waitFor(async () => {
    const log = await readText(join(folder, 'last_training.log'))
    return log.includes('epoch 1 done') && log.includes('grandchild_pid') ? log : undefined
  }, 20_000, 'the training with its grandchild'))![1])
  expect(isProcessAlive(grandchild)).toBe(true)

  first.child.proc.kill('SIGTERM')
  expect(await first.child.proc.exited).toBe(0)
  trainers.splice(trainers.indexOf(first), 1)
  expect(isProcessAlive(grandchild)).toBe(false)
  expect(JSON.parse(await readText(join(data, `last_training__${first.uuid}.json`))).training_state).toBe('train_model_downloaded')

  const second = await trainer(data)
  await waitFor(async () => (await readText(join(folder, 'last_training.log'))).match(/\{"pid":\d+\}/g)?.length === 2, 20_000, 'the training process started again')
  const aborted = await loopAdmin('abort-training', '--node', second.uuid)
  expect(aborted.code).toBe(0)
  expect(JSON.parse(aborted.stdout).ack).toEqual({ success: true, error_msg: null, payload: null })
  expect(existsSync(join(data, `last_training__${second.uuid}.json`))).toBe(false)
  expect(await loop.models('cli')).toEqual([])
  const stopped = await loopAdmin('stop-training', '--node', second.uuid)
  expect(JSON.parse(stopped.stdout).ack).toEqual({ success: true, error_msg: null, payload: null })
})
