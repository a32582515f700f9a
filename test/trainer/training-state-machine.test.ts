import { describe, expect, test } from 'bun:test'
import { TRAINER_STATES, type TrainerState } from '../../src/contract/index.ts'
import {
  DEFAULT_MACHINE_CONFIG, initialMachine, resumeState, retryDelayMs, stepRunningIn, transition, TRAINING_STEPS,
  type MachineConfig, type TrainingEvent, type TrainingMachine, type Transition,
} from '../../src/trainer/training-state-machine.ts'

const config: MachineConfig = { retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 250, factor: 2 }, restartAfterTraining: false }

function run(machine: TrainingMachine, ...events: TrainingEvent[]): Transition {
  let result: Transition = { machine, actions: [] }
  for (const event of events) result = transition(result.machine, event, config)
  return result
}
const at = (state: TrainerState, patch: Partial<TrainingMachine> = {}): TrainingMachine => ({ ...initialMachine(state), ...patch })
const types = (t: Transition) => t.actions.map((a) => a.type)

describe('training state machine: the happy path', () => {
  test('passes every state of §8.4 in order, persisting after every completed step, then cleans up to idle', () => {
    let machine = initialMachine()
    const seen: TrainerState[] = [machine.state]
    for (const step of TRAINING_STEPS) {
      expect(machine.state).toBe(step.from)
      const started = transition(machine, { type: 'advance' }, config)
      expect(started.actions).toEqual([{ type: 'run_step', step: step.name, attempt: 1 }])
      expect(started.machine.state).toBe(step.during)
      seen.push(started.machine.state)
      const done = transition(started.machine, { type: 'step_succeeded' }, config)
      expect(done.machine.state).toBe(step.to)
      expect(types(done)).toEqual(['persist'])
      machine = done.machine
      seen.push(machine.state)
    }
    expect(machine.outcome).toBe('completed')
    const cleaning = transition(machine, { type: 'advance' }, config)
    expect(types(cleaning)).toEqual(['run_cleanup'])
    // advancing again while cleaning up does not start a second cleanup
    expect(transition(cleaning.machine, { type: 'advance' }, config).actions).toEqual([])
    const finished = transition(cleaning.machine, { type: 'cleanup_finished' }, config)
    expect(finished.machine.state).toBe('idle')
    expect(finished.actions).toEqual([{ type: 'finish', outcome: 'completed' }])
    expect([...new Set(seen)]).toEqual(TRAINER_STATES.filter((s) => s !== 'idle' && s !== 'preparing'))
  })

  test('an idle or halted machine ignores every event', () => {
    const events: TrainingEvent[] = [
      { type: 'advance' }, { type: 'step_succeeded' }, { type: 'step_failed', message: 'x' }, { type: 'critical_error', message: 'x' },
      { type: 'needs_restart', message: 'x' }, { type: 'step_cancelled' }, { type: 'stop_requested' }, { type: 'abort_requested' },
      { type: 'shutdown_requested' }, { type: 'cleanup_finished' }, { type: 'cleanup_failed', message: 'x' },
    ]
    for (const machine of [at('idle'), at('running', { halted: true })]) {
      for (const event of events) expect(transition(machine, event, config)).toEqual({ machine, actions: [] })
    }
  })

  test('step outcomes outside a running step change nothing', () => {
    for (const event of [{ type: 'step_succeeded' }, { type: 'step_failed', message: 'x' }, { type: 'critical_error', message: 'x' }, { type: 'step_cancelled' }] as TrainingEvent[]) {
      expect(transition(at('data_downloaded'), event, config).actions).toEqual([])
    }
    expect(transition(at('running'), { type: 'advance' }, config).actions).toEqual([])
  })

  test('RESTART_AFTER_TRAINING asks for a process exit after cleanup', () => {
    const machine = at('ready_for_cleanup', { cleaningUp: true, outcome: 'completed' })
    const t = transition(machine, { type: 'cleanup_finished' }, { ...config, restartAfterTraining: true })
    expect(t.actions).toEqual([{ type: 'finish', outcome: 'completed' }, { type: 'exit_process', reason: 'RESTART_AFTER_TRAINING is set' }])
  })

  test('a failed cleanup still ends the training, with the cleanup error kept', () => {
    const t = transition(at('ready_for_cleanup', { cleaningUp: true, outcome: 'aborted' }), { type: 'cleanup_failed', message: 'disk gone' }, config)
    expect(t.machine.state).toBe('idle')
    expect(t.machine.errors).toEqual({ cleanup: 'disk gone' })
    expect(t.actions).toEqual([{ type: 'finish', outcome: 'aborted' }])
  })
})

describe.each(TRAINING_STEPS.map((s) => [s.name, s] as const))('training state machine: errors in %s', (_name, step) => {
  const runningStep = () => transition(at(step.from), { type: 'advance' }, config).machine

  test('a plain error returns to the previous stable state without persisting and retries with a growing, capped backoff', () => {
    let t = run(runningStep(), { type: 'step_failed', message: 'boom 1' })
    expect(t.machine.state).toBe(step.from)
    expect(t.machine.errors).toEqual({ [step.name]: 'boom 1' })
    expect(t.actions).toEqual([{ type: 'wait_before_retry', step: step.name, attempt: 2, delayMs: 100 }])
    t = run(t.machine, { type: 'advance' })
    expect(t.actions).toEqual([{ type: 'run_step', step: step.name, attempt: 2 }])
    t = run(t.machine, { type: 'step_failed', message: 'boom 2' })
    expect(t.actions).toEqual([{ type: 'wait_before_retry', step: step.name, attempt: 3, delayMs: 200 }])
    expect(t.machine.errors[step.name]).toBe('boom 2')
    // success clears the error and the attempt count
    t = run(t.machine, { type: 'advance' }, { type: 'step_succeeded' })
    expect(t.machine.state).toBe(step.to)
    expect(t.machine.errors).toEqual({})
    expect(t.machine.attempts).toBe(0)
  })

  test('the retries are bounded: after maxAttempts the training is marked failed, reported, persisted and cleaned up', () => {
    let t: Transition = { machine: runningStep(), actions: [] }
    for (let i = 1; i < config.retry.maxAttempts; i++) t = run(t.machine, { type: 'step_failed', message: `boom ${i}` }, { type: 'advance' })
    t = run(t.machine, { type: 'step_failed', message: 'boom last' })
    expect(t.machine.state).toBe('ready_for_cleanup')
    expect(t.machine.outcome).toBe('failed')
    expect(t.machine.errors[step.name]).toBe('boom last (gave up after 3 attempts)')
    expect(t.actions).toEqual([{ type: 'report_failure', step: step.name, message: 'boom last (gave up after 3 attempts)' }, { type: 'persist' }])
    const done = run(t.machine, { type: 'advance' }, { type: 'cleanup_finished' })
    expect(done.machine.state).toBe('idle')
    expect(done.actions).toEqual([{ type: 'finish', outcome: 'failed' }])
    expect(done.machine.errors[step.name]).toContain('gave up')
  })

  test('a CriticalError goes to cleanup at once, keeping the error, and persists', () => {
    const t = run(runningStep(), { type: 'critical_error', message: 'no model files' })
    expect(t.machine.state).toBe('ready_for_cleanup')
    expect(t.machine.outcome).toBe('failed')
    expect(t.machine.errors).toEqual({ [step.name]: 'no model files' })
    expect(types(t)).toEqual(['report_failure', 'persist'])
  })

  test('NodeNeedsRestartError halts and asks for a process exit, leaving the state at the last stable one', () => {
    const t = run(runningStep(), { type: 'needs_restart', message: 'gpu lost' })
    expect(t.machine.state).toBe(step.from)
    expect(t.machine.halted).toBe(true)
    expect(t.actions).toEqual([{ type: 'halt' }, { type: 'exit_process', reason: 'gpu lost' }])
  })

  test('abort cancels the step; the cancellation goes to cleanup (persisted) and nothing more runs', () => {
    const requested = run(runningStep(), { type: 'abort_requested' })
    expect(requested.actions).toEqual([{ type: 'cancel_step' }])
    expect(requested.machine.state).toBe(step.during)
    const cancelled = run(requested.machine, { type: 'step_cancelled' })
    expect(cancelled.machine.state).toBe('ready_for_cleanup')
    expect(cancelled.machine.outcome).toBe('aborted')
    expect(types(cancelled)).toEqual(['persist'])
    expect(run(cancelled.machine, { type: 'advance' }).actions).toEqual([{ type: 'run_cleanup' }])
    // a step that finished anyway does not carry on after an abort
    const raced = run(requested.machine, { type: 'step_succeeded' })
    expect(raced.machine.state).toBe('ready_for_cleanup')
    expect(raced.machine.outcome).toBe('aborted')
    const failedWhileAborting = run(requested.machine, { type: 'step_failed', message: 'killed' })
    expect(failedWhileAborting.machine.state).toBe('ready_for_cleanup')
    expect(failedWhileAborting.machine.outcome).toBe('aborted')
  })

  test('shutdown cancels the step and halts at the previous stable state, persisted for the restart', () => {
    const requested = run(runningStep(), { type: 'shutdown_requested' })
    expect(requested.actions).toEqual([{ type: 'cancel_step' }])
    const cancelled = run(requested.machine, { type: 'step_cancelled' })
    expect(cancelled.machine.state).toBe(step.from)
    expect(cancelled.machine.halted).toBe(true)
    expect(cancelled.actions).toEqual([{ type: 'persist' }, { type: 'halt' }])
    // a step that completed just before the cancellation keeps its result
    const completed = run(requested.machine, { type: 'step_succeeded' })
    expect(completed.machine.state).toBe(step.to)
    expect(completed.actions).toEqual([{ type: 'persist' }, { type: 'halt' }])
    const failed = run(requested.machine, { type: 'step_failed', message: 'x' })
    expect(failed.machine.state).toBe(step.from)
    expect(failed.actions).toEqual([{ type: 'persist' }, { type: 'halt' }])
  })

  test('a stop request: graceful while training runs, an abort before it, a no-op (wind-down continues) after it', () => {
    const t = run(runningStep(), { type: 'stop_requested' })
    if (step.name === 'run_training') {
      expect(t.actions).toEqual([{ type: 'stop_step_gracefully' }])
      expect(t.machine.stop).toBe('graceful')
    } else if (['prepare', 'download_model'].includes(step.name)) {
      expect(t.actions).toEqual([{ type: 'cancel_step' }])
      expect(t.machine.stop).toBe('abort')
    } else {
      expect(t.actions).toEqual([])
      expect(t.machine.stop).toBe('graceful')
      expect(t.machine.state).toBe(step.during)
    }
  })
})

describe('training state machine: stop, abort and shutdown between steps', () => {
  test('a graceful stop lets the training finish and the uploads run, and ends as "stopped"', () => {
    let t = run(at('train_model_downloaded'), { type: 'advance' }, { type: 'stop_requested' }, { type: 'step_succeeded' })
    expect(t.machine.state).toBe('training_finished')
    for (let i = 0; i < 4; i++) t = run(t.machine, { type: 'advance' }, { type: 'step_succeeded' })
    expect(t.machine.state).toBe('ready_for_cleanup')
    expect(t.machine.outcome).toBe('stopped')
    t = run(t.machine, { type: 'advance' }, { type: 'cleanup_finished' })
    expect(t.actions).toEqual([{ type: 'finish', outcome: 'stopped' }])
  })

  test('a training process that fails after a stop is not restarted: cleanup with the error', () => {
    const t = run(at('train_model_downloaded'), { type: 'advance' }, { type: 'stop_requested' }, { type: 'step_failed', message: 'SIGTERM mid-save' })
    expect(t.machine.state).toBe('ready_for_cleanup')
    expect(t.machine.outcome).toBe('failed')
    expect(t.machine.errors.run_training).toBe('SIGTERM mid-save (after a stop request)')
  })

  test('abort while waiting to retry (a stable state) goes straight to cleanup and cancels the wait', () => {
    const waiting = run(at('data_downloaded'), { type: 'advance' }, { type: 'step_failed', message: 'loop down' }).machine
    expect(waiting.state).toBe('data_downloaded')
    const t = run(waiting, { type: 'abort_requested' })
    expect(t.machine.state).toBe('ready_for_cleanup')
    expect(t.machine.outcome).toBe('aborted')
    expect(t.actions).toEqual([{ type: 'cancel_step' }, { type: 'persist' }])
    expect(t.machine.errors).toEqual({ download_model: 'loop down' })
  })

  test('stop in a stable state before training is an abort; abort twice is one abort', () => {
    const t = run(at('initialized'), { type: 'stop_requested' })
    expect(t.machine.state).toBe('ready_for_cleanup')
    expect(t.machine.outcome).toBe('aborted')
    expect(run(at('running', { stop: 'abort' }), { type: 'abort_requested' }).actions).toEqual([])
  })

  test('stop and abort during cleanup change nothing', () => {
    for (const event of [{ type: 'stop_requested' }, { type: 'abort_requested' }] as TrainingEvent[]) {
      expect(transition(at('ready_for_cleanup', { cleaningUp: true }), event, config).actions).toEqual([])
    }
  })

  test('shutdown in a stable state persists and halts; in cleanup it halts unless the cleanup already runs', () => {
    expect(run(at('training_finished'), { type: 'shutdown_requested' }).actions).toEqual([{ type: 'cancel_step' }, { type: 'persist' }, { type: 'halt' }])
    const notStarted = run(at('ready_for_cleanup'), { type: 'shutdown_requested' })
    expect(notStarted.actions).toEqual([{ type: 'halt' }])
    expect(notStarted.machine.halted).toBe(true)
    const started = run(at('ready_for_cleanup', { cleaningUp: true }), { type: 'shutdown_requested' })
    expect(started.actions).toEqual([])
    expect(run(started.machine, { type: 'cleanup_finished' }).machine.state).toBe('idle')
  })

  test('a critical error during shutdown still goes to cleanup (persisted) and halts', () => {
    const t = run(at('train_model_uploading', { stop: 'shutdown' }), { type: 'critical_error', message: 'rejected' })
    expect(t.machine.state).toBe('ready_for_cleanup')
    expect(types(t)).toEqual(['report_failure', 'persist', 'halt'])
  })
})

describe('training state machine: resume and backoff', () => {
  test('every persisted state maps to a stable state to continue from', () => {
    const expected: Record<TrainerState, TrainerState> = {
      idle: 'ready_for_cleanup',
      initialized: 'initialized',
      preparing: 'initialized',
      data_downloading: 'initialized',
      data_downloaded: 'data_downloaded',
      train_model_downloading: 'data_downloaded',
      train_model_downloaded: 'train_model_downloaded',
      running: 'train_model_downloaded',
      training_finished: 'training_finished',
      confusion_matrix_syncing: 'training_finished',
      confusion_matrix_synced: 'confusion_matrix_synced',
      train_model_uploading: 'confusion_matrix_synced',
      train_model_uploaded: 'train_model_uploaded',
      detecting: 'train_model_uploaded',
      detected: 'detected',
      detection_uploading: 'detected',
      ready_for_cleanup: 'ready_for_cleanup',
    }
    for (const state of TRAINER_STATES) {
      const resumed = resumeState(state)
      expect(resumed.state).toBe(expected[state])
      expect(stepRunningIn(resumed.state)).toBeUndefined()
      expect(resumed.note !== undefined).toBe(resumed.state !== state)
    }
    expect(resumeState('bogus')).toEqual({ state: 'initialized', note: 'unknown training_state "bogus"; starting over from initialized' })
  })

  test('the retry delay grows by the factor and is capped', () => {
    const policy = { maxAttempts: 10, baseDelayMs: 2_000, maxDelayMs: 300_000, factor: 2 }
    expect([1, 2, 3, 4, 8, 9, 50].map((n) => retryDelayMs(n, policy))).toEqual([2_000, 4_000, 8_000, 16_000, 256_000, 300_000, 300_000])
    expect(DEFAULT_MACHINE_CONFIG.retry.maxAttempts).toBeGreaterThan(1)
  })
})
