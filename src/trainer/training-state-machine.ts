import { TRAINER_STATES, isOneOf, type TrainerState } from '../contract/index.ts'
import { backoffDelayMs } from '../foundation/backoff.ts'

/**
 * The trainer's state machine (§8.4) as a pure function of (machine, event) → (machine, actions).
 * No I/O, no clocks: the TrainingRunner performs the actions (run a step, persist, wait, cancel …).
 *
 * Differences from upstream, on purpose:
 * - plain step errors retry with exponential backoff, at most `maxAttempts` times; then the training is
 *   marked failed, its errors kept, and it goes to cleanup (upstream retried for ever, §15.12);
 * - a stale transient or unknown state maps back to a stable one on resume (upstream spun for ever);
 * - `stop` while the training process runs is graceful; before that there is nothing to keep, so it aborts;
 *   after that the wind-down (sync, uploads) is already what a stop means, so it just continues.
 */

export const STEP_NAMES = [
  'prepare', 'download_model', 'run_training', 'sync_confusion_matrix', 'upload_model', 'detecting', 'upload_detections',
] as const
/** A step's name is also its key in the errors map. */
export type StepName = (typeof STEP_NAMES)[number]

export interface TrainingStep {
  name: StepName
  /** the stable state the step starts from (and returns to after a plain error) */
  from: TrainerState
  /** the transient state while it runs */
  during: TrainerState
  /** the stable state after success */
  to: TrainerState
}

export const TRAINING_STEPS: readonly TrainingStep[] = [
  { name: 'prepare', from: 'initialized', during: 'data_downloading', to: 'data_downloaded' },
  { name: 'download_model', from: 'data_downloaded', during: 'train_model_downloading', to: 'train_model_downloaded' },
  { name: 'run_training', from: 'train_model_downloaded', during: 'running', to: 'training_finished' },
  { name: 'sync_confusion_matrix', from: 'training_finished', during: 'confusion_matrix_syncing', to: 'confusion_matrix_synced' },
  { name: 'upload_model', from: 'confusion_matrix_synced', during: 'train_model_uploading', to: 'train_model_uploaded' },
  { name: 'detecting', from: 'train_model_uploaded', during: 'detecting', to: 'detected' },
  { name: 'upload_detections', from: 'detected', during: 'detection_uploading', to: 'ready_for_cleanup' },
]

export interface RetryPolicy {
  /** attempts of one step (the first included) before the training is marked failed */
  maxAttempts: number
  /** wait before the second attempt */
  baseDelayMs: number
  /** no wait is longer than this */
  maxDelayMs: number
  /** growth per attempt */
  factor: number
}

/** About 13 minutes of retries in all: long enough to ride out a Loop restart, short enough to notice. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 10, baseDelayMs: 2_000, maxDelayMs: 300_000, factor: 2 }

export interface MachineConfig {
  retry: RetryPolicy
  /** RESTART_AFTER_TRAINING: exit the process (status 0) after cleanup */
  restartAfterTraining: boolean
}

export const DEFAULT_MACHINE_CONFIG: MachineConfig = { retry: DEFAULT_RETRY_POLICY, restartAfterTraining: false }

/** How a training ended; distinct so status and metrics can tell a stop from an abort from a failure. */
export type TrainingOutcome = 'completed' | 'stopped' | 'aborted' | 'failed'

/** What has been asked of the training from outside. */
export type StopRequest = 'none' | 'graceful' | 'abort' | 'shutdown'

export interface TrainingMachine {
  state: TrainerState
  /** failed attempts of the current step so far */
  attempts: number
  /** step name → message; kept until that step succeeds */
  errors: Record<string, string>
  stop: StopRequest
  /** set once the training is headed for cleanup */
  outcome: TrainingOutcome | null
  /** cleanup has started; it is left to finish */
  cleaningUp: boolean
  /** the runner stops driving (shutdown, or the process must exit); the persisted state resumes later */
  halted: boolean
}

export type TrainingEvent =
  /** the runner is ready for the next thing to do */
  | { type: 'advance' }
  | { type: 'step_succeeded' }
  /** a plain error: retried after a backoff, bounded */
  | { type: 'step_failed'; message: string }
  | { type: 'critical_error'; message: string }
  | { type: 'needs_restart'; message: string }
  /** the running step (or the retry wait) ended because it was cancelled */
  | { type: 'step_cancelled' }
  | { type: 'stop_requested' }
  | { type: 'abort_requested' }
  | { type: 'shutdown_requested' }
  | { type: 'cleanup_finished' }
  | { type: 'cleanup_failed'; message: string }

export type TrainingAction =
  | { type: 'run_step'; step: StepName; attempt: number }
  | { type: 'persist' }
  | { type: 'wait_before_retry'; step: StepName; attempt: number; delayMs: number }
  /** ask the running step to finish early but successfully (the training process ends, the model is kept) */
  | { type: 'stop_step_gracefully' }
  /** cancel the running step or the retry wait */
  | { type: 'cancel_step' }
  | { type: 'run_cleanup' }
  /** the training failed for good: log it and count it */
  | { type: 'report_failure'; step: StepName; message: string }
  | { type: 'halt' }
  /** the process should exit with status 0 (needs restart, or RESTART_AFTER_TRAINING) */
  | { type: 'exit_process'; reason: string }
  /** the training is over: forget it */
  | { type: 'finish'; outcome: TrainingOutcome }

export interface Transition {
  machine: TrainingMachine
  actions: TrainingAction[]
}

const STATES_BEFORE_TRAINING: readonly TrainerState[] = [
  'initialized', 'preparing', 'data_downloading', 'data_downloaded', 'train_model_downloading', 'train_model_downloaded',
]

export function stepStartingAt(state: TrainerState): TrainingStep | undefined {
  return TRAINING_STEPS.find((step) => step.from === state)
}

export function stepRunningIn(state: TrainerState): TrainingStep | undefined {
  return TRAINING_STEPS.find((step) => step.during === state)
}

export function isTransientState(state: TrainerState): boolean {
  return stepRunningIn(state) !== undefined
}

/** Wait before attempt `failedAttempts + 1`: base × factor^(failedAttempts − 1), capped. */
export function retryDelayMs(failedAttempts: number, policy: RetryPolicy): number {
  return backoffDelayMs(failedAttempts - 1, { initialMs: policy.baseDelayMs, maxMs: policy.maxDelayMs, factor: policy.factor })
}

/**
 * The stable state to continue from when a persisted training is loaded. A transient state (the process died
 * during that step) maps back to where its step starts; `preparing` (unused upstream) to `initialized`;
 * `idle` (nothing left to do) to `ready_for_cleanup`. An unknown value restarts from `initialized`, with a note
 * for the log.
 */
export function resumeState(persisted: string): { state: TrainerState; note?: string } {
  if (!isOneOf(TRAINER_STATES, persisted)) {
    return { state: 'initialized', note: `unknown training_state ${JSON.stringify(persisted)}; starting over from initialized` }
  }
  if (persisted === 'preparing') return { state: 'initialized', note: 'preparing is a stale state; continuing from initialized' }
  if (persisted === 'idle') return { state: 'ready_for_cleanup', note: 'a persisted idle training has nothing left to do; cleaning up' }
  const running = stepRunningIn(persisted)
  if (running) return { state: running.from, note: `${persisted} was interrupted; retrying ${running.name} from ${running.from}` }
  return { state: persisted }
}

export function initialMachine(state: TrainerState = 'initialized'): TrainingMachine {
  return { state, attempts: 0, errors: {}, stop: 'none', outcome: null, cleaningUp: false, halted: false }
}

function headForCleanup(machine: TrainingMachine, outcome: TrainingOutcome): TrainingMachine {
  return { ...machine, state: 'ready_for_cleanup', attempts: 0, outcome: machine.outcome ?? outcome }
}

function withError(machine: TrainingMachine, key: string, message: string): Record<string, string> {
  return { ...machine.errors, [key]: message }
}

function withoutError(machine: TrainingMachine, key: string): Record<string, string> {
  const errors = { ...machine.errors }
  delete errors[key]
  return errors
}

const unchanged = (machine: TrainingMachine): Transition => ({ machine, actions: [] })

/** The pure transition function. Events that make no sense in the current state change nothing. */
export function transition(machine: TrainingMachine, event: TrainingEvent, config: MachineConfig = DEFAULT_MACHINE_CONFIG): Transition {
  if (machine.halted || machine.state === 'idle') return unchanged(machine)
  const running = stepRunningIn(machine.state)

  switch (event.type) {
    case 'advance': {
      if (machine.state === 'ready_for_cleanup') {
        if (machine.cleaningUp) return unchanged(machine)
        return { machine: { ...machine, cleaningUp: true }, actions: [{ type: 'run_cleanup' }] }
      }
      const step = stepStartingAt(machine.state)
      if (!step) return unchanged(machine) // transient: the step is already running
      return {
        machine: { ...machine, state: step.during },
        actions: [{ type: 'run_step', step: step.name, attempt: machine.attempts + 1 }],
      }
    }

    case 'step_succeeded': {
      if (!running) return unchanged(machine)
      const errors = withoutError(machine, running.name)
      if (machine.stop === 'abort') {
        return { machine: headForCleanup({ ...machine, errors }, 'aborted'), actions: [{ type: 'persist' }] }
      }
      let next: TrainingMachine = { ...machine, state: running.to, attempts: 0, errors }
      if (running.to === 'ready_for_cleanup') next = headForCleanup(next, machine.stop === 'graceful' ? 'stopped' : 'completed')
      if (machine.stop === 'shutdown') return { machine: { ...next, halted: true }, actions: [{ type: 'persist' }, { type: 'halt' }] }
      return { machine: next, actions: [{ type: 'persist' }] }
    }

    case 'step_failed': {
      if (!running) return unchanged(machine)
      const attempts = machine.attempts + 1
      const errors = withError(machine, running.name, event.message)
      if (machine.stop === 'shutdown') {
        return { machine: { ...machine, state: running.from, attempts, errors, halted: true }, actions: [{ type: 'persist' }, { type: 'halt' }] }
      }
      if (machine.stop === 'abort') {
        return { machine: headForCleanup({ ...machine, errors }, 'aborted'), actions: [{ type: 'persist' }] }
      }
      // a training process that was asked to stop and then reports an error would be restarted by a retry
      const givingUp = attempts >= config.retry.maxAttempts || (machine.stop === 'graceful' && running.name === 'run_training')
      if (givingUp) {
        const message = machine.stop === 'graceful' && running.name === 'run_training'
          ? `${event.message} (after a stop request)`
          : `${event.message} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`
        return {
          machine: headForCleanup({ ...machine, errors: withError(machine, running.name, message) }, 'failed'),
          actions: [{ type: 'report_failure', step: running.name, message }, { type: 'persist' }],
        }
      }
      // not persisted: the file keeps the last completed step, which is where the retry starts
      return {
        machine: { ...machine, state: running.from, attempts, errors },
        actions: [{ type: 'wait_before_retry', step: running.name, attempt: attempts + 1, delayMs: retryDelayMs(attempts, config.retry) }],
      }
    }

    case 'critical_error': {
      if (!running) return unchanged(machine)
      const next = headForCleanup({ ...machine, errors: withError(machine, running.name, event.message) }, 'failed')
      const actions: TrainingAction[] = [{ type: 'report_failure', step: running.name, message: event.message }, { type: 'persist' }]
      if (machine.stop === 'shutdown') return { machine: { ...next, halted: true }, actions: [...actions, { type: 'halt' }] }
      return { machine: next, actions }
    }

    case 'needs_restart': {
      const from = running ? running.from : machine.state
      const errors = running ? withError(machine, running.name, event.message) : machine.errors
      return {
        machine: { ...machine, state: from, errors, halted: true },
        actions: [{ type: 'halt' }, { type: 'exit_process', reason: event.message }],
      }
    }

    case 'step_cancelled': {
      if (!running) return unchanged(machine)
      if (machine.stop === 'shutdown') {
        return { machine: { ...machine, state: running.from, halted: true }, actions: [{ type: 'persist' }, { type: 'halt' }] }
      }
      return { machine: headForCleanup(machine, 'aborted'), actions: [{ type: 'persist' }] }
    }

    case 'stop_requested': {
      if (machine.stop !== 'none' || machine.state === 'ready_for_cleanup') return unchanged(machine)
      if (machine.state === 'running') {
        return { machine: { ...machine, stop: 'graceful' }, actions: [{ type: 'stop_step_gracefully' }] }
      }
      if (STATES_BEFORE_TRAINING.includes(machine.state)) return transition(machine, { type: 'abort_requested' }, config)
      return unchanged({ ...machine, stop: 'graceful' })
    }

    case 'abort_requested': {
      if (machine.stop === 'abort' || machine.stop === 'shutdown' || machine.state === 'ready_for_cleanup') return unchanged(machine)
      if (running) return { machine: { ...machine, stop: 'abort' }, actions: [{ type: 'cancel_step' }] }
      // between steps (or waiting to retry): nothing runs, so go straight to cleanup
      return { machine: headForCleanup({ ...machine, stop: 'abort' }, 'aborted'), actions: [{ type: 'cancel_step' }, { type: 'persist' }] }
    }

    case 'shutdown_requested': {
      if (machine.stop === 'shutdown') return unchanged(machine)
      const next: TrainingMachine = { ...machine, stop: 'shutdown' }
      if (machine.state === 'ready_for_cleanup') {
        // a cleanup under way is short and idempotent: let it finish; one not yet started runs after the restart
        if (machine.cleaningUp) return unchanged(next)
        return { machine: { ...next, halted: true }, actions: [{ type: 'halt' }] }
      }
      if (running) return { machine: next, actions: [{ type: 'cancel_step' }] }
      return { machine: { ...next, halted: true }, actions: [{ type: 'cancel_step' }, { type: 'persist' }, { type: 'halt' }] }
    }

    case 'cleanup_finished':
    case 'cleanup_failed': {
      if (machine.state !== 'ready_for_cleanup' || !machine.cleaningUp) return unchanged(machine)
      const outcome = machine.outcome ?? 'completed'
      const errors = event.type === 'cleanup_failed' ? withError(machine, 'cleanup', event.message) : machine.errors
      const actions: TrainingAction[] = [{ type: 'finish', outcome }]
      if (config.restartAfterTraining) actions.push({ type: 'exit_process', reason: 'RESTART_AFTER_TRAINING is set' })
      return { machine: { ...machine, state: 'idle', errors, cleaningUp: false, outcome }, actions }
    }
  }
}
