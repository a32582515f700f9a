import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Training } from '../../src/contract/index.ts'
import { createLogger } from '../../src/foundation/log.ts'
import { ActiveTrainingFiles } from '../../src/trainer/active-training-files.ts'
import { CommandTemplateError, expandCommand, placeholdersIn, splitCommandLine } from '../../src/trainer/command-template.ts'
import { CommandTrainer } from '../../src/trainer/command-trainer.ts'
import type { Executor } from '../../src/trainer/executor.ts'
import { isProcessAlive } from '../../src/trainer/process-group.ts'
import { applyProtocolLine, emptyOutputState } from '../../src/trainer/trainer-output-protocol.ts'
import { LastTrainingFile } from '../../src/trainer/last-training-file.ts'
import { createTraining } from '../../src/trainer/training-creation.ts'
import { CriticalError, StepCancelledError, TrainingError } from '../../src/trainer/training-errors.ts'
import { runTrainingProcess, type TrainingProcessOptions } from '../../src/trainer/training-process-step.ts'
import { TrainingRunner, type StepContext } from '../../src/trainer/training-runner.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import { RecordingSteps } from './recording-steps.ts'

const SCRIPT = join(import.meta.dir, '../../src/trainer/testing-trainer-script.ts')
const CATEGORY = 'cccccccc-0000-4000-8000-000000000001'
const TRAIN = `{bun} ${SCRIPT} train --output {training_folder} --epochs {hyperparameters.epochs} --epoch-ms 30 --categories {hyperparameters.categories}`

let temp: Awaited<ReturnType<typeof makeTempDir>>
beforeEach(async () => {
  temp = await makeTempDir('lln-command-trainer-')
})
afterEach(async () => {
  await temp.cleanup()
})

async function newTraining(hyperparameters: Record<string, unknown> = { epochs: 3, categories: CATEGORY }): Promise<Training> {
  return createTraining({
    dataFolder: temp.path,
    context: { organization: 'zauberzeug', project: 'demo' },
    details: { categories: [{ id: CATEGORY, name: 'thing' }], hyperparameters, training_number: 1, model_variant: 'small' },
    keepOldTrainings: false,
  })
}

function stepContext(training: Training) {
  const cancel = new AbortController()
  const stop = new AbortController()
  const progress: (number | null)[] = []
  const ctx: StepContext = {
    signal: cancel.signal, stopSignal: stop.signal, attempt: 1, files: new ActiveTrainingFiles(training.training_folder),
    log: createLogger('test'), reportProgress: (p) => progress.push(p),
  }
  return { ctx, cancel, stop, progress }
}

const FAST: TrainingProcessOptions = { pollMs: 20, syncIntervalMs: 50, executor: { stopGraceMs: 2_000, cancelGraceMs: 500 } }

describe('command templates (pure)', () => {
  test('split shell-style first, then fill placeholders per argument: values stay one argument and cannot inject', () => {
    expect(splitCommandLine(`python train.py --name "run {n}" 'a b' c\\ d "q\\"uote"`)).toEqual(['python', 'train.py', '--name', 'run {n}', 'a b', 'c d', 'q"uote'])
    const values: Record<string, string> = { data_dir: '/d a/t; rm -rf /', 'hyperparameters.epochs': '5', n: '7' }
    expect(expandCommand('train --data {data_dir} --epochs={hyperparameters.epochs} --name "run {n}" {{literal}}', (k) => values[k]))
      .toEqual(['train', '--data', '/d a/t; rm -rf /', '--epochs=5', '--name', 'run 7', '{literal}'])
    expect(() => expandCommand('train {missing}', () => undefined)).toThrow(CommandTemplateError)
    expect(() => splitCommandLine('train "open')).toThrow('unterminated')
    expect(placeholdersIn('{a} {b.c} {a} {{x}}')).toEqual(['a', 'b.c'])
  })

  test('a value of several words ({bun} on Deno: `deno run …`) is several arguments when it stands alone, one joined by spaces inside another', () => {
    const values: Record<string, string | string[]> = { bun: ['/x/deno', 'run', '--allow-read'], dir: '/c d' }
    expect(expandCommand('{bun} {dir}/train.ts --n 1', (k) => values[k])).toEqual(['/x/deno', 'run', '--allow-read', '/c d/train.ts', '--n', '1'])
    expect(expandCommand('sh -c "{bun} x.ts"', (k) => values[k])).toEqual(['sh', '-c', '/x/deno run --allow-read x.ts'])
  })

  test('the command trainer refuses unknown placeholders and invalid configuration, naming the problem', () => {
    expect(() => new CommandTrainer({ model_format: 'onnx', command: 'train --x {dat_dir}' })).toThrow('unknown placeholder {dat_dir}')
    expect(() => new CommandTrainer({ model_format: 'onnx', command: 'x', resume_command: 'x {model_folder}' })).toThrow('unknown placeholder {model_folder}')
    expect(() => new CommandTrainer({ command: 'train' })).toThrow('/model_format')
    expect(() => new CommandTrainer({ model_format: 'onnx', command: 'x', error_patterns: ['('] })).toThrow('not a regular expression')
    const ok = new CommandTrainer({ model_format: 'onnx', command: 'x {hyperparameters.lr}', resume_command: 'x {checkpoint}' })
    expect(ok.modelFormat).toBe('onnx')
    expect(ok.providedPretrainedModels).toEqual([])
  })
})

describe('trainer output protocol (pure)', () => {
  test('folds JSON lines into progress, best state, model files, checkpoint, error and detections; other lines are log output', () => {
    const state = emptyOutputState()
    expect(applyProtocolLine(state, 'Epoch 1/3 loss=0.4')).toBe(false)
    expect(applyProtocolLine(state, '{"progress": 1.7}')).toBe(true)
    expect(state.progress).toBe(1)
    applyProtocolLine(state, `{"epoch": 3, "confusion_matrix": {"${CATEGORY}": {"tp": 5, "fp": 1, "fn": 2}}}`)
    expect(state.pendingState).toEqual({ epoch: 3, confusion_matrix: { [CATEGORY]: { tp: 5, fp: 1, fn: 2 } }, meta_information: {} })
    applyProtocolLine(state, '{"model_files": {"onnx": ["best.onnx", "model.json"]}, "checkpoint": "last.pt"}')
    expect(state.modelFiles).toEqual({ onnx: ['best.onnx', 'model.json'] })
    expect(state.checkpoint).toBe('last.pt')
    applyProtocolLine(state, '{"detections": {"image_id": "i1", "box_detections": [{"category_name": "a", "x": 1, "y": 2, "width": 3, "height": 4, "model_name": "m", "confidence": 0.5}]}}')
    expect(state.detections[0]?.box_detections?.[0]?.x).toBe(1)
    applyProtocolLine(state, '{"model_files": {"onnx": "best.onnx"}}')
    applyProtocolLine(state, '{"epoch": 4, "confusion_matrix": {"x": {"tp": "many"}}}')
    expect(state.invalidLines).toHaveLength(2)
    expect(state.pendingState?.epoch).toBe(3)
    applyProtocolLine(state, '{"error": "CUDA out of memory"}')
    applyProtocolLine(state, '{"error": "a consequence"}')
    expect(state.error).toBe('CUDA out of memory')
  })
})

describe('CommandTrainer with the testing training script', () => {
  test('progress is parsed, the best state is synced once, model files are reported, the log is written', async () => {
    const training = await newTraining()
    const trainer = new CommandTrainer({ model_format: 'mocked', command: TRAIN })
    const { ctx, progress } = stepContext(training)
    const synced: unknown[] = []
    await runTrainingProcess(trainer, training, ctx, {
      ...FAST,
      syncTraining: async (t) => {
        const state = await trainer.newBestTrainingState(t)
        if (!state) return
        synced.push(state.epoch)
        await trainer.onMetricsPublished(state, t)
      },
    })
    expect(progress.at(-1)).toBe(1)
    expect(progress.filter((p) => p !== null && p > 0 && p < 1).length).toBeGreaterThan(0)
    expect(synced.length).toBeGreaterThan(0)
    expect(new Set(synced).size).toBe(synced.length) // a state is published once
    const best = await trainer.newBestTrainingState(training)
    if (best) expect(best.epoch).toBe(3)
    expect(await trainer.latestModelFiles(training)).toEqual({ mocked: [join(training.training_folder, 'model.bin')] })
    const log = readFileSync(join(training.training_folder, 'last_training.log'), 'utf8')
    expect(log).toContain('epoch 3 done')
    // the dataset description was written for the program
    const description = JSON.parse(readFileSync(join(training.training_folder, 'data', 'training.json'), 'utf8'))
    expect(description.categories[0].id).toBe(CATEGORY)
    expect(description.hyperparameters.epochs).toBe(3)
  })

  test('an {"error": …} line fails the step with that message', async () => {
    const training = await newTraining()
    const trainer = new CommandTrainer({ model_format: 'mocked', command: `${TRAIN} --fail-at 2` })
    const { ctx } = stepContext(training)
    const failure = runTrainingProcess(trainer, training, ctx, FAST)
    await expect(failure).rejects.toBeInstanceOf(TrainingError)
    await expect(failure).rejects.toThrow('simulated training failure at epoch 2')
    expect(await trainer.latestModelFiles(training)).toBeNull()
  })

  test('an error pattern in ordinary output fails the step; so does a crash without any error line', async () => {
    const training = await newTraining()
    const patterned = new CommandTrainer({ model_format: 'mocked', command: `${TRAIN} --fail-at 2`, error_patterns: ['^epoch 1 done$'] })
    await expect(runTrainingProcess(patterned, training, stepContext(training).ctx, FAST)).rejects.toThrow('epoch 1 done')
    const crashing = new CommandTrainer({ model_format: 'mocked', command: `${TRAIN} --crash-at 2` })
    await expect(runTrainingProcess(crashing, training, stepContext(training).ctx, FAST)).rejects.toThrow(/exit code 3.*simulated crash at epoch 2/)
  })

  test('a missing hyperparameter is a CriticalError (retrying cannot help)', async () => {
    const training = await newTraining({ categories: CATEGORY })
    const trainer = new CommandTrainer({ model_format: 'mocked', command: TRAIN })
    await expect(runTrainingProcess(trainer, training, stepContext(training).ctx, FAST)).rejects.toBeInstanceOf(CriticalError)
  })

  test('{hyperparameters.NAME} for a JavaScript object member the training does not have is missing too', async () => {
    const training = await newTraining()
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      const trainer = new CommandTrainer({ model_format: 'mocked', command: `${TRAIN} --tag {hyperparameters.${name}}` })
      const failure = await runTrainingProcess(trainer, training, stepContext(training).ctx, FAST).then(() => undefined, (error: unknown) => error)
      expect(failure).toBeInstanceOf(CriticalError)
      expect((failure as Error).message).toContain(`{hyperparameters.${name}}`)
    }
  })

  test('a stop ends the process gracefully (it saves its model) and the step succeeds; an abort kills it and cancels', async () => {
    const training = await newTraining({ epochs: 1000, categories: CATEGORY })
    const trainer = new CommandTrainer({ model_format: 'mocked', command: TRAIN })
    const stopping = stepContext(training)
    let executor: Executor | undefined
    const stopped = runTrainingProcess(trainer, training, stopping.ctx, { ...FAST, onExecutor: (e) => (executor ??= e) })
    await waitFor(() => (trainer.trainingProgress() ?? 0) > 0, 10_000, 'progress')
    stopping.stop.abort()
    await stopped
    expect(executor?.isRunning).toBe(false)
    expect(await trainer.latestModelFiles(training)).toEqual({ mocked: [join(training.training_folder, 'model.bin')] })

    const aborting = stepContext(training)
    const pids: number[] = []
    const aborted = runTrainingProcess(trainer, training, aborting.ctx, {
      ...FAST, onExecutor: (e) => e?.onLine((line) => line.startsWith('{"pid"') && pids.push(JSON.parse(line).pid)),
    })
    await waitFor(() => pids.length > 0, 10_000, 'training pid')
    aborting.cancel.abort()
    await expect(aborted).rejects.toBeInstanceOf(StepCancelledError)
    expect(isProcessAlive(pids[0]!)).toBe(false)
  })

  test('after a crash, a new trainer (node restart) finds the checkpoint in the log and resumes', async () => {
    const training = await newTraining({ epochs: 4, categories: CATEGORY })
    const config = { model_format: 'mocked', command: `${TRAIN} --crash-at 3`, resume_command: `${TRAIN} --resume-from {checkpoint}` }
    const first = new CommandTrainer(config)
    await expect(runTrainingProcess(first, training, stepContext(training).ctx, FAST)).rejects.toThrow('exit code 3')

    const restarted = new CommandTrainer(config)
    await runTrainingProcess(restarted, training, stepContext(training).ctx, FAST)
    const log = readFileSync(join(training.training_folder, 'last_training.log'), 'utf8')
    expect(log).toContain('{"resumed_at_epoch":2}')
    expect(await restarted.latestModelFiles(training)).toEqual({ mocked: [join(training.training_folder, 'model.bin')] })
    // and a third instance still knows the model files from the log alone
    expect(await new CommandTrainer(config).latestModelFiles(training)).toEqual({ mocked: [join(training.training_folder, 'model.bin')] })
  })

  test('detection runs the detect command over a list of images; without one there are no detections', async () => {
    const training = await newTraining()
    const images = ['a', 'b', 'c'].map((id) => join(training.images_folder, `${id}.jpg`))
    for (const path of images) await writeFile(path, 'jpeg')
    const modelFolder = join(temp.path, 'model_for_auto_detections')
    await mkdir(modelFolder, { recursive: true })
    const modelInfo = { id: 'm', host: null, organization: 'zauberzeug', project: 'demo', version: '1.1', categories: [], resolution: null, model_root_path: null, model_size: null }
    const trainer = new CommandTrainer({
      model_format: 'mocked', command: TRAIN,
      detect_command: `{bun} ${SCRIPT} detect --images-list {images_list} --model-folder {model_folder}`,
    })
    const detections = await trainer.detect({ training, modelInfo, modelFolder, imagePaths: images, imageIds: ['a', 'b', 'c'], signal: new AbortController().signal })
    expect(detections.map((d) => d.image_id)).toEqual(['a', 'b', 'c'])
    expect(detections[2]?.box_detections?.[0]).toMatchObject({ x: 2, model_name: 'model_for_auto_detections' })
    expect(existsSync(join(training.training_folder, 'detect.log'))).toBe(true)
    const plain = new CommandTrainer({ model_format: 'mocked', command: TRAIN })
    expect(await plain.detect({ training, modelInfo, modelFolder, imagePaths: images, imageIds: ['a', 'b', 'c'], signal: new AbortController().signal })).toEqual([])
  })
})

describe('TrainingRunner driving a real training process', () => {
  function runnerWith(training: Training, trainer: CommandTrainer, steps: RecordingSteps, file: LastTrainingFile) {
    steps.on('run_training', (t, ctx) => runTrainingProcess(trainer, t, ctx, FAST))
    steps.on('upload_model', async (t) => {
      const files = await trainer.latestModelFiles(t)
      if (!files) throw new CriticalError('Could not get latest model files. Training might have failed.')
      return { model_uuid_for_detecting: 'uploaded-model' }
    })
    return new TrainingRunner({ training, steps, lastTrainingFile: file, config: { retry: { maxAttempts: 2, baseDelayMs: 5 } } })
  }

  test('stop() during the real training: the process ends, the model is uploaded, detections run, cleanup', async () => {
    const training = await newTraining({ epochs: 1000, categories: CATEGORY })
    const file = new LastTrainingFile(temp.path, 'node-1')
    const steps = new RecordingSteps(file.path)
    const trainer = new CommandTrainer({ model_format: 'mocked', command: TRAIN })
    const runner = runnerWith(training, trainer, steps, file)
    const done = runner.run()
    await waitFor(() => runner.state === 'running' && (runner.progress ?? 0) > 0, 10_000, 'training progress in the runner')
    runner.stop()
    const result = await done
    expect(result.outcome).toBe('stopped')
    expect(steps.called()).toEqual(['prepare', 'download_model', 'run_training', 'sync_confusion_matrix', 'upload_model', 'detecting', 'upload_detections'])
  })

  test('abort() during the real training: the process is killed and nothing is uploaded', async () => {
    const training = await newTraining({ epochs: 1000, categories: CATEGORY })
    const file = new LastTrainingFile(temp.path, 'node-1')
    const steps = new RecordingSteps(file.path)
    const trainer = new CommandTrainer({ model_format: 'mocked', command: TRAIN })
    const runner = runnerWith(training, trainer, steps, file)
    void runner.run()
    await waitFor(() => runner.state === 'running' && (runner.progress ?? 0) > 0, 10_000, 'training progress in the runner')
    const result = await runner.abort()
    expect(result.outcome).toBe('aborted')
    expect(steps.called()).toEqual(['prepare', 'download_model', 'run_training'])
    expect(existsSync(file.path)).toBe(false)
  })

  test('a training that keeps failing ends as failed after the bounded retries, with the error kept', async () => {
    const training = await newTraining()
    const file = new LastTrainingFile(temp.path, 'node-1')
    const steps = new RecordingSteps(file.path)
    const trainer = new CommandTrainer({ model_format: 'mocked', command: `${TRAIN} --fail-at 1` })
    const result = await runnerWith(training, trainer, steps, file).run()
    expect(result.outcome).toBe('failed')
    expect(result.errors.run_training).toBe('simulated training failure at epoch 1 (gave up after 2 attempts)')
    expect(steps.called().filter((s) => s === 'run_training')).toHaveLength(2)
  })
})
