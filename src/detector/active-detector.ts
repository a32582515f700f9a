import type { DetectorLogic } from './detector-logic.ts'

/** Detections asked for while no model can serve them; REST answers 503, socket.io `{error}`. */
export class DetectorUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DetectorUnavailableError'
  }
}

type State =
  | { kind: 'initializing' }
  | { kind: 'updating'; version: string }
  | { kind: 'active'; logic: DetectorLogic }

/**
 * The model that serves detections (§7.2: Initializing / Updating / Active) with zero-downtime swaps:
 * requests pin the logic they started on, a swap points new requests at the new logic at once, and the old
 * one is disposed only when its last in-flight request has finished.
 */
export class ActiveDetector {
  private state: State = { kind: 'initializing' }
  /** after close(): a build that finishes late is freed at once instead of serving */
  private closed = false
  private readonly inFlight = new Map<DetectorLogic, number>()
  private readonly drained = new Map<DetectorLogic, () => void>()

  get logic(): DetectorLogic | undefined {
    return this.state.kind === 'active' ? this.state.logic : undefined
  }
  get updatingTo(): string | undefined {
    return this.state.kind === 'updating' ? this.state.version : undefined
  }
  get version(): string | undefined {
    return this.logic?.modelInfo.version
  }

  /** Runs `work` on the current logic; that logic stays alive until `work` settles, even across a swap. */
  async use<T>(work: (logic: DetectorLogic) => Promise<T>): Promise<T> {
    const state = this.state
    if (state.kind === 'initializing') throw new DetectorUnavailableError('detector not yet initialized')
    if (state.kind === 'updating') throw new DetectorUnavailableError(`updating model to version ${state.version}`)
    const logic = state.logic
    this.inFlight.set(logic, (this.inFlight.get(logic) ?? 0) + 1)
    try {
      return await work(logic)
    } finally {
      const left = (this.inFlight.get(logic) ?? 1) - 1
      if (left > 0) this.inFlight.set(logic, left)
      else {
        this.inFlight.delete(logic)
        this.drained.get(logic)?.()
      }
    }
  }

  /** Switches to `next` atomically; resolves once the previous logic has drained and been disposed. */
  async swap(next: DetectorLogic): Promise<void> {
    if (this.closed) return next.dispose()
    const previous = this.logic
    this.state = { kind: 'active', logic: next }
    if (previous && previous !== next) await this.retire(previous)
  }

  /** EXCLUSIVE_MODEL_BUILD: stop serving, drain and free the old model before the new one is built. */
  async clearForUpdate(version: string): Promise<void> {
    if (this.closed) return
    const previous = this.logic
    this.state = { kind: 'updating', version }
    if (previous) await this.retire(previous)
  }

  /** An exclusive update failed: nothing serves until the next build succeeds. */
  markInitializing(): void {
    if (this.state.kind === 'updating') this.state = { kind: 'initializing' }
  }

  /**
   * Shutdown: stop serving and dispose the current model after its requests finished, or after `drainMs`
   * when some never do (disposing then fails them). Resolves with the number of requests cut off.
   */
  async close(drainMs = Number.POSITIVE_INFINITY): Promise<number> {
    const previous = this.logic
    this.closed = true
    this.state = { kind: 'initializing' }
    return previous ? this.retire(previous, drainMs) : 0
  }

  private async retire(logic: DetectorLogic, drainMs = Number.POSITIVE_INFINITY): Promise<number> {
    if ((this.inFlight.get(logic) ?? 0) > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined
      await new Promise<void>((resolve) => {
        this.drained.set(logic, resolve)
        if (Number.isFinite(drainMs)) timer = setTimeout(resolve, Math.max(0, drainMs))
      })
      clearTimeout(timer)
      this.drained.delete(logic)
    }
    const cutOff = this.inFlight.get(logic) ?? 0
    await logic.dispose()
    return cutOff
  }
}
