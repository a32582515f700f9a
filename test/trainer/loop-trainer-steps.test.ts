import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Detections, Training, TrainingStateData } from '../../src/contract/index.ts'
import { createLogger } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { ActiveTrainingFiles } from '../../src/trainer/active-training-files.ts'
import { CommandTrainer } from '../../src/trainer/command-trainer.ts'
import { createLoopTrainerSteps } from '../../src/trainer/loop-trainer-steps.ts'
import type { DetectionRequest, ModelFiles, TrainerLogic } from '../../src/trainer/trainer-logic.ts'
import { createTraining } from '../../src/trainer/training-creation.ts'
import { BeginTrainingRejected, CriticalError } from '../../src/trainer/training-errors.ts'
import type { StepContext, TrainingResult } from '../../src/trainer/training-runner.ts'
import { TrainingSupervisor } from '../../src/trainer/training-supervisor.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import { FakeLoop } from './fake-loop.ts'

const CATEGORY = 'cccccccc-0000-4000-8000-000000000001'
const BASE_MODEL = '00000000-0000-4000-8000-0000000000b1'
const SCRIPT = join(import.meta.dir, '../../src/trainer/testing-trainer-script.ts')

/** A TrainerLogic in this process, for the steps that do not run a training process. */
class InProcessLogic implements TrainerLogic {
  readonly modelFormat = 'mocked'
  readonly modelArchitecture = 'tiny'
  readonly providedPretrainedModels = [{ name: 'small', label: 'Small', description: 'a small one' }]
  modelFiles: ModelFiles | null = null
  bestState: TrainingStateData | null = null
  readonly published: TrainingStateData[] = []
  readonly detectBatches: string[][] = []
  readonly cleared: string[] = []
  trainingProgress() {
    return null
  }
  async startTrainingFromScratch() {}
  async startTrainingFromBaseModel() {}
  async canResume() {
    return false
  }
  async resume() {}
  async errorFromLog() {
    return null
  }
  async newBestTrainingState() {
    return this.bestState && !this.published.includes(this.bestState) ? this.bestState : null
  }
  async onMetricsPublished(state: TrainingStateData) {
    if (this.bestState) this.published.push(this.bestState)
    void state
  }
  async latestModelFiles() {
    return this.modelFiles
  }
  async detect(request: DetectionRequest): Promise<Detections[]> {
    this.detectBatches.push(request.imagePaths.map((p) => p.split('/').pop()!))
    return request.imagePaths.map((p) => ({ image_id: p.split('/').pop()!.replace('.jpg', ''), box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [] }))
  }
  async clearTrainingData(folder: string) {
    this.cleared.push(folder)
  }
}

let temp: Awaited<ReturnType<typeof makeTempDir>>
beforeEach(async () => {
  temp = await makeTempDir('lln-loop-steps-')
})
afterEach(async () => {
  await temp.cleanup()
})

async function newTraining(patch: Partial<Training> = {}): Promise<Training> {
  const training = await createTraining({
    dataFolder: temp.path,
    context: { organization: 'zauberzeug', project: 'demo' },
    details: { categories: [{ id: CATEGORY, name: 'thing' }], hyperparameters: { resolution: 320, epochs: 2 }, training_number: 3, model_variant: 'small', base_model_uuid: BASE_MODEL },
    keepOldTrainings: false,
  })
  return { ...training, ...patch }
}

function context(training: Training): StepContext {
  return {
    signal: new AbortController().signal, stopSignal: new AbortController().signal, attempt: 1,
    files: new ActiveTrainingFiles(training.training_folder), log: createLogger('test'), reportProgress: () => {},
  }
}

function stepsWith(logic: TrainerLogic, loop: FakeLoop, batch = 2) {
  return createLoopTrainerSteps({ logic, loop, trainerId: 'node-1', trainerName: 'trainer', inferenceBatchSize: batch, downloader: { progressOutput: null, retryBaseMs: 1, minRequestSpacingMs: 0 } })
}

describe('Loop-backed steps', () => {
  test('prepare downloads the complete images and reports the usable image data', async () => {
    const loop = new FakeLoop({ complete: ['a', 'b', 'c'], inbox: ['x'] })
    const training = await newTraining()
    const update = await stepsWith(new InProcessLogic(), loop).prepare(training, context(training))
    expect(update?.image_data?.map((d) => d.id)).toEqual(['a', 'b', 'c'])
    expect(update?.skipped_image_count).toBe(0)
    expect(existsSync(join(training.images_folder, 'b.jpg'))).toBe(true)
    expect(existsSync(join(training.images_folder, 'x.jpg'))).toBe(false)
  })

  test('download_model unpacks the base model and renames its model.json; none or an invalid uuid trains from scratch', async () => {
    const loop = new FakeLoop()
    loop.models.set(`${BASE_MODEL}/mocked`, { 'model.json': '{"id":"b"}', 'file_1.txt': 'one', 'file_2.txt': 'two' })
    const training = await newTraining()
    const steps = stepsWith(new InProcessLogic(), loop)
    await steps.downloadModel(training, context(training))
    expect(readFileSync(join(training.training_folder, 'base_model.json'), 'utf8')).toBe('{"id":"b"}')
    expect(readFileSync(join(training.training_folder, 'base_model', 'file_1.txt'), 'utf8')).toBe('one')
    // a retry after a crash starts from a clean folder
    await steps.downloadModel(training, context(training))
    await steps.downloadModel({ ...training, base_model_uuid: null }, context(training))
    await steps.downloadModel({ ...training, base_model_uuid: 'not-a-uuid' }, context(training))
    const missing = { ...training, base_model_uuid: '00000000-0000-0000-0000-000000000000' }
    await expect(steps.downloadModel(missing, context(training))).rejects.toThrow('not found')
    loop.models.set(`${BASE_MODEL}/mocked`, { 'weights.bin': 'w' })
    await expect(steps.downloadModel(training, context(training))).rejects.toBeInstanceOf(CriticalError)
  })

  test('the confusion matrix is synced with image counts per set, once per new best state; a failed sync fails the step', async () => {
    const loop = new FakeLoop()
    const logic = new InProcessLogic()
    const training = await newTraining({ image_data: [0, 1, 2, 3, 4].map((i) => ({ id: `i${i}`, set: i === 0 ? 'test' : 'train', width: 1, height: 1 })) })
    const steps = stepsWith(logic, loop)
    await steps.syncConfusionMatrix(training, context(training)) // nothing to sync yet
    expect(loop.trainingUpdates).toEqual([])
    logic.bestState = { confusion_matrix: { [CATEGORY]: { tp: 4, fp: 1, fn: 0 } }, meta_information: {}, epoch: 7 }
    loop.updateTrainingFails = true
    await expect(steps.syncConfusionMatrix(training, context(training))).rejects.toThrow('update_training')
    expect(logic.published).toEqual([])
    loop.updateTrainingFails = false
    await steps.syncConfusionMatrix(training, context(training))
    await steps.syncConfusionMatrix(training, context(training))
    expect(loop.trainingUpdates).toEqual([{
      trainer_id: 'node-1', trainer_name: 'trainer', confusion_matrix: { [CATEGORY]: { tp: 4, fp: 1, fn: 0 } },
      train_image_count: 4, test_image_count: 1, hyperparameters: { resolution: 320, epochs: 2 }, best_epoch: 7,
    }])
  })

  test('upload_model: per format, resumable after a failure, model.json written once (merged with the trainer\'s own)', async () => {
    const loop = new FakeLoop()
    const logic = new InProcessLogic()
    const training = await newTraining()
    await mkdir(join(training.training_folder, 'out'), { recursive: true })
    const weights = join(training.training_folder, 'out', 'best.pt')
    const ownModelJson = join(training.training_folder, 'out', 'model.json')
    await writeFile(weights, 'w')
    await writeFile(ownModelJson, '{"resolution": 640, "extra": true}')
    logic.modelFiles = { mocked: [weights], onnx: [weights, ownModelJson] }
    loop.uploadFailures.set('onnx', 1)
    const steps = stepsWith(logic, loop)
    await expect(steps.uploadModel(training, context(training))).rejects.toThrow('502')
    expect(loop.uploads.map((u) => u.format)).toEqual(['mocked'])
    const update = await steps.uploadModel(training, context(training))
    expect(loop.uploads.map((u) => u.format)).toEqual(['mocked', 'onnx'])
    expect(update).toEqual({ model_uuid_for_detecting: 'model-2' })
    expect(loop.uploads[0]).toEqual({ format: 'mocked', files: ['best.pt', 'model.json'], modelJson: { categories: training.categories, resolution: 320 } })
    expect(loop.uploads[1]?.files).toEqual(['best.pt', 'model.json'])
    expect(loop.uploads[1]?.modelJson).toEqual({ resolution: 640, extra: true, categories: training.categories })
    expect(readFileSync(join(training.training_folder, 'model_uploading_progress.txt'), 'utf8')).toBe('mocked,onnx')

    // a crash after the last upload: the step runs again, uploads nothing, and still knows the id (§15.12 fixed)
    expect(await steps.uploadModel(training, context(training))).toEqual({ model_uuid_for_detecting: 'model-2' })
    expect(loop.uploads).toHaveLength(2)
  })

  test('upload_model without model files is a CriticalError with upstream\'s message', async () => {
    const training = await newTraining()
    const steps = stepsWith(new InProcessLogic(), new FakeLoop())
    await expect(steps.uploadModel(training, context(training))).rejects.toThrow(new CriticalError('Could not get latest model files. Training might have failed.'))
  })

  test('detecting runs the model over the images of every state in INFERENCE_BATCH_SIZE batches and saves them', async () => {
    const loop = new FakeLoop({ inbox: ['a', 'b'], annotate: ['c'], review: [], complete: ['d', 'e'] })
    loop.models.set('model-9/mocked', { 'model.json': JSON.stringify({ id: 'model-9', host: null, organization: 'zauberzeug', project: 'demo', version: '1.2' }), 'best.pt': 'w' })
    const logic = new InProcessLogic()
    const training = await newTraining({ model_uuid_for_detecting: 'model-9' })
    const ctx = context(training)
    await stepsWith(logic, loop, 2).detect(training, ctx)
    expect(logic.detectBatches).toEqual([['a.jpg', 'b.jpg'], ['c.jpg', 'd.jpg'], ['e.jpg']])
    expect(await ctx.files.listDetectionFiles()).toEqual([0, 1, 2])
    expect((await ctx.files.loadDetections(2)).map((d) => d.image_id)).toEqual(['e'])

    // without a model id the step logs and succeeds with no files
    const none = await newTraining()
    await stepsWith(logic, loop).detect(none, context(none))
    expect(await context(none).files.listDetectionFiles()).toEqual([])
  })

  test('upload_detections sends batches of 100 and resumes at the saved file index and offset after a failure', async () => {
    const loop = new FakeLoop()
    const training = await newTraining()
    const ctx = context(training)
    const detections = (n: number, prefix: string): Detections[] => Array.from({ length: n }, (_, i) => ({ image_id: `${prefix}${i}`, box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [] }))
    await ctx.files.saveDetections(0, detections(150, 'a'))
    await ctx.files.saveDetections(1, detections(250, 'b'))
    loop.failingDetectionCalls.add(4) // file 1, second batch
    const steps = stepsWith(new InProcessLogic(), loop)
    await expect(steps.uploadDetections(training, ctx)).rejects.toThrow('500')
    expect(await ctx.files.readDetectionUploadIndex()).toBe(1)
    expect(await ctx.files.readDetectionUploadOffset()).toBe(100)
    await steps.uploadDetections(training, ctx)
    expect(loop.detectionBatches.map((b) => b.length)).toEqual([100, 50, 100, 100, 50])
    const ids = loop.detectionBatches.flat().map((d) => d.image_id)
    expect(new Set(ids).size).toBe(400)
    expect(await ctx.files.readDetectionUploadIndex()).toBe(2)
    expect(await ctx.files.readDetectionUploadOffset()).toBe(0)
  })

  test('upload_detections with no detection files succeeds without uploading', async () => {
    const loop = new FakeLoop()
    const training = await newTraining()
    await stepsWith(new InProcessLogic(), loop).uploadDetections(training, context(training))
    expect(loop.detectionBatches).toEqual([])
  })
})

describe('TrainingSupervisor', () => {
  function supervisorWith(loop: FakeLoop, command: string, extra: { metrics?: MetricsRegistry; ended?: TrainingResult[]; cleanups?: string[] } = {}) {
    const logic = new CommandTrainer({
      model_format: 'mocked', command,
      detect_command: `{bun} ${SCRIPT} detect --images-list {images_list} --model-folder {model_folder}`,
    }, { executor: { stopGraceMs: 2_000, cancelGraceMs: 500 } })
    return new TrainingSupervisor({
      dataFolder: temp.path,
      nodeUuid: 'node-1',
      retry: { maxAttempts: 2, baseDelayMs: 5 },
      ...(extra.metrics ? { metrics: extra.metrics } : {}),
      stepsFor: () => createLoopTrainerSteps({
        logic, loop, trainerId: 'node-1', trainerName: 'trainer', inferenceBatchSize: 2,
        downloader: { progressOutput: null, minRequestSpacingMs: 0 }, trainingProcess: { pollMs: 20, syncIntervalMs: 50 },
        onCleanup: async (_t, outcome) => void extra.cleanups?.push(outcome),
      }),
      onTrainingEnded: (result) => void extra.ended?.push(result),
    })
  }
  const TRAIN = `{bun} ${SCRIPT} train --output {training_folder} --epochs {hyperparameters.epochs} --epoch-ms 20 --categories ${CATEGORY}`
  const details = (epochs: number) => ({ categories: [{ id: CATEGORY, name: 'thing' }], hyperparameters: { epochs, resolution: 320 }, training_number: 3, model_variant: 'small' })

  test('a whole training with the command trainer and a fake Loop: data, training, sync, upload, detections, cleanup', async () => {
    const loop = new FakeLoop({ complete: ['a', 'b', 'c'], inbox: ['d'] })
    loop.models.set('model-1/mocked', { 'model.json': JSON.stringify({ id: 'model-1', host: null, organization: 'zauberzeug', project: 'demo', version: '1.0' }), 'model.bin': 'w' })
    const ended: TrainingResult[] = []
    const cleanups: string[] = []
    const supervisor = supervisorWith(loop, TRAIN, { ended, cleanups })
    expect(supervisor.status().state).toBe('idle')
    const training = await supervisor.begin({ organization: 'zauberzeug', project: 'demo' }, details(2))
    expect(supervisor.isActive).toBe(true)
    const result = await supervisor.waitUntilIdle()
    expect(result).toMatchObject({ trainingId: training.id, outcome: 'completed', errors: {} })
    expect(ended).toHaveLength(1)
    expect(cleanups).toEqual(['completed'])
    expect(loop.trainingUpdates.length).toBeGreaterThan(0)
    expect(loop.trainingUpdates.at(-1)?.confusion_matrix?.[CATEGORY]).toBeDefined()
    expect(loop.uploads).toEqual([{ format: 'mocked', files: ['model.bin', 'model.json'], modelJson: { categories: training.categories, resolution: 320 } }])
    expect(loop.detectionBatches.flat().map((d) => d.image_id).sort()).toEqual(['a', 'b', 'c', 'd'])
    expect(existsSync(supervisor.lastTrainingFile.path)).toBe(false)
    expect(supervisor.status()).toEqual({ state: 'idle', errors: {}, progress: null, uptime: null, context: null })
  })

  test('begin_training is validated, and a second begin while one is active is rejected', async () => {
    const metrics = new MetricsRegistry()
    const supervisor = supervisorWith(new FakeLoop({ complete: ['a'] }), TRAIN, { metrics })
    const context = { organization: 'zauberzeug', project: 'demo' }
    await expect(supervisor.begin(context, { ...details(2), hyperparameters: undefined })).rejects.toThrow(new BeginTrainingRejected('hyperparameters missing or not a dict'))
    await expect(supervisor.begin(context, { ...details(2), categories: 'all' })).rejects.toThrow('categories missing or not a list')
    await expect(supervisor.begin(context, { ...details(2), training_number: 1.5 })).rejects.toThrow('training_number missing or not a int')
    await expect(supervisor.begin(context, { ...details(2), model_variant: undefined })).rejects.toThrow('model_variant missing or not a str')
    await expect(supervisor.begin(context, { ...details(2), categories: [{ name: 'no id' }] })).rejects.toThrow('/categories/0/id')
    await expect(supervisor.begin({ organization: '..', project: 'demo' }, details(2))).rejects.toThrow('not usable as a folder name')
    expect(supervisor.isActive).toBe(false)

    await supervisor.begin(context, details(1000))
    await expect(supervisor.begin(context, details(2))).rejects.toThrow(/a training is already active/)
    await waitFor(() => supervisor.status().state === 'running', 10_000, 'running')
    const status = supervisor.status()
    expect(status.context).toEqual(context)
    expect(status.uptime).toBeGreaterThanOrEqual(0)
    const aborted = await supervisor.abort()
    expect(aborted?.outcome).toBe('aborted')
    expect(supervisor.isActive).toBe(false)
    expect(metrics.render()).toContain('trainer_begin_rejected_total{reason="busy"} 1')
    expect(metrics.render()).toContain('trainer_begin_rejected_total{reason="invalid"} 6')
  })

  test('a begin_training that arrives while the repeat loop looks for a training to resume is not refused', async () => {
    const supervisor = supervisorWith(new FakeLoop({ complete: ['a'] }), TRAIN)
    const context = { organization: 'zauberzeug', project: 'demo' }
    // the node's repeat loop checks the disk for a persisted training every tick; the Loop's begin may come meanwhile
    const resumed = supervisor.resumeFromDisk()
    const training = await supervisor.begin(context, details(1000))
    expect(await resumed).toBeUndefined()
    expect(supervisor.runner?.trainingId).toBe(training.id)
    expect((await supervisor.abort())?.outcome).toBe('aborted')
  })

  test('shutdown keeps the training on disk; a new supervisor (the restarted node) resumes and finishes it', async () => {
    const loop = new FakeLoop({ complete: ['a'] })
    loop.models.set('model-1/mocked', { 'model.json': JSON.stringify({ id: 'model-1', host: null, organization: 'zauberzeug', project: 'demo', version: '1.0' }), 'model.bin': 'w' })
    const first = supervisorWith(loop, TRAIN)
    await first.begin({ organization: 'zauberzeug', project: 'demo' }, details(1000))
    await waitFor(() => first.status().state === 'running', 10_000, 'running')
    const halted = await first.shutdown()
    expect(halted?.outcome).toBe('halted')
    const onDisk = JSON.parse(readFileSync(first.lastTrainingFile.path, 'utf8'))
    expect(onDisk.training_state).toBe('train_model_downloaded')

    // the restarted node: a shorter training this time (the persisted hyperparameters say 1000 epochs)
    onDisk.hyperparameters.epochs = 2
    await writeFile(first.lastTrainingFile.path, JSON.stringify(onDisk))
    const second = supervisorWith(loop, TRAIN)
    const resumed = await second.resumeFromDisk()
    expect(resumed?.id).toBe(onDisk.id)
    expect((await second.waitUntilIdle())?.outcome).toBe('completed')
    expect(loop.uploads).toHaveLength(1)
  })

  test('an unreadable last-training file is moved aside and counted, not resumed', async () => {
    const metrics = new MetricsRegistry()
    const supervisor = supervisorWith(new FakeLoop(), TRAIN, { metrics })
    await writeFile(supervisor.lastTrainingFile.path, '{"id": 1')
    expect(await supervisor.resumeFromDisk()).toBeUndefined()
    expect(existsSync(supervisor.lastTrainingFile.path)).toBe(false)
    expect(metrics.render()).toContain('trainer_corrupt_last_training_total 1')
    expect(await supervisor.resumeFromDisk()).toBeUndefined()
  })

  test('the idle timeout counts only idle time and resets with activity', () => {
    const supervisor = supervisorWith(new FakeLoop(), TRAIN)
    expect(supervisor.idleTimeoutExpired(10, 1_000)).toBe(false)
    expect(supervisor.idleTimeoutExpired(10, 10_000)).toBe(false)
    expect(supervisor.idleTimeoutExpired(10, 11_001)).toBe(true)
    expect(supervisor.idleTimeoutExpired(0, 1_000_000)).toBe(false)
  })
})
