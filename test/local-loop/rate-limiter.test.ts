import { describe, expect, test } from 'bun:test'
import { RateLimiter } from '../../src/local-loop/rate-limiter.ts'

describe('RateLimiter (token bucket per client)', () => {
  test('allows a burst, then refuses with a Retry-After in whole seconds', () => {
    const limiter = new RateLimiter({ perSecond: 2, burst: 3 })
    expect([0, 0, 0].map(() => limiter.take('a', 1_000).allowed)).toEqual([true, true, true])
    const refused = limiter.take('a', 1_000)
    expect(refused).toEqual({ allowed: false, retryAfterSeconds: 1 })
  })

  test('refills at the configured rate', () => {
    const limiter = new RateLimiter({ perSecond: 2, burst: 1 })
    expect(limiter.take('a', 0).allowed).toBe(true)
    expect(limiter.take('a', 100).allowed).toBe(false)
    // 0.5 s at 2/s brings one token back
    expect(limiter.take('a', 600).allowed).toBe(true)
    expect(limiter.take('a', 600).allowed).toBe(false)
  })

  test('slow rates ask for longer waits', () => {
    const limiter = new RateLimiter({ perSecond: 0.25, burst: 1 })
    expect(limiter.take('a', 0).allowed).toBe(true)
    expect(limiter.take('a', 0)).toEqual({ allowed: false, retryAfterSeconds: 4 })
  })

  test('clients have separate buckets', () => {
    const limiter = new RateLimiter({ perSecond: 1 })
    expect(limiter.take('a', 0).allowed).toBe(true)
    expect(limiter.take('a', 0).allowed).toBe(false)
    expect(limiter.take('b', 0).allowed).toBe(true)
  })

  test('refuses nonsense limits', () => {
    expect(() => new RateLimiter({ perSecond: 0 })).toThrow('positive')
    expect(() => new RateLimiter({ perSecond: Number.NaN })).toThrow('positive')
  })
})
