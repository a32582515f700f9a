import { setTimeout as sleep } from 'node:timers/promises'
import type { Training } from '../contract/index.ts'
import { errorMessage } from '../foundation/log.ts'
import { Executor, type ExecutorOptions } from './executor.ts'
import type { TrainerLogic, TrainingRun } from './trainer-logic.ts'
import { isUuid } from './training-creation.ts'
import { StepCancelledError, throwIfCancelled, TrainingError } from './training-errors.ts'
import type { StepContext } from './training-runner.ts'

export interface TrainingProcessOptions {
  /** how often the process, stop and abort are checked (upstream 0.1 s) */
  pollMs?: number
  /** how often the log is checked for errors and the confusion matrix synced while training (upstream 5 s) */
  syncIntervalMs?: number
  /** the confusion-matrix sync (§8.7); its errors are logged and ignored while training */
  syncTraining?(training: Readonly<Training>, signal: AbortSignal): Promise<void>
  executor?: Partial<Omit<ExecutorOptions, 'cwd' | 'logPath'>>
  /** lets the caller see the executor (tests, backdoor controls) */
  onExecutor?(executor: Executor | undefined): void
}

const DEFAULT_POLL_MS = 100
const DEFAULT_SYNC_INTERVAL_MS = 5_000
const LOG_LINES_IN_ERRORS = 5

/**
 * The `run_training` step for an executor-based TrainerLogic (§8.6 `_train`): start (resume, from the base model,
 * or from scratch), watch the process, sync metrics periodically, and end it on stop (gracefully: the step
 * succeeds and the model is uploaded) or abort (the group is killed and the step is cancelled).
 * It fails with TrainingError when the log reports an error or — unlike upstream — when the process dies with a
 * non-zero status without being asked to stop. The process group never outlives the step.
 */
export async function runTrainingProcess(logic: TrainerLogic, training: Training, ctx: StepContext, options: TrainingProcessOptions = {}): Promise<void> {
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS
  const syncIntervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS
  const executor = new Executor({ ...options.executor, cwd: training.training_folder, logPath: ctx.files.logPath, log: options.executor?.log ?? ctx.log })
  const run: TrainingRun = { training, executor, signal: ctx.signal, log: ctx.log }
  options.onExecutor?.(executor)
  try {
    throwIfCancelled(ctx.signal)
    if (await logic.canResume(run)) {
      ctx.log.info('resuming the training process', { training_id: training.id })
      await logic.resume(run)
    } else if (isUuid(training.base_model_uuid)) {
      await logic.startTrainingFromBaseModel(run)
    } else {
      if (training.base_model_uuid) ctx.log.warn('base_model_uuid is not a uuid; training from scratch', { base_model_uuid: training.base_model_uuid })
      await logic.startTrainingFromScratch(run)
    }
    if (executor.pid === undefined) throw new TrainingError('the trainer did not start a training process')

    let nextSync = performance.now() + syncIntervalMs
    let reportedError: string | null = null
    while (executor.isRunning) {
      ctx.reportProgress(logic.trainingProgress())
      if (ctx.signal.aborted) {
        await executor.cancel()
        throw new StepCancelledError('training aborted')
      }
      if (ctx.stopSignal.aborted) {
        ctx.log.info('stopping the training process gracefully', { training_id: training.id })
        await executor.stop()
        break
      }
      if (performance.now() >= nextSync) {
        reportedError = await logic.errorFromLog(run)
        if (reportedError) break
        try {
          await options.syncTraining?.(training, ctx.signal)
        } catch (error) {
          if (ctx.signal.aborted) continue
          ctx.log.debug('confusion-matrix sync during training failed', { error: errorMessage(error) })
        }
        nextSync = performance.now() + syncIntervalMs
      }
      await sleep(pollMs)
    }
    if (reportedError) await executor.cancel()
    const exit = await executor.wait()
    ctx.reportProgress(logic.trainingProgress())
    throwIfCancelled(ctx.signal)
    const error = reportedError ?? await logic.errorFromLog(run)
    if (error) throw new TrainingError(error)
    if (!exit.stoppedByUs && exit.code !== 0) {
      const tail = executor.logTail(LOG_LINES_IN_ERRORS).filter((l) => !l.startsWith('---')).join(' | ')
      throw new TrainingError(`training process ended with ${exit.signal ?? `exit code ${exit.code}`}${tail ? `; last output: ${tail}` : ''}`)
    }
  } finally {
    if (executor.isRunning) await executor.cancel()
    options.onExecutor?.(undefined)
  }
}
