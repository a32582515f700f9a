import type { Context, TrainerState, Training } from '../contract/index.ts'
import { createLogger, errorMessage, type Logger } from '../foundation/log.ts'
import { MetricsRegistry } from '../foundation/metrics.ts'
import { LastTrainingFile } from './last-training-file.ts'
import { createTraining } from './training-creation.ts'
import { BeginTrainingRejected } from './training-errors.ts'
import { TrainingRunner, type TrainerSteps, type TrainingResult } from './training-runner.ts'
import type { RetryPolicy } from './training-state-machine.ts'

export interface TrainingSupervisorOptions {
  dataFolder: string
  nodeUuid: string
  /** the steps for one training; a trainer node backs them with the Loop and its TrainerLogic */
  stepsFor(training: Training): TrainerSteps
  /** KEEP_OLD_TRAININGS */
  keepOldTrainings?: boolean
  /** RESTART_AFTER_TRAINING */
  restartAfterTraining?: boolean
  retry?: Partial<RetryPolicy>
  log?: Logger
  metrics?: MetricsRegistry
  onStateChange?(state: TrainerState, training: Readonly<Training>): void
  /** a training ended (finished, or halted for a restart); `exitReason` means: exit the process with status 0 */
  onTrainingEnded?(result: TrainingResult): void | Promise<void>
}

/** The trainer's status fields for `update_trainer` (§8.1 send_status). */
export interface TrainingStatusFields {
  state: TrainerState
  errors: Record<string, string>
  progress: number | null
  /** seconds since the training started; null when idle */
  uptime: number | null
  context: Context | null
}

/**
 * At most one training at a time, from `begin_training` or from the last-training file after a restart:
 * validates begin requests (a second one while a training is active is rejected — upstream had no guard,
 * §15.12), owns the runner, relays stop/abort/shutdown, reports status fields, and tracks the idle time for
 * TRAINER_IDLE_TIMEOUT_SEC. The trainer node only wires Loop events and its repeat loop to these methods.
 */
export class TrainingSupervisor {
  readonly lastTrainingFile: LastTrainingFile
  private active: TrainingRunner | undefined
  private activeRun: Promise<TrainingResult> | undefined
  private starting = false
  /** the look for a persisted training to resume, while it runs (begin waits for it) */
  private resuming: Promise<Training | undefined> | undefined
  private idleSinceMs: number | undefined
  private readonly log: Logger
  private readonly metrics: MetricsRegistry
  private readonly rejectedBegins: ReturnType<MetricsRegistry['counter']>
  private readonly corruptFiles: ReturnType<MetricsRegistry['counter']>

  constructor(private readonly options: TrainingSupervisorOptions) {
    this.lastTrainingFile = new LastTrainingFile(options.dataFolder, options.nodeUuid)
    this.log = options.log ?? createLogger('trainer')
    this.metrics = options.metrics ?? new MetricsRegistry()
    this.rejectedBegins = this.metrics.counter('trainer_begin_rejected_total', 'begin_training requests refused (invalid details, or a training already active)')
    this.corruptFiles = this.metrics.counter('trainer_corrupt_last_training_total', 'Unreadable last-training files moved aside')
    const activeGauge = this.metrics.gauge('trainer_training_active', 'Whether a training is active (1) or not (0)')
    activeGauge.collect(() => activeGauge.set(this.active ? 1 : 0))
  }

  /** The runner of the active training, if any. */
  get runner(): TrainingRunner | undefined {
    return this.active
  }

  get isActive(): boolean {
    return this.active !== undefined || this.starting
  }

  /**
   * `begin_training(org, project, details)`: validates, creates the folders and starts the training.
   * Throws BeginTrainingRejected (the caller acks `{success:false, error_msg}`) for invalid details or while
   * another training is active.
   */
  async begin(context: Context, details: unknown): Promise<Training> {
    // the repeat loop's look for a persisted training takes a moment of file I/O: wait for it rather than refuse
    await this.resuming?.catch(() => undefined)
    if (this.isActive) {
      this.rejectedBegins.inc({ reason: 'busy' })
      const current = this.active ? ` (training ${this.active.trainingId} is ${this.active.state})` : ''
      throw new BeginTrainingRejected(`a training is already active${current}; stop or abort it first`)
    }
    this.starting = true
    try {
      const training = await createTraining({
        dataFolder: this.options.dataFolder, context, details, keepOldTrainings: this.options.keepOldTrainings ?? false,
      })
      this.log.info('training begins', { training_id: training.id, context, training_number: training.training_number, model_variant: training.model_variant })
      this.launch(training)
      return training
    } catch (error) {
      if (error instanceof BeginTrainingRejected) {
        this.rejectedBegins.inc({ reason: 'invalid' })
        this.log.warn('begin_training rejected', { error: error.message })
      }
      throw error
    } finally {
      this.starting = false
    }
  }

  /**
   * After a restart (upstream on_repeat step 1): loads `last_training__<uuid>.json` and resumes it.
   * Returns the training, or undefined when there is none, one is already active, or the file is unreadable
   * (then it is moved aside, logged and counted, so it cannot block the node for ever).
   */
  resumeFromDisk(): Promise<Training | undefined> {
    if (this.resuming) return this.resuming
    if (this.isActive) return Promise.resolve(undefined)
    const resuming = this.resumeNow().finally(() => {
      if (this.resuming === resuming) this.resuming = undefined
    })
    this.resuming = resuming
    return resuming
  }

  private async resumeNow(): Promise<Training | undefined> {
    this.starting = true
    try {
      let training: Training | undefined
      try {
        training = await this.lastTrainingFile.read()
      } catch (error) {
        const moved = await this.lastTrainingFile.quarantine().catch(() => undefined)
        this.corruptFiles.inc()
        this.log.error('the last-training file is unreadable; moved aside', { path: this.lastTrainingFile.path, moved_to: moved, error: errorMessage(error) })
        return undefined
      }
      if (!training) return undefined
      this.log.info('resuming the last training', { training_id: training.id, state: training.training_state })
      this.launch(training)
      return training
    } finally {
      this.starting = false
    }
  }

  /** Graceful stop (`stop_training`); nothing happens without a training. */
  stop(): void {
    this.active?.stop()
  }

  /** `abort_training`: cancel and clean up without uploads; resolves when the training is gone. */
  async abort(): Promise<TrainingResult | undefined> {
    if (!this.active) return undefined
    return this.active.abort()
  }

  /** Node shutdown: halt the training so it resumes after the restart. */
  async shutdown(): Promise<TrainingResult | undefined> {
    if (!this.active) return undefined
    return this.active.shutdown()
  }

  /** Resolves when the active training (if any) has ended. */
  async waitUntilIdle(): Promise<TrainingResult | undefined> {
    return this.activeRun
  }

  status(nowMs = Date.now()): TrainingStatusFields {
    const runner = this.active
    if (!runner) return { state: 'idle', errors: {}, progress: null, uptime: null, context: null }
    const training = runner.training
    return {
      state: runner.state,
      errors: runner.errors,
      progress: runner.progress,
      uptime: Math.max(0, nowMs / 1000 - training.start_time),
      context: training.context,
    }
  }

  /**
   * TRAINER_IDLE_TIMEOUT_SEC (§8.1): true once the node has been idle (no training) for longer than `timeoutSec`;
   * any activity resets the clock. Call it every repeat cycle; `timeoutSec` ≤ 0 disables it.
   */
  idleTimeoutExpired(timeoutSec: number, nowMs = Date.now()): boolean {
    if (this.isActive) {
      this.idleSinceMs = undefined
      return false
    }
    this.idleSinceMs ??= nowMs
    return timeoutSec > 0 && nowMs - this.idleSinceMs > timeoutSec * 1000
  }

  private launch(training: Training): void {
    const runner = new TrainingRunner({
      training,
      steps: this.options.stepsFor(training),
      lastTrainingFile: this.lastTrainingFile,
      config: {
        ...(this.options.retry ? { retry: this.options.retry } : {}),
        restartAfterTraining: this.options.restartAfterTraining ?? false,
      },
      log: this.log,
      metrics: this.metrics,
      ...(this.options.onStateChange ? { onStateChange: this.options.onStateChange } : {}),
    })
    this.active = runner
    this.idleSinceMs = undefined
    this.activeRun = runner.run().then(async (result) => {
      if (this.active === runner) this.active = undefined
      try {
        await this.options.onTrainingEnded?.(result)
      } catch (error) {
        this.log.error('training end listener failed', { error: errorMessage(error) })
      }
      return result
    })
  }
}
