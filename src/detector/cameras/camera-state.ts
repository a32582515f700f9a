import type { CameraPhase } from '../../contract/index.ts'
import { backoffDelayMs, type BackoffPolicy } from '../../foundation/backoff.ts'

/**
 * The life of one camera connection, pure: `connecting` (ffmpeg started, no frame yet) → `streaming` (frames
 * arrive) → `stalled` (the connection failed, ended, or sent nothing for too long; waiting for the retry) →
 * `connecting` … The retry waits a jittered, growing delay; the first frame of a connection resets it.
 */
export interface CameraTimings {
  /** a streaming camera with no frame for this long is stalled */
  stallAfterMs: number
  /** a connection with no first frame after this long is stalled */
  connectTimeoutMs: number
  backoff: BackoffPolicy
}

export const DEFAULT_CAMERA_TIMINGS: CameraTimings = {
  stallAfterMs: 5_000,
  connectTimeoutMs: 15_000,
  backoff: { initialMs: 1_000, maxMs: 30_000, jitter: 'equal' },
}

export interface CameraState {
  phase: CameraPhase
  /** failed connections since the last frame: the backoff's retry number */
  failures: number
  /** connections after the first */
  reconnects: number
  connections: number
  error: string | null
  /** when the phase began, epoch ms */
  since: number
  retryAt: number | null
  lastFrameAt: number | null
}

export type CameraEvent =
  | { type: 'connect'; at: number }
  | { type: 'frame'; at: number }
  | { type: 'lost'; at: number; reason: string }
  | { type: 'disable'; at: number }

export function initialCameraState(at: number, enabled: boolean): CameraState {
  return { phase: enabled ? 'stalled' : 'disabled', failures: 0, reconnects: 0, connections: 0, error: null, since: at, retryAt: enabled ? at : null, lastFrameAt: null }
}

export function nextCameraState(state: CameraState, event: CameraEvent, timings: CameraTimings, random: () => number = Math.random): CameraState {
  switch (event.type) {
    case 'connect':
      return {
        ...state, phase: 'connecting', since: event.at, retryAt: null,
        connections: state.connections + 1, reconnects: state.connections > 0 ? state.reconnects + 1 : state.reconnects,
      }
    case 'frame':
      if (state.phase === 'streaming') return { ...state, lastFrameAt: event.at }
      if (state.phase !== 'connecting') return state // a frame of a connection already given up
      return { ...state, phase: 'streaming', since: event.at, failures: 0, error: null, lastFrameAt: event.at }
    case 'lost': {
      if (state.phase === 'stalled' || state.phase === 'disabled') return state
      const delay = backoffDelayMs(state.failures, timings.backoff, random)
      return { ...state, phase: 'stalled', since: event.at, failures: state.failures + 1, error: event.reason, retryAt: event.at + delay }
    }
    case 'disable':
      return { ...state, phase: 'disabled', since: event.at, retryAt: null }
  }
}

/** Why the watchdog gives up on the connection now, or undefined while it is fine. */
export function watchdogVerdict(state: CameraState, now: number, timings: CameraTimings): string | undefined {
  if (state.phase === 'connecting' && now - state.since >= timings.connectTimeoutMs) {
    return `no frame within ${seconds(timings.connectTimeoutMs)} of connecting`
  }
  if (state.phase === 'streaming' && state.lastFrameAt !== null && now - state.lastFrameAt >= timings.stallAfterMs) {
    return `no frame for ${seconds(timings.stallAfterMs)}`
  }
  return undefined
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`
