import { describe, expect, test } from 'bun:test'
import { decideRateLimitRetry, DEFAULT_RATE_LIMIT_POLICY, parseRetryAfter } from '../../src/loop/retry-policy.ts'

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
