/**
 * The Loop client's retry decisions (HTTP 429 and Retry-After), pure so they are testable without servers and
 * clocks. The delay schedule itself is foundation/backoff.ts.
 */
import { backoffDelayMs, type BackoffPolicy } from '../foundation/backoff.ts'

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
