import { describe, expect, test } from 'bun:test'
import { backoffDelayMs } from '../../src/foundation/backoff.ts'

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
  test('without jitter the delay is the cap itself, with the given growth factor', () => {
    expect([0, 1, 2, 3, 9].map((n) => backoffDelayMs(n, { initialMs: 1_000, maxMs: 30_000 }))).toEqual([1_000, 2_000, 4_000, 8_000, 30_000])
    expect([0, 1, 2, 3].map((n) => backoffDelayMs(n, { initialMs: 1_000, maxMs: 30_000, factor: 3 }))).toEqual([1_000, 3_000, 9_000, 27_000])
    expect(backoffDelayMs(-5, { initialMs: 1_000, maxMs: 30_000 })).toBe(1_000)
  })
  test('an infinite maximum leaves the delay uncapped; a zero start stays zero', () => {
    expect(backoffDelayMs(20, { initialMs: 1, maxMs: Infinity })).toBe(2 ** 20)
    expect(backoffDelayMs(5_000, { initialMs: 0, maxMs: 30_000 })).toBe(0)
  })
  test('the delay is whole milliseconds', () => {
    expect(backoffDelayMs(1, { initialMs: 1.3, maxMs: 100 })).toBe(3)
    expect(backoffDelayMs(1, { initialMs: 1_000, maxMs: 30_000, jitter: 'full' }, () => 0.3333)).toBe(667)
  })
})
