/**
 * Delays between retries, pure so they are testable without servers and clocks.
 * `random` is injectable: tests pass a fixed value to make the schedule deterministic.
 */
export interface BackoffPolicy {
  /** delay cap of the first retry */
  initialMs: number
  /** no delay is ever longer than this */
  maxMs: number
  /**
   * `full`: uniform in [0, cap] — spreads a herd of clients best (socket reconnects);
   * `equal`: uniform in [cap/2, cap] — never retries almost at once (429 answers).
   */
  jitter: 'full' | 'equal'
  /** floor after jitter (default 0): bounds the attempt rate even when the random draw is near zero */
  minMs?: number
}

/** Delay before retry number `retry` (0 = the first retry): exponential cap, then jitter. */
export function backoffDelayMs(retry: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, retry), 30)
  const cap = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent)
  const r = Math.min(1, Math.max(0, random()))
  const jittered = policy.jitter === 'full' ? cap * r : cap / 2 + (cap / 2) * r
  return Math.round(Math.max(policy.minMs ?? 0, jittered))
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Returns undefined when absent or unreadable; a date in the past is 0.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  const text = value?.trim()
  if (!text) return undefined
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000)
  // an HTTP date always names a weekday/month; bare numbers like "-3" would otherwise parse as years
  const at = /[a-z]/i.test(text) ? Date.parse(text) : NaN
  if (!Number.isFinite(at)) return undefined
  return Math.max(0, at - nowMs)
}

export interface RateLimitPolicy extends BackoffPolicy {
  /** retries after a 429 before giving up (the first request is not counted) */
  maxRetries: number
  /** total time spent waiting on 429s for one call, Retry-After included */
  maxTotalDelayMs: number
}

export const DEFAULT_RATE_LIMIT_POLICY: RateLimitPolicy = {
  initialMs: 1_000,
  maxMs: 30_000,
  jitter: 'equal',
  maxRetries: 8,
  maxTotalDelayMs: 120_000,
}

export type RateLimitDecision = { retry: true; delayMs: number } | { retry: false; reason: string }

/**
 * What to do after the `retriesSoFar`+1-th 429 of one call. The server's Retry-After is honoured exactly;
 * without it the delay is exponential with jitter. Gives up when the retry count or the total wait
 * budget would be exceeded — a Retry-After longer than the remaining budget gives up at once.
 */
export function decideRateLimitRetry(input: {
  retriesSoFar: number
  waitedMs: number
  retryAfterMs: number | undefined
  policy: RateLimitPolicy
  random?: () => number
}): RateLimitDecision {
  const { retriesSoFar, waitedMs, retryAfterMs, policy } = input
  if (retriesSoFar >= policy.maxRetries) {
    return { retry: false, reason: `still rate limited after ${retriesSoFar} retries` }
  }
  const delayMs = retryAfterMs ?? backoffDelayMs(retriesSoFar, policy, input.random)
  if (waitedMs + delayMs > policy.maxTotalDelayMs) {
    const asked = retryAfterMs !== undefined ? ` (Retry-After asks for ${Math.ceil(retryAfterMs / 1000)} s)` : ''
    return { retry: false, reason: `waiting ${delayMs} ms more would exceed the ${policy.maxTotalDelayMs} ms budget${asked}` }
  }
  return { retry: true, delayMs }
}
