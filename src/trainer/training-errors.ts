import { ContractError } from '../contract/index.ts'
import { LoopError } from '../loop/loop-error.ts'

/**
 * Errors a training step can throw, and what the state machine makes of them (§8.4):
 * a plain Error is retried (bounded), a CriticalError ends the training in cleanup,
 * a NodeNeedsRestartError ends the process (exit 0) so the training resumes after the restart.
 */

/** The training cannot go on; retrying would not help. The step's error is kept and the training is cleaned up. */
export class CriticalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CriticalError'
  }
}

/** The node must restart (e.g. the GPU is in a bad state); the caller exits with status 0. */
export class NodeNeedsRestartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'NodeNeedsRestartError'
  }
}

/** The training process reported an error or died; a plain (retried) error. String form as upstream. */
export class TrainingError extends Error {
  constructor(readonly causeText: string) {
    super(causeText)
    this.name = 'TrainingError'
  }
  override toString(): string {
    return `TrainingError: ${this.causeText}`
  }
}

/** Downloading images or image data failed in a way that may pass; a plain (retried) error. */
export class DownloadError extends Error {
  constructor(readonly causeText: string, options?: { cause?: unknown }) {
    super(causeText, options)
    this.name = 'DownloadError'
  }
  override toString(): string {
    return `DownloadError: ${this.causeText}`
  }
}

/** A step ended because it was cancelled (abort or shutdown), not because it failed. */
export class StepCancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message)
    this.name = 'StepCancelledError'
  }
}

/** `begin_training` was refused: invalid details, or a training is already active. The caller acks `{success:false}`. */
export class BeginTrainingRejected extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BeginTrainingRejected'
  }
}

/** Throws StepCancelledError when `signal` has fired; steps call this between units of work. */
export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new StepCancelledError(reasonText(signal.reason))
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message
  return typeof reason === 'string' ? reason : 'cancelled'
}

/** Resolves after `ms`, or rejects with StepCancelledError as soon as `signal` fires. */
export function sleepUnlessCancelled(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new StepCancelledError(reasonText(signal.reason)))
    const onAbort = () => {
      clearTimeout(timer)
      reject(new StepCancelledError(reasonText(signal.reason)))
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * True for a failure that the same step would meet again however often it ran: the Loop refused the request
 * itself (a 4xx other than 401, 408 and 429: a missing model, a refused shape), answered with a body that is
 * not the contract shape, or data did not match the contract. Such a step fails the training at once, with that
 * reason; network faults, timeouts, 5xx and rate limits are retried with backoff. Looks through `cause` chains.
 */
export function isPermanentFailure(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth++) {
    if (current instanceof ContractError) return true
    if (current instanceof LoopError) {
      if (current.kind === 'invalid_response' || current.kind === 'missing_file') return true
      const status = current.status
      return current.kind === 'http' && status !== null && status >= 400 && status < 500 && ![401, 408, 429].includes(status)
    }
  }
  return false
}
