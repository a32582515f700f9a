import type { TrainerState, Training } from '../contract/index.ts'
import { createLogger, errorMessage, type Logger } from '../foundation/log.ts'
import { MetricsRegistry } from '../foundation/metrics.ts'
import { ActiveTrainingFiles } from './active-training-files.ts'
import type { LastTrainingFile } from './last-training-file.ts'
import { CriticalError, isPermanentFailure, NodeNeedsRestartError, StepCancelledError, sleepUnlessCancelled } from './training-errors.ts'
import {
  DEFAULT_MACHINE_CONFIG, initialMachine, resumeState, transition,
  type MachineConfig, type RetryPolicy, type StepName, type TrainingAction, type TrainingEvent, type TrainingMachine,
  type TrainingOutcome,
} from './training-state-machine.ts'

/** What a step gets besides the training. */
export interface StepContext {
  /** fires on abort and shutdown: stop work, kill processes, throw (StepCancelledError or anything) */
  signal: AbortSignal
  /** fires on a graceful stop: end the training process early and return normally (run_training only) */
  stopSignal: AbortSignal
  /** 1 for the first attempt */
  attempt: number
  files: ActiveTrainingFiles
  log: Logger
  /** 0–1 for the status; null when unknown */
  reportProgress(progress: number | null): void
}

/** The Training fields a step may change; applied (and persisted) only when the step succeeds. */
export type TrainingUpdate = Partial<Pick<Training, 'image_data' | 'skipped_image_count' | 'model_uuid_for_detecting'>>

type StepResult = Promise<TrainingUpdate | void>

/**
 * The work of each state (§8.4), pluggable so a trainer node can back it with the Loop and a TrainerLogic,
 * and tests with plain functions. A step gets a copy of the training: only its returned update is kept.
 * Throw CriticalError to end the training, NodeNeedsRestartError to exit, anything else to retry (bounded).
 */
export interface TrainerSteps {
  /** download image data and images (§8.5) → image_data, skipped_image_count */
  prepare(training: Training, ctx: StepContext): StepResult
  /** download the base model, if any (§8.5) */
  downloadModel(training: Training, ctx: StepContext): StepResult
  /** run the training process until it ends or is stopped (§8.6) */
  runTraining(training: Training, ctx: StepContext): StepResult
  /** send the best confusion matrix once more (§8.7) */
  syncConfusionMatrix(training: Training, ctx: StepContext): StepResult
  /** upload the model files per format (§8.8) → model_uuid_for_detecting */
  uploadModel(training: Training, ctx: StepContext): StepResult
  /** detections on the project's images with the new model (§8.6) */
  detect(training: Training, ctx: StepContext): StepResult
  /** upload the detection batches (§8.9) */
  uploadDetections(training: Training, ctx: StepContext): StepResult
  /**
   * Trainer-specific cleanup (§8.10 steps 2 and 4: clear training data, send the status). The runner itself
   * deletes the detection/progress files and the last-training file. Not cancellable.
   */
  cleanup(training: Training, ctx: StepContext & { outcome: TrainingOutcome; errors: Record<string, string> }): Promise<void>
}

const STEP_METHODS: Record<StepName, Exclude<keyof TrainerSteps, 'cleanup'>> = {
  prepare: 'prepare',
  download_model: 'downloadModel',
  run_training: 'runTraining',
  sync_confusion_matrix: 'syncConfusionMatrix',
  upload_model: 'uploadModel',
  detecting: 'detect',
  upload_detections: 'uploadDetections',
}

export interface TrainingResult {
  trainingId: string
  /** `halted`: shutdown or restart; the persisted training resumes when the node starts again */
  outcome: TrainingOutcome | 'halted'
  errors: Record<string, string>
  /** set when the process should exit with status 0 now (NodeNeedsRestartError or RESTART_AFTER_TRAINING) */
  exitReason?: string
}

export interface TrainingRunnerOptions {
  training: Training
  steps: TrainerSteps
  lastTrainingFile: LastTrainingFile
  config?: { retry?: Partial<RetryPolicy>; restartAfterTraining?: boolean }
  log?: Logger
  metrics?: MetricsRegistry
  /** every state change, after the training's `training_state` was updated */
  onStateChange?(state: TrainerState, training: Readonly<Training>): void
}

interface RunningWork {
  cancel: AbortController
  graceful: AbortController
}

/**
 * Drives one training through the state machine: runs the steps, persists after every completed step (and
 * before the first one), waits between retries, and turns stop/abort/shutdown into the machine's events.
 * I/O happens here; every decision is made by `transition`.
 */
export class TrainingRunner {
  private machine: TrainingMachine
  private readonly data: Training
  private readonly config: MachineConfig
  private readonly steps: TrainerSteps
  private readonly lastTrainingFile: LastTrainingFile
  private readonly log: Logger
  private readonly onStateChange: TrainingRunnerOptions['onStateChange']
  readonly files: ActiveTrainingFiles
  private current: RunningWork | undefined
  private currentProgress: number | null = null
  private persistChain: Promise<void> = Promise.resolve()
  private persistError: string | undefined
  private exitReason: string | undefined
  private running: Promise<TrainingResult> | undefined
  private readonly metrics: {
    steps: ReturnType<MetricsRegistry['counter']>
    stepSeconds: ReturnType<MetricsRegistry['histogram']>
    trainings: ReturnType<MetricsRegistry['counter']>
    persistFailures: ReturnType<MetricsRegistry['counter']>
  }

  constructor(options: TrainingRunnerOptions) {
    this.config = {
      retry: { ...DEFAULT_MACHINE_CONFIG.retry, ...options.config?.retry },
      restartAfterTraining: options.config?.restartAfterTraining ?? DEFAULT_MACHINE_CONFIG.restartAfterTraining,
    }
    this.steps = options.steps
    this.lastTrainingFile = options.lastTrainingFile
    this.log = (options.log ?? createLogger('trainer')).child('runner')
    this.onStateChange = options.onStateChange
    this.data = structuredClone(options.training)
    const resumed = resumeState(String(this.data.training_state))
    if (resumed.note) this.log.warn('resuming a persisted training', { training_id: this.data.id, note: resumed.note })
    this.machine = initialMachine(resumed.state)
    this.data.training_state = resumed.state
    this.files = new ActiveTrainingFiles(this.data.training_folder)
    const metrics = options.metrics ?? new MetricsRegistry()
    this.metrics = {
      steps: metrics.counter('trainer_steps_total', 'Training steps run, by step and result'),
      stepSeconds: metrics.histogram('trainer_step_duration_seconds', 'Duration of training steps', [0.1, 1, 10, 60, 600, 3600, 36000]),
      trainings: metrics.counter('trainer_trainings_total', 'Trainings that ended, by outcome: completed, stopped (stop_training; the model is kept), aborted (abort_training) or failed'),
      persistFailures: metrics.counter('trainer_persist_failures_total', 'Failed writes of the last-training file'),
    }
  }

  /** A copy of the training as it is now (state included). */
  get training(): Training {
    return structuredClone(this.data)
  }
  get trainingId(): string {
    return this.data.id
  }
  get state(): TrainerState {
    return this.machine.state
  }
  get errors(): Record<string, string> {
    return this.persistError ? { ...this.machine.errors, persist: this.persistError } : { ...this.machine.errors }
  }
  /** Progress reported by the running step (0–1), null between steps. */
  get progress(): number | null {
    return this.currentProgress
  }
  get outcome(): TrainingOutcome | null {
    return this.machine.outcome
  }
  get isFinished(): boolean {
    return this.machine.state === 'idle' || this.machine.halted
  }

  /** Runs the training to its end (idle) or until it halts; calling it again returns the same promise. */
  run(): Promise<TrainingResult> {
    this.running ??= this.drive()
    return this.running
  }

  /**
   * Graceful stop: a running training process ends and the model is still synced, uploaded and used for
   * detections. Before the training process there is nothing to keep, so this aborts.
   */
  stop(): void {
    this.request({ type: 'stop_requested' })
  }

  /** Cancel: the running step is cancelled (processes killed), nothing more is uploaded, the training is cleaned up. */
  async abort(): Promise<TrainingResult> {
    this.request({ type: 'abort_requested' })
    return this.run()
  }

  /** Node shutdown: cancel the running step and leave the persisted training to resume after the restart. */
  async shutdown(): Promise<TrainingResult> {
    this.request({ type: 'shutdown_requested' })
    if (!this.running) {
      await this.persistChain
      return this.result()
    }
    return this.running
  }

  private request(event: TrainingEvent): void {
    for (const action of this.apply(event)) void this.perform(action)
  }

  private apply(event: TrainingEvent): TrainingAction[] {
    const before = this.machine.state
    const { machine, actions } = transition(this.machine, event, this.config)
    this.machine = machine
    this.data.training_state = machine.state
    if (machine.state !== before) {
      this.log.debug('state changed', { training_id: this.data.id, from: before, to: machine.state, event: event.type })
      try {
        this.onStateChange?.(machine.state, this.data)
      } catch (error) {
        this.log.error('state change listener failed', { error: errorMessage(error) })
      }
    }
    return actions
  }

  private async drive(): Promise<TrainingResult> {
    try {
      // persisted before the first step, so a crash during the first download does not lose the training (§15.13)
      await this.persist()
      while (!this.machine.halted && this.machine.state !== 'idle') {
        const actions = this.apply({ type: 'advance' })
        if (actions.length === 0) throw new Error(`the state machine has nothing to do in state ${this.machine.state}`)
        for (const action of actions) await this.perform(action)
      }
    } catch (error) {
      this.log.error('training runner stopped unexpectedly; the persisted training resumes after a restart', { training_id: this.data.id, error: errorMessage(error) })
      this.machine = { ...this.machine, halted: true, errors: { ...this.machine.errors, runner: errorMessage(error) } }
    }
    await this.persistChain
    return this.result()
  }

  private result(): TrainingResult {
    const outcome = this.machine.state === 'idle' ? (this.machine.outcome ?? 'completed') : 'halted'
    return { trainingId: this.data.id, outcome, errors: this.errors, ...(this.exitReason ? { exitReason: this.exitReason } : {}) }
  }

  private async perform(action: TrainingAction): Promise<void> {
    switch (action.type) {
      case 'run_step':
        return this.runStep(action.step, action.attempt)
      case 'persist':
        return this.persist()
      case 'wait_before_retry':
        return this.waitBeforeRetry(action.step, action.attempt, action.delayMs)
      case 'stop_step_gracefully':
        this.current?.graceful.abort(new Error('stop requested'))
        return
      case 'cancel_step':
        this.current?.cancel.abort(new StepCancelledError(this.machine.stop === 'shutdown' ? 'node shutting down' : 'training aborted'))
        return
      case 'run_cleanup':
        return this.cleanup()
      case 'report_failure':
        this.log.error('training failed', { training_id: this.data.id, step: action.step, error: action.message })
        return
      case 'halt':
        return
      case 'exit_process':
        this.exitReason = action.reason
        return
      case 'finish':
        this.metrics.trainings.inc({ outcome: action.outcome })
        this.log.info('training finished', { training_id: this.data.id, outcome: action.outcome, errors: this.machine.errors })
        return
    }
  }

  /** Serialised writes of a snapshot taken now; a failure is logged, counted and shown in the errors. */
  private persist(): Promise<void> {
    const snapshot = structuredClone(this.data)
    this.persistChain = this.persistChain.then(async () => {
      try {
        await this.lastTrainingFile.write(snapshot)
        this.persistError = undefined
      } catch (error) {
        this.persistError = errorMessage(error)
        this.metrics.persistFailures.inc()
        this.log.error('could not persist the training', { training_id: this.data.id, path: this.lastTrainingFile.path, error: this.persistError })
      }
    })
    return this.persistChain
  }

  private context(work: RunningWork, attempt: number): StepContext {
    return {
      signal: work.cancel.signal,
      stopSignal: work.graceful.signal,
      attempt,
      files: this.files,
      log: this.log,
      reportProgress: (progress) => {
        if (this.current === work) this.currentProgress = progress
      },
    }
  }

  private async runStep(step: StepName, attempt: number): Promise<void> {
    const work: RunningWork = { cancel: new AbortController(), graceful: new AbortController() }
    this.current = work
    this.currentProgress = null
    const started = performance.now()
    let event: TrainingEvent
    try {
      const update = await this.steps[STEP_METHODS[step]](structuredClone(this.data), this.context(work, attempt))
      if (update) Object.assign(this.data, pickUpdate(update))
      event = { type: 'step_succeeded' }
    } catch (error) {
      event = classifyStepError(error, work.cancel.signal.aborted)
      if (event.type !== 'step_cancelled') {
        this.log.warn('training step failed', { training_id: this.data.id, step, attempt, kind: event.type, error: errorMessage(error) })
      }
    } finally {
      this.current = undefined
      this.currentProgress = null
    }
    const result = event.type === 'step_succeeded' ? 'succeeded' : event.type === 'step_cancelled' ? 'cancelled' : event.type === 'step_failed' ? 'failed' : event.type
    this.metrics.steps.inc({ step, result })
    this.metrics.stepSeconds.observe((performance.now() - started) / 1000, { step })
    for (const action of this.apply(event)) await this.perform(action)
  }

  private async waitBeforeRetry(step: StepName, attempt: number, delayMs: number): Promise<void> {
    this.log.info('retrying training step after a backoff', { training_id: this.data.id, step, attempt, max_attempts: this.config.retry.maxAttempts, delay_ms: delayMs })
    const work: RunningWork = { cancel: new AbortController(), graceful: new AbortController() }
    this.current = work
    try {
      await sleepUnlessCancelled(delayMs, work.cancel.signal)
    } catch {
      // an abort or shutdown during the wait already moved the machine on
    } finally {
      this.current = undefined
    }
  }

  private async cleanup(): Promise<void> {
    const work: RunningWork = { cancel: new AbortController(), graceful: new AbortController() }
    const problems: string[] = []
    const attemptTo = async (what: string, task: () => Promise<void>) => {
      try {
        await task()
      } catch (error) {
        problems.push(`${what}: ${errorMessage(error)}`)
        this.log.error('cleanup failed', { training_id: this.data.id, what, error: errorMessage(error) })
      }
    }
    await attemptTo('delete detection files', () => this.files.deleteDetections())
    await attemptTo('delete model upload progress', () => this.files.deleteModelUploadProgress())
    await attemptTo('trainer cleanup', () => this.steps.cleanup(structuredClone(this.data), {
      ...this.context(work, 1), outcome: this.machine.outcome ?? 'completed', errors: this.errors,
    }))
    await this.persistChain
    await attemptTo('delete the last-training file', () => this.lastTrainingFile.delete())
    this.metrics.steps.inc({ step: 'cleanup', result: problems.length ? 'failed' : 'succeeded' })
    const event: TrainingEvent = problems.length ? { type: 'cleanup_failed', message: problems.join('; ') } : { type: 'cleanup_finished' }
    for (const action of this.apply(event)) await this.perform(action)
  }
}

function pickUpdate(update: TrainingUpdate): TrainingUpdate {
  const picked: TrainingUpdate = {}
  if ('image_data' in update) picked.image_data = update.image_data ?? null
  if ('skipped_image_count' in update) picked.skipped_image_count = update.skipped_image_count ?? null
  if ('model_uuid_for_detecting' in update) picked.model_uuid_for_detecting = update.model_uuid_for_detecting ?? null
  return picked
}

/** Cancellation wins over whatever the step threw while being cancelled. */
export function classifyStepError(error: unknown, cancelled: boolean): TrainingEvent {
  if (cancelled || error instanceof StepCancelledError) return { type: 'step_cancelled' }
  const message = errorMessage(error) || String(error)
  if (error instanceof CriticalError || isPermanentFailure(error)) return { type: 'critical_error', message }
  if (error instanceof NodeNeedsRestartError) return { type: 'needs_restart', message }
  return { type: 'step_failed', message }
}
