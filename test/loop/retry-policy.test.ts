import { describe, expect, test } from 'bun:test'
import { backoffDelayMs, decideRateLimitRetry, DEFAULT_RATE_LIMIT_POLICY, parseRetryAfter } from '../../src/loop/retry-policy.ts'

describe('backoffDelayMs', () => {
  const full = { initialMs: 1_000, maxMs: 30_000, jitter: 'full' as const }
  test('full jitter: uniform below a cap that doubles up to the maximum', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelayMs(n, full, () => 1))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000])
    expect(backoffDelayMs(3, full, () => 0)).toBe(0)
    expect(backoffDelayMs(3, full, () => 0.5)).toBe(4_000)
  })
  test('equal jitter never goes below half the cap', () => {
    const equal = { ...full, jitter: 'equal' as const }
    expect(backoffDelayMs(2, equal, () => 0)).toBe(2_000)
    expect(backoffDelayMs(2, equal, () => 1)).toBe(4_000)
  })
  test('a floor bounds the attempt rate even for a zero draw', () => {
    expect(backoffDelayMs(0, { ...full, minMs: 250 }, () => 0)).toBe(250)
    expect(backoffDelayMs(4, { ...full, minMs: 250 }, () => 1)).toBe(16_000)
  })
  test('huge retry numbers do not overflow', () => {
    expect(backoffDelayMs(10_000, full, () => 1)).toBe(30_000)
  })
})

describe('parseRetryAfter', () => {
  const now = Date.UTC(2030, 5, 1, 12, 0, 0)
  test('delta seconds', () => {
    expect(parseRetryAfter('3', now)).toBe(3_000)
    expect(parseRetryAfter(' 0 ', now)).toBe(0)
    expect(parseRetryAfter('1.5', now)).toBe(1_500)
  })
  test('HTTP date, relative to now; past dates are 0', () => {
    expect(parseRetryAfter(new Date(now + 7_000).toUTCString(), now)).toBe(7_000)
    expect(parseRetryAfter(new Date(now - 7_000).toUTCString(), now)).toBe(0)
  })
  test('absent or unreadable', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined()
    expect(parseRetryAfter('', now)).toBeUndefined()
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter('-3', now)).toBeUndefined()
  })
})

describe('decideRateLimitRetry', () => {
  const policy = { ...DEFAULT_RATE_LIMIT_POLICY, maxRetries: 3, maxTotalDelayMs: 10_000 }
  test('honours Retry-After exactly', () => {
    expect(decideRateLimitRetry({ retriesSoFar: 0, waitedMs: 0, retryAfterMs: 2_500, policy })).toEqual({ retry: true, delayMs: 2_500 })
  })
  test('without Retry-After uses jittered exponential backoff', () => {
    expect(decideRateLimitRetry({ retriesSoFar: 1, waitedMs: 0, retryAfterMs: undefined, policy, random: () => 1 })).toEqual({ retry: true, delayMs: 2_000 })
  })
  test('gives up after maxRetries', () => {
    const decision = decideRateLimitRetry({ retriesSoFar: 3, waitedMs: 0, retryAfterMs: 1, policy })
    expect(decision.retry).toBe(false)
    if (!decision.retry) expect(decision.reason).toContain('3 retries')
  })
  test('gives up at once when Retry-After exceeds the remaining budget', () => {
    const decision = decideRateLimitRetry({ retriesSoFar: 1, waitedMs: 4_000, retryAfterMs: 7_000, policy })
    expect(decision.retry).toBe(false)
    if (!decision.retry) expect(decision.reason).toContain('Retry-After asks for 7 s')
  })
})
