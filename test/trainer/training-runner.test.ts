import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { TrainerState, Training } from '../../src/contract/index.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { LastTrainingFile } from '../../src/trainer/last-training-file.ts'
import { createTraining } from '../../src/trainer/training-creation.ts'
import { CriticalError, DownloadError, isPermanentFailure, NodeNeedsRestartError, StepCancelledError } from '../../src/trainer/training-errors.ts'
import { LoopError } from '../../src/loop/loop-error.ts'
import { ContractError } from '../../src/contract/index.ts'
import { TrainingRunner } from '../../src/trainer/training-runner.ts'
import { TRAINING_STEPS } from '../../src/trainer/training-state-machine.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import { RecordingSteps, untilAborted } from './recording-steps.ts'

const NODE_UUID = 'aaaaaaaa-0000-4000-8000-000000000001'
const FAST_RETRY = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, factor: 2 }
const ALL_STEPS = TRAINING_STEPS.map((s) => s.name)

let temp: Awaited<ReturnType<typeof makeTempDir>>
let file: LastTrainingFile

beforeEach(async () => {
  temp = await makeTempDir('lln-runner-')
  file = new LastTrainingFile(temp.path, NODE_UUID)
})
afterEach(async () => {
  await temp.cleanup()
})

async function newTraining(): Promise<Training> {
  return createTraining({
    dataFolder: temp.path,
    context: { organization: 'zauberzeug', project: 'demo' },
    details: { categories: [], hyperparameters: { resolution: 832 }, training_number: 0, model_variant: 'small' },
    keepOldTrainings: false,
  })
}

function runnerFor(training: Training, steps: RecordingSteps, extra: { metrics?: MetricsRegistry; states?: TrainerState[]; restartAfterTraining?: boolean } = {}) {
  return new TrainingRunner({
    training, steps, lastTrainingFile: file, config: { retry: FAST_RETRY, restartAfterTraining: extra.restartAfterTraining ?? false },
    ...(extra.metrics ? { metrics: extra.metrics } : {}),
    onStateChange: (state) => extra.states?.push(state),
  })
}

async function persisted(): Promise<Training | undefined> {
  return file.read()
}

describe('TrainingRunner: a complete training', () => {
  test('passes every state in order, persists before the first step and after every completed step, then cleans up', async () => {
    const training = await newTraining()
    const steps = new RecordingSteps(file.path)
    const states: TrainerState[] = []
    const runner = runnerFor(training, steps, { states })
    const result = await runner.run()

    expect(result).toEqual({ trainingId: training.id, outcome: 'completed', errors: {} })
    expect(steps.called()).toEqual(ALL_STEPS)
    // each step saw the previous stable state on disk: the first one `initialized` (§15.13 fixed)
    expect(steps.calls.map((c) => c.persistedState)).toEqual(TRAINING_STEPS.map((s) => s.from))
    expect(states).toEqual([...TRAINING_STEPS.flatMap((s) => [s.during, s.to]), 'idle'])
    expect(steps.cleanups).toEqual([{ outcome: 'completed', errors: {}, state: 'ready_for_cleanup' }])
    expect(existsSync(file.path)).toBe(false)
    // the runner removed the detection batches and progress files
    expect(await runner.files.listDetectionFiles()).toEqual([])
    expect(existsSync(join(training.training_folder, 'detection_uploading_json_index.txt'))).toBe(false)
    expect(runner.state).toBe('idle')
  })

  test('a step update is persisted in the upstream Training shape; the step only sees a copy', async () => {
    const training = await newTraining()
    const steps = new RecordingSteps(file.path)
    let seenAfterPrepare: Training | undefined
    steps.on('download_model', async (t) => {
      seenAfterPrepare = await persisted()
      ;(t as { training_number: number }).training_number = 99 // a step mutating its copy changes nothing
    })
    steps.on('run_training', async () => {
      throw new CriticalError('stop here')
    })
    const result = await runnerFor(training, steps).run()
    expect(result.outcome).toBe('failed')
    expect(seenAfterPrepare?.training_state).toBe('data_downloaded')
    expect(seenAfterPrepare?.image_data?.map((d) => d.id)).toEqual(['img1'])
    expect(seenAfterPrepare?.skipped_image_count).toBe(0)
    expect(Object.keys(seenAfterPrepare!).sort()).toEqual([
      'base_model_uuid', 'categories', 'context', 'hyperparameters', 'id', 'image_data', 'images_folder', 'model_uuid_for_detecting',
      'model_variant', 'project_folder', 'skipped_image_count', 'start_time', 'training_folder', 'training_number', 'training_state',
    ])
    expect(seenAfterPrepare?.training_number).toBe(0)
  })

  test('RESTART_AFTER_TRAINING: the result asks the node to exit after cleanup', async () => {
    const result = await runnerFor(await newTraining(), new RecordingSteps(file.path), { restartAfterTraining: true }).run()
    expect(result.outcome).toBe('completed')
    expect(result.exitReason).toBe('RESTART_AFTER_TRAINING is set')
  })
})

describe('TrainingRunner: resume after a crash', () => {
  test.each(TRAINING_STEPS.map((s, i) => [s.name, i] as const))('a crash during %s resumes at that step with a new runner on the same folder', async (_name, index) => {
    const training = await newTraining()
    const crashing = new RecordingSteps(file.path)
    const step = TRAINING_STEPS[index]!
    // the "crash": the step never returns and the runner is abandoned
    crashing.on(step.name, () => new Promise(() => {}))
    const abandoned = runnerFor(training, crashing)
    void abandoned.run()
    await waitFor(() => crashing.called().includes(step.name), 5_000, `step ${step.name}`)
    const onDisk = await persisted()
    expect(onDisk?.training_state).toBe(step.from)

    const resumedSteps = new RecordingSteps(file.path)
    const resumed = new TrainingRunner({ training: onDisk!, steps: resumedSteps, lastTrainingFile: file, config: { retry: FAST_RETRY } })
    expect(resumed.state).toBe(step.from)
    const result = await resumed.run()
    expect(result.outcome).toBe('completed')
    expect(resumedSteps.called()).toEqual(ALL_STEPS.slice(index))
    if (index > 0) expect(resumedSteps.calls[0]!.persistedState).toBe(step.from)
  })

  test('a persisted transient state (written by another implementation) resumes at its step', async () => {
    const training = { ...(await newTraining()), training_state: 'detection_uploading' }
    const steps = new RecordingSteps(file.path)
    const result = await runnerFor(training, steps).run()
    expect(result.outcome).toBe('completed')
    expect(steps.called()).toEqual(['upload_detections'])
  })

  test('a persisted ready_for_cleanup only cleans up', async () => {
    const steps = new RecordingSteps(file.path)
    const result = await runnerFor({ ...(await newTraining()), training_state: 'ready_for_cleanup' }, steps).run()
    expect(result.outcome).toBe('completed')
    expect(steps.called()).toEqual([])
    expect(steps.cleanups).toHaveLength(1)
  })
})

describe('TrainingRunner: errors', () => {
  test('plain errors are retried with backoff, not persisted, and cleared by a later success', async () => {
    const steps = new RecordingSteps(file.path)
    let failures = 0
    steps.on('upload_model', async () => {
      if (++failures < 3) throw new Error(`loop answered 502 (${failures})`)
      return { model_uuid_for_detecting: 'm-1' }
    })
    const errorsSeen: Record<string, string>[] = []
    steps.on('detecting', async () => {
      errorsSeen.push(runner.errors)
    })
    const runner = runnerFor(await newTraining(), steps)
    const result = await runner.run()
    expect(result.outcome).toBe('completed')
    const uploads = steps.calls.filter((c) => c.step === 'upload_model')
    expect(uploads.map((c) => c.attempt)).toEqual([1, 2, 3])
    // the failed attempts did not persist: each retry started from the last completed step on disk
    expect(uploads.map((c) => c.persistedState)).toEqual(['confusion_matrix_synced', 'confusion_matrix_synced', 'confusion_matrix_synced'])
    expect(errorsSeen).toEqual([{}])
  })

  test('bounded retries end in a failed training that is reported, persisted and cleaned up', async () => {
    const steps = new RecordingSteps(file.path)
    steps.on('download_model', async () => {
      throw new Error('model 1234 not found')
    })
    const metrics = new MetricsRegistry()
    let persistedWhenFailed: Training | undefined
    const base = steps.cleanup.bind(steps)
    steps.cleanup = async (training, ctx) => {
      persistedWhenFailed = await persisted()
      await base(training, ctx)
    }
    const result = await runnerFor(await newTraining(), steps, { metrics }).run()
    expect(result.outcome).toBe('failed')
    expect(result.errors).toEqual({ download_model: 'model 1234 not found (gave up after 3 attempts)' })
    expect(steps.called()).toEqual(['prepare', 'download_model', 'download_model', 'download_model'])
    expect(persistedWhenFailed?.training_state).toBe('ready_for_cleanup')
    expect(steps.cleanups[0]?.outcome).toBe('failed')
    expect(steps.cleanups[0]?.errors.download_model).toContain('gave up')
    expect(existsSync(file.path)).toBe(false)
    expect(metrics.render()).toContain('trainer_trainings_total{outcome="failed"} 1')
    expect(metrics.render()).toContain('trainer_steps_total{result="failed",step="download_model"} 3')
  })

  test('a CriticalError skips the remaining steps and cleans up with the error', async () => {
    const steps = new RecordingSteps(file.path)
    steps.on('upload_model', async () => {
      throw new CriticalError('Could not get latest model files. Training might have failed.')
    })
    const result = await runnerFor(await newTraining(), steps).run()
    expect(result).toMatchObject({ outcome: 'failed', errors: { upload_model: 'Could not get latest model files. Training might have failed.' } })
    expect(steps.called()).toEqual(ALL_STEPS.slice(0, 5))
  })

  test('a failure a retry cannot change (the Loop refused the request, a shape is wrong) is not retried; transient ones are', () => {
    const http = (status: number) => new LoopError({ kind: 'http', method: 'GET', path: '/api/x', detail: `failed with ${status}`, status })
    for (const status of [400, 403, 404, 409, 413, 422]) expect(isPermanentFailure(http(status))).toBe(true)
    for (const status of [401, 408, 429, 500, 502, 503]) expect(isPermanentFailure(http(status))).toBe(false)
    expect(isPermanentFailure(new LoopError({ kind: 'network', method: 'GET', path: '/api/x', detail: 'ECONNREFUSED' }))).toBe(false)
    expect(isPermanentFailure(new LoopError({ kind: 'timeout', method: 'GET', path: '/api/x', detail: 'timed out' }))).toBe(false)
    expect(isPermanentFailure(new LoopError({ kind: 'invalid_response', method: 'GET', path: '/api/x', detail: 'not JSON' }))).toBe(true)
    expect(isPermanentFailure(new ContractError('Detections', [{ path: '/image_id', message: 'expected string' }]))).toBe(true)
    // wrapped, as the downloader does
    expect(isPermanentFailure(new DownloadError('fetching image data failed', { cause: http(422) }))).toBe(true)
    expect(isPermanentFailure(new DownloadError('fetching image data failed', { cause: http(503) }))).toBe(false)
    expect(isPermanentFailure(new Error('the training process crashed'))).toBe(false)
  })

  test('NodeNeedsRestartError halts, asks for an exit, and leaves the last completed state on disk', async () => {
    const steps = new RecordingSteps(file.path)
    steps.on('run_training', async () => {
      throw new NodeNeedsRestartError('CUDA context lost')
    })
    const result = await runnerFor(await newTraining(), steps).run()
    expect(result.outcome).toBe('halted')
    expect(result.exitReason).toBe('CUDA context lost')
    expect((await persisted())?.training_state).toBe('train_model_downloaded')
    expect(steps.cleanups).toEqual([])
  })

  test('a failing write of the last-training file is shown in the errors and counted; the training goes on', async () => {
    const steps = new RecordingSteps(file.path)
    const metrics = new MetricsRegistry()
    // a regular file where the data folder should be makes every write fail
    const blocked = join(temp.path, 'blocked')
    await writeFile(blocked, 'not a folder')
    const badFile = new LastTrainingFile(join(blocked, 'data'), NODE_UUID)
    let errorsDuringRun: Record<string, string> = {}
    steps.on('download_model', async () => {
      errorsDuringRun = runner.errors
    })
    const runner = new TrainingRunner({ training: await newTraining(), steps, lastTrainingFile: badFile, metrics, config: { retry: FAST_RETRY } })
    await runner.run()
    expect(errorsDuringRun.persist).toBeString()
    expect(steps.called()).toEqual(ALL_STEPS)
    expect(metrics.render()).toMatch(/trainer_persist_failures_total [1-9]/)
  })
})

describe('TrainingRunner: stop, abort and shutdown', () => {
  function trainingThatRunsUntilStopped(steps: RecordingSteps) {
    steps.on('run_training', async (t, ctx) => {
      await Promise.race([untilAborted(ctx.stopSignal), untilAborted(ctx.signal)])
      if (ctx.signal.aborted) throw new StepCancelledError()
      await writeFile(join(t.training_folder, 'model.bin'), 'weights at stop')
    })
  }

  test('stop() during training ends it gracefully: the model is still synced, uploaded and used for detections', async () => {
    const steps = new RecordingSteps(file.path)
    trainingThatRunsUntilStopped(steps)
    const runner = runnerFor(await newTraining(), steps)
    const done = runner.run()
    await waitFor(() => runner.state === 'running', 5_000, 'running')
    runner.stop()
    const result = await done
    expect(result.outcome).toBe('stopped')
    expect(steps.called()).toEqual(ALL_STEPS)
  })

  test('abort() during training cancels it: no uploads, cleanup, no last-training file', async () => {
    const steps = new RecordingSteps(file.path)
    trainingThatRunsUntilStopped(steps)
    const runner = runnerFor(await newTraining(), steps)
    void runner.run()
    await waitFor(() => runner.state === 'running', 5_000, 'running')
    const result = await runner.abort()
    expect(result.outcome).toBe('aborted')
    expect(steps.called()).toEqual(ALL_STEPS.slice(0, 3))
    expect(steps.cleanups.map((c) => c.outcome)).toEqual(['aborted'])
    expect(existsSync(file.path)).toBe(false)
  })

  test.each(['stop', 'abort'] as const)('%s() while data is downloading cancels and cleans up (nothing to keep yet)', async (how) => {
    const steps = new RecordingSteps(file.path)
    steps.on('prepare', async (_t, ctx) => {
      await untilAborted(ctx.signal)
      throw new StepCancelledError()
    })
    const runner = runnerFor(await newTraining(), steps)
    const done = runner.run()
    await waitFor(() => runner.state === 'data_downloading', 5_000, 'data_downloading')
    if (how === 'stop') runner.stop()
    else void runner.abort()
    expect((await done).outcome).toBe('aborted')
    expect(steps.called()).toEqual(['prepare'])
    expect(existsSync(file.path)).toBe(false)
  })

  test('abort() while waiting to retry cancels the wait and cleans up', async () => {
    const steps = new RecordingSteps(file.path)
    steps.on('prepare', async () => {
      throw new Error('loop offline')
    })
    const runner = new TrainingRunner({
      training: await newTraining(), steps, lastTrainingFile: file,
      // an hour-long backoff: the test only finishes if abort cancels the wait
      config: { retry: { maxAttempts: 5, baseDelayMs: 3_600_000, maxDelayMs: 3_600_000, factor: 1 } },
    })
    void runner.run()
    await waitFor(() => runner.errors.prepare === 'loop offline', 5_000, 'first failure')
    const result = await runner.abort()
    expect(result).toMatchObject({ outcome: 'aborted', errors: { prepare: 'loop offline' } })
    expect(steps.called()).toEqual(['prepare'])
  })

  test('stop() after training lets the wind-down continue', async () => {
    const steps = new RecordingSteps(file.path)
    let release!: () => void
    steps.on('upload_model', async () => {
      await new Promise<void>((resolve) => (release = resolve))
      return { model_uuid_for_detecting: 'm-2' }
    })
    const runner = runnerFor(await newTraining(), steps)
    const done = runner.run()
    await waitFor(() => runner.state === 'train_model_uploading' && release, 5_000, 'uploading')
    runner.stop()
    release()
    const result = await done
    expect(result.outcome).toBe('stopped')
    expect(steps.called()).toEqual(ALL_STEPS)
  })

  test('shutdown() cancels the running step and keeps the persisted training, which a new runner finishes', async () => {
    const steps = new RecordingSteps(file.path)
    trainingThatRunsUntilStopped(steps)
    const runner = runnerFor(await newTraining(), steps)
    void runner.run()
    await waitFor(() => runner.state === 'running', 5_000, 'running')
    const result = await runner.shutdown()
    expect(result.outcome).toBe('halted')
    expect(steps.cleanups).toEqual([])
    const onDisk = await persisted()
    expect(onDisk?.training_state).toBe('train_model_downloaded')

    const after = new RecordingSteps(file.path)
    const resumed = await new TrainingRunner({ training: onDisk!, steps: after, lastTrainingFile: file, config: { retry: FAST_RETRY } }).run()
    expect(resumed.outcome).toBe('completed')
    expect(after.called()).toEqual(ALL_STEPS.slice(2))
  })

  test('shutdown() while waiting to retry persists the stable state and halts', async () => {
    const steps = new RecordingSteps(file.path)
    steps.on('detecting', async () => {
      throw new Error('model not downloadable')
    })
    const runner = new TrainingRunner({
      training: await newTraining(), steps, lastTrainingFile: file,
      config: { retry: { maxAttempts: 5, baseDelayMs: 3_600_000, maxDelayMs: 3_600_000, factor: 1 } },
    })
    void runner.run()
    await waitFor(() => runner.errors.detecting, 5_000, 'detecting failed')
    const result = await runner.shutdown()
    expect(result.outcome).toBe('halted')
    expect((await persisted())?.training_state).toBe('train_model_uploaded')
  })
})

describe('LastTrainingFile', () => {
  test('reads back what it wrote; a corrupt file is a ContractError and can be quarantined', async () => {
    const training = await newTraining()
    expect(await file.read()).toBeUndefined()
    await file.write(training)
    expect(await file.read()).toEqual(training)
    await mkdir(temp.path, { recursive: true })
    await writeFile(file.path, JSON.stringify({ ...training, training_number: 'zero' }))
    await expect(file.read()).rejects.toThrow('/training_number')
    const moved = await file.quarantine(42)
    expect(moved).toBe(`${file.path}.corrupt-42`)
    expect(await readFile(moved, 'utf8')).toContain('zero')
    expect(await file.exists()).toBe(false)
  })
})
