import type { PretrainedModel, TrainingStatus } from '../contract/index.ts'
import { LoopSocketError } from '../loop/loop-error.ts'
import type { LoopSocket } from '../loop/loop-socket.ts'
import { errorMessage, type Logger } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import type { TrainingStatusFields } from './training-supervisor.ts'

/** How long the Loop gets to acknowledge `update_trainer` (§5.3). */
export const UPDATE_TRAINER_TIMEOUT_MS = 30_000
/** Statuses waiting to be sent at most; the oldest are dropped (and counted) beyond it. */
const MAX_PENDING = 100

/** The TrainingStatus of §6.7 / §8.1 send_status. Pure. */
export function buildTrainingStatus(input: {
  id: string
  name: string
  fields: TrainingStatusFields
  architecture: string | null
  pretrainedModels: readonly PretrainedModel[]
}): TrainingStatus {
  const idle = input.fields.state === 'idle'
  return {
    id: input.id,
    name: input.name,
    state: input.fields.state,
    uptime: idle ? null : input.fields.uptime,
    errors: idle ? {} : { ...input.fields.errors },
    progress: idle ? null : input.fields.progress,
    pretrained_models: [...input.pretrainedModels],
    architecture: input.architecture,
    context: idle ? null : input.fields.context,
  }
}

/**
 * Sends `update_trainer` statuses one after another, in the order they were taken, so the Loop sees every
 * state change in order even when several happen within one ack round trip. A status is a snapshot taken
 * when it is queued. Without a connection a status is dropped quietly (upstream: "if not connected, return");
 * a refusal (`{success:false}`), a malformed reply or a timeout is logged and counted.
 */
export class TrainerStatusReporter {
  private chain: Promise<unknown> = Promise.resolve()
  private pending = 0
  private readonly results: ReturnType<MetricsRegistry['counter']> | undefined

  constructor(private readonly options: {
    socket(): LoopSocket | undefined
    log: Logger
    metrics?: MetricsRegistry
    timeoutMs?: number
  }) {
    this.results = options.metrics?.counter('trainer_status_updates_total', 'update_trainer calls by result (ok, not_connected, rejected, ack_timeout, dropped …)')
  }

  /** Queues `status`; resolves with whether the Loop accepted it. */
  send(status: TrainingStatus): Promise<boolean> {
    if (this.pending >= MAX_PENDING) {
      this.results?.inc({ result: 'dropped' })
      this.options.log.warn('too many statuses waiting for the Loop; dropping one', { state: status.state, pending: this.pending })
      return Promise.resolve(false)
    }
    this.pending++
    const sent = this.chain.then(() => this.sendNow(status)).finally(() => this.pending--)
    this.chain = sent
    return sent
  }

  /** Resolves when every queued status has been sent (or given up on), but waits at most `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.chain.catch(() => undefined), new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })])
    clearTimeout(timer)
  }

  private async sendNow(status: TrainingStatus): Promise<boolean> {
    const socket = this.options.socket()
    if (!socket?.connected) {
      this.results?.inc({ result: 'not_connected' })
      this.options.log.debug('status not sent: not connected to the Loop', { state: status.state })
      return false
    }
    try {
      await socket.emitExpectingSuccess('update_trainer', [status], this.options.timeoutMs ?? UPDATE_TRAINER_TIMEOUT_MS)
      this.results?.inc({ result: 'ok' })
      return true
    } catch (error) {
      const kind = error instanceof LoopSocketError ? error.kind : 'error'
      this.results?.inc({ result: kind })
      this.options.log.warn('the Loop did not accept the trainer status', { kind, state: status.state, error: errorMessage(error) })
      return false
    }
  }
}
