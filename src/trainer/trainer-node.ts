import { rm } from 'node:fs/promises'
import { socketFailure, type SocketResponse, type Training, type TrainingStatus } from '../contract/index.ts'
import type { NodeConfig } from '../config/node-config.ts'
import { DataExchange } from '../loop/data-exchange.ts'
import { createLogger, type Logger } from '../foundation/log.ts'
import { LoopConnection } from '../node/loop-connection.ts'
import { LocalLoop } from '../local-loop/local-loop.ts'
import { NodeRuntime } from '../node/node-runtime.ts'
import { resolveNodeHome } from '../node/node-identity.ts'
import { DEFAULT_CANCEL_GRACE_MS, type Executor, type ExecutorOptions } from './executor.ts'
import { createLoopTrainerSteps } from './loop-trainer-steps.ts'
import { LoopReachability, LoopTrainerPort } from './loop-trainer-port.ts'
import { registerTrainerBackdoorRoutes, type TrainerBackdoor } from './trainer-backdoor-routes.ts'
import type { TrainerLogic } from './trainer-logic.ts'
import { buildTrainingStatus, TrainerStatusReporter } from './trainer-status-reporter.ts'
import type { DownloadOptions } from './training-data-downloader.ts'
import { BeginTrainingRejected } from './training-errors.ts'
import type { TrainingResult } from './training-runner.ts'
import type { RetryPolicy } from './training-state-machine.ts'
import { TrainingSupervisor } from './training-supervisor.ts'

export const DEFAULT_TRAINER_PORT = 8003
/** How long an `abort_training` ack waits for the training to be gone before it answers anyway. */
const ABORT_ACK_WAIT_MS = 5_000
/** How long a shutdown waits for queued statuses (the last one tells the Loop where the training stands). */
const STATUS_FLUSH_MS = 2_000

/** Timings and knobs, all with production defaults; tests make them short. */
export interface TrainerTiming {
  /** the repeat cycle: `update_trainer`, resume check, idle check (upstream 5 s) */
  statusIntervalMs?: number
  /** bounded retries of a failing step */
  retry?: Partial<RetryPolicy>
  /** waits while the Loop is unreachable: first wait and longest wait */
  loopWait?: { initialMs?: number; maxMs?: number }
  /** pause before every upload request (a test knob, see LoopTrainerPort) */
  uploadPauseMs?: number
  /** how often the training process is watched and metrics are synced while it runs */
  trainingProcess?: { pollMs?: number; syncIntervalMs?: number }
  /** grace periods of the training process group (stop: SIGTERM → SIGKILL; cancel: abort and shutdown) */
  executor?: Pick<ExecutorOptions, 'stopGraceMs' | 'cancelGraceMs'>
  /** image download tuning (concurrency, retries) */
  downloader?: Partial<Pick<DownloadOptions, 'concurrency' | 'attempts' | 'retryBaseMs' | 'minRequestSpacingMs' | 'progressOutput'>>
}

export interface TrainerNodeOptions {
  config: NodeConfig
  logic: TrainerLogic
  /** default `trainer`; also the key of the node's uuid in `<data>/uuids.json` */
  name?: string
  /** default: DATA_FOLDER as resolved by resolveDataFolder */
  dataFolder?: string
  log?: Logger
  timing?: TrainerTiming
  /**
   * Ends the process after a graceful shutdown, with status 0: idle timeout, RESTART_AFTER_TRAINING, the Loop's
   * `restart` event or a NodeNeedsRestartError. Default `process.exit`; tests record the call instead.
   */
  exit?: (code: number, reason: string) => void
}

/**
 * The trainer node (§8): receives `begin_training` / `stop_training` / `abort_training` from the Loop over
 * socket.io, runs at most one training through the TrainingSupervisor (persisted state machine, executor in
 * its own process group), reports `update_trainer` on every state change and every repeat cycle, and resumes
 * an interrupted training at start — also while the Loop is down (fix of §15.13).
 *
 * `/ready` means "connected to the Loop": a trainer that is not connected cannot be given a training.
 */
export class TrainerNode implements TrainerBackdoor {
  readonly supervisor: TrainingSupervisor
  readonly reachability: LoopReachability
  private readonly reporter: TrainerStatusReporter
  private readonly log: Logger
  private executor: Executor | undefined
  private exiting = false
  private readonly events: ReturnType<NodeRuntime['metrics']['counter']>

  private constructor(
    readonly runtime: NodeRuntime,
    readonly loop: LoopConnection,
    readonly dataFolder: string,
    readonly uuid: string,
    readonly name: string,
    private readonly options: TrainerNodeOptions,
  ) {
    this.log = runtime.log
    const { config, logic } = options
    const timing = options.timing ?? {}
    this.events = runtime.metrics.counter('trainer_loop_events_total', 'Loop → trainer events by event and result')
    this.reporter = new TrainerStatusReporter({ socket: () => loop.socket, log: this.log, metrics: runtime.metrics })
    this.reachability = new LoopReachability({
      backendReady: () => loop.rest.backendReady(),
      socket: () => loop.socket,
      initialWaitMs: timing.loopWait?.initialMs,
      maxWaitMs: timing.loopWait?.maxMs,
      log: this.log.child('reachability'),
      metrics: runtime.metrics,
    })
    this.supervisor = new TrainingSupervisor({
      dataFolder,
      nodeUuid: uuid,
      keepOldTrainings: config.trainer.keepOldTrainings,
      restartAfterTraining: config.trainer.restartAfterTraining,
      ...(timing.retry ? { retry: timing.retry } : {}),
      log: this.log,
      metrics: runtime.metrics,
      stepsFor: (training) => this.stepsFor(training, logic, timing),
      onStateChange: () => void this.sendStatus(),
      onTrainingEnded: (result) => this.onTrainingEnded(result),
    })
  }

  /** Everything but listening; `runtime.start()` starts it (the CLI installs signal handlers in between). */
  static async create(options: TrainerNodeOptions): Promise<TrainerNode> {
    const { config } = options
    const log = options.log ?? createLogger('trainer')
    const name = options.name ?? 'trainer'
    const { dataFolder, uuid } = await resolveNodeHome({ configured: config.dataFolder, given: options.dataFolder, name, log })
    const runtime = new NodeRuntime({
      name, uuid, nodeType: 'trainer', port: config.port ?? DEFAULT_TRAINER_PORT, hostname: config.hostname,
      skipRepeatOnStart: config.skipRepeatOnStart, log, repeatIntervalMs: options.timing?.statusIntervalMs,
      // a shutdown cancels the training process (SIGTERM, SIGKILL after cancelGraceMs), then sends the last status;
      // a longer configured grace must fit, or the process group would be killed at exit mid-checkpoint
      shutdownPersistMs: (options.timing?.executor?.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS) + STATUS_FLUSH_MS + 1_000,
    })
    let node: TrainerNode | undefined
    const loop = await LoopConnection.open({
      config, dataFolder, nodeType: 'trainer', socket: true, log, metrics: runtime.metrics,
      onRestart: () => node?.requestExit('the Loop asked this node to restart'),
      startEmbeddedLoop: (loopOptions) => LocalLoop.start(loopOptions),
    })
    node = new TrainerNode(runtime, loop, dataFolder, uuid, name, options)
    node.wire()
    return node
  }

  static async start(options: TrainerNodeOptions): Promise<TrainerNode> {
    const node = await TrainerNode.create(options)
    await node.runtime.start()
    return node
  }

  get url(): string {
    return this.runtime.url
  }

  get logic(): TrainerLogic {
    return this.options.logic
  }

  /** The executor of the running training process, if one runs now. */
  get trainingExecutor(): Executor | undefined {
    return this.executor
  }

  /** The TrainingStatus as `update_trainer` sends it now. */
  status(): TrainingStatus {
    return buildTrainingStatus({
      id: this.uuid,
      name: this.name,
      fields: this.supervisor.status(),
      architecture: this.logic.modelArchitecture,
      pretrainedModels: this.logic.providedPretrainedModels,
    })
  }

  /** Queues `update_trainer` with the status as it is now; resolves with whether the Loop accepted it. */
  sendStatus(): Promise<boolean> {
    return this.reporter.send(this.status())
  }

  /**
   * `begin_training(organization, project, details)` (§5.2, §8.3). A validation failure or a training that is
   * already active is answered `{success:false, error_msg}` (upstream had no guard, §15.12); the active one goes on.
   */
  async beginTraining(organization: unknown, project: unknown, details: unknown): Promise<SocketResponse | boolean> {
    const refuse = (message: string) => {
      this.events.inc({ event: 'begin_training', result: 'refused' })
      return socketFailure(message)
    }
    if (typeof organization !== 'string' || organization === '') return refuse('organization missing or not a str')
    if (typeof project !== 'string' || project === '') return refuse('project missing or not a str')
    if (this.runtime.isShuttingDown || this.exiting) return refuse('the trainer is shutting down')
    try {
      const training = await this.supervisor.begin({ organization, project }, details)
      this.events.inc({ event: 'begin_training', result: 'accepted' })
      void this.sendStatus()
      this.log.info('training accepted', { training_id: training.id, organization, project })
      return true
    } catch (error) {
      if (error instanceof BeginTrainingRejected) return refuse(error.message)
      throw error
    }
  }

  /** `stop_training`: graceful, the model is kept and uploaded (§5.2, §8.6). */
  stopTraining(): boolean {
    this.events.inc({ event: 'stop_training', result: this.supervisor.isActive ? 'accepted' : 'no_training' })
    this.log.info('stop requested', { active: this.supervisor.isActive })
    this.supervisor.stop()
    return true
  }

  /** `abort_training`: cancel, kill the process group, clean up, upload nothing; answers once it is gone (or after 5 s). */
  async abortTraining(): Promise<boolean> {
    this.events.inc({ event: 'abort_training', result: this.supervisor.isActive ? 'accepted' : 'no_training' })
    this.log.info('abort requested', { active: this.supervisor.isActive })
    const aborted = this.supervisor.abort()
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([aborted, new Promise((resolve) => { timer = setTimeout(resolve, ABORT_ACK_WAIT_MS) })])
    clearTimeout(timer)
    return true
  }

  /** Backdoor `POST /reset` (§8.11): abort any training, forget the persisted one, clear errors, reconnect, report. */
  async reset(): Promise<void> {
    await this.supervisor.abort()
    await this.supervisor.lastTrainingFile.delete()
    this.runtime.status.errors = {}
    if (!this.loop.socket) this.loop.connect()
    await this.sendStatus()
  }

  /** Backdoor `POST /kill_training_process`: terminate the training process (it ends the run_training step); false when none runs. */
  async killTrainingProcess(): Promise<boolean> {
    const executor = this.executor
    if (!executor?.isRunning) return false
    await executor.stop()
    return true
  }

  /** Graceful shutdown: the training is halted and persisted, its process group killed; it resumes at the next start. */
  stop(reason = 'stop requested'): Promise<void> {
    return this.runtime.shutdown(reason)
  }

  /** Shuts down gracefully, then ends the process with status 0 (once). */
  requestExit(reason: string): void {
    if (this.exiting) return
    this.exiting = true
    this.log.info('the trainer exits with status 0', { reason })
    const exit = this.options.exit ?? ((code: number) => process.exit(code))
    void this.runtime.shutdown(reason).finally(() => exit(0, reason))
  }

  private wire(): void {
    const { runtime, loop } = this
    loop.on('begin_training', (organization: unknown, project: unknown, details: unknown) => runtime.track(this.beginTraining(organization, project, details)))
    loop.on('stop_training', () => this.stopTraining())
    loop.on('abort_training', () => runtime.track(this.abortTraining()))
    loop.onConnect(() => void this.sendStatus())
    if (this.options.config.useBackdoorControls) registerTrainerBackdoorRoutes(runtime.app, this, runtime)
    runtime.setHooks({
      onStartup: async () => {
        loop.connect()
        // not waiting for the Loop: offline steps go on, Loop steps wait for it (§15.13)
        await this.supervisor.resumeFromDisk()
      },
      onRepeat: () => this.repeat(),
      onShutdown: async () => {
        const halted = await this.supervisor.shutdown()
        if (halted) this.log.info('training halted for the shutdown; it resumes at the next start', { training_id: halted.trainingId })
        await this.reporter.flush(STATUS_FLUSH_MS)
        await loop.close()
      },
      onLoopConnectionToggle: async (on) => {
        if (on) loop.connect()
        else await loop.disconnect()
      },
      notReadyReason: () => (loop.connected ? undefined : 'not connected to the Loop'),
    })
  }

  /** Upstream on_repeat (§8.1): resume a persisted training, send the status, check the idle timeout. */
  private async repeat(): Promise<void> {
    if (this.exiting || this.runtime.isShuttingDown) return
    if (!this.supervisor.isActive) await this.supervisor.resumeFromDisk()
    await this.sendStatus()
    const timeoutSec = this.options.config.trainer.idleTimeoutSec
    if (this.supervisor.idleTimeoutExpired(timeoutSec)) this.requestExit(`idle for more than ${timeoutSec} s (TRAINER_IDLE_TIMEOUT_SEC)`)
  }

  private stepsFor(training: Training, logic: TrainerLogic, timing: TrainerTiming) {
    const port = new LoopTrainerPort({
      exchange: new DataExchange(this.loop.rest, training.context),
      reachability: this.reachability,
      socket: () => this.loop.socket,
      uploadPauseMs: timing.uploadPauseMs,
      log: this.log,
    })
    const keepOldTrainings = this.options.config.trainer.keepOldTrainings
    return createLoopTrainerSteps({
      logic,
      loop: port,
      trainerId: this.uuid,
      trainerName: this.name,
      inferenceBatchSize: this.options.config.trainer.inferenceBatchSize,
      downloader: { ...timing.downloader, metrics: this.runtime.metrics, maxImagePixels: this.options.config.inference.maxImagePixels },
      trainingProcess: {
        ...timing.trainingProcess,
        executor: { ...timing.executor, log: this.log },
        onExecutor: (executor) => {
          this.executor = executor
        },
      },
      onCleanup: async (ended, outcome) => {
        // KEEP_OLD_TRAININGS keeps the folder (log, model files) for a person to look at
        if (!keepOldTrainings) await rm(ended.training_folder, { recursive: true, force: true })
        this.log.info('training cleaned up', { training_id: ended.id, outcome, folder_kept: keepOldTrainings })
      },
    })
  }

  private onTrainingEnded(result: TrainingResult): void {
    if (result.outcome !== 'halted' || result.exitReason) void this.sendStatus()
    if (result.exitReason) this.requestExit(result.exitReason)
  }
}
