/** The Deno stand-in for bun:test's expect must fail where bun:test fails, or the Deno run proves nothing. */
import { describe, expect as bunExpect, test } from 'bun:test'
import { deepEquals, ExpectationError, expect, matchesObject } from './expectations.ts'

const fails = (check: () => void) => bunExpect(check).toThrow(ExpectationError)
const passes = (check: () => void) => bunExpect(check).not.toThrow()

describe('equality as bun:test defines it', () => {
  test('toEqual ignores undefined properties but not missing or different values', () => {
    bunExpect(deepEquals({ a: 1, b: undefined }, { a: 1 })).toBe(true)
    bunExpect(deepEquals({ a: 1 }, { a: 1, b: 2 })).toBe(false)
    bunExpect(deepEquals([1, [2, { c: 3 }]], [1, [2, { c: 3 }]])).toBe(true)
    bunExpect(deepEquals([1, 2], [1, 2, 3])).toBe(false)
    bunExpect(deepEquals(new Float32Array([1, 2]), new Float32Array([1, 2]))).toBe(true)
    bunExpect(deepEquals(new Float32Array([1, 2]), new Float64Array([1, 2]))).toBe(false)
    bunExpect(deepEquals(new Map([[1, { a: 1 }]]), new Map([[1, { a: 1 }]]))).toBe(true)
    bunExpect(deepEquals(new Set([1]), new Set([2]))).toBe(false)
    bunExpect(deepEquals(NaN, NaN)).toBe(true)
    bunExpect(deepEquals(null, {})).toBe(false)
  })

  test('toMatchObject: a recursive subset; arrays element-wise with the same length', () => {
    bunExpect(matchesObject({ a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } })).toBe(true)
    bunExpect(matchesObject({ a: 1 }, { a: 2 })).toBe(false)
    bunExpect(matchesObject({ list: [{ a: 1, b: 2 }] }, { list: [{ a: 1 }] })).toBe(true)
    bunExpect(matchesObject({ list: [{ a: 1 }, { a: 2 }] }, { list: [{ a: 1 }] })).toBe(false)
  })
})

describe('every matcher passes and fails, and .not inverts it', () => {
  test('values', () => {
    passes(() => expect(1).toBe(1)); fails(() => expect(1).toBe(2)); fails(() => expect({}).toBe({}))
    passes(() => expect(1).not.toBe(2)); fails(() => expect(1).not.toBe(1))
    passes(() => expect({ a: [1] }).toEqual({ a: [1] })); fails(() => expect({ a: [1] }).toEqual({ a: [2] }))
    passes(() => expect({ a: 1, b: 2 }).toMatchObject({ a: 1 })); fails(() => expect({ a: 1 }).toMatchObject({ b: 1 }))
    passes(() => expect(undefined).toBeUndefined()); fails(() => expect(0).toBeUndefined())
    passes(() => expect(0).toBeDefined()); fails(() => expect(undefined).toBeDefined())
    passes(() => expect(new RangeError('x')).toBeInstanceOf(Error)); fails(() => expect({}).toBeInstanceOf(Error))
    passes(() => expect([1, 2]).toContain(2)); fails(() => expect([1, 2]).toContain(3))
    passes(() => expect('abc').toContain('b')); fails(() => expect('abc').toContain('d'))
    passes(() => expect([1, 2]).toHaveLength(2)); fails(() => expect([1, 2]).toHaveLength(3))
    passes(() => expect('abc').toMatch(/b/)); fails(() => expect('abc').toMatch(/d/))
  })

  test('numbers', () => {
    passes(() => expect(0.1 + 0.2).toBeCloseTo(0.3)); fails(() => expect(0.31).toBeCloseTo(0.3))
    passes(() => expect(0.3001).toBeCloseTo(0.3, 3)); fails(() => expect(0.301).toBeCloseTo(0.3, 3))
    passes(() => expect(2).toBeGreaterThan(1)); fails(() => expect(1).toBeGreaterThan(1))
    passes(() => expect(1).toBeGreaterThanOrEqual(1)); fails(() => expect(0).toBeGreaterThanOrEqual(1))
    passes(() => expect(1).toBeLessThan(2)); fails(() => expect(2).toBeLessThan(2))
    fails(() => expect('1').toBeGreaterThan(0))
  })

  test('toThrow: any error, a message substring, a RegExp, an Error class', () => {
    const boom = () => { throw new RangeError('the port is out of range') }
    passes(() => expect(boom).toThrow()); fails(() => expect(() => {}).toThrow())
    passes(() => expect(boom).toThrow('out of range')); fails(() => expect(boom).toThrow('in range!'))
    passes(() => expect(boom).toThrow(/port/)); fails(() => expect(boom).toThrow(/host/))
    passes(() => expect(boom).toThrow(RangeError)); fails(() => expect(boom).toThrow(TypeError))
    passes(() => expect(() => {}).not.toThrow()); fails(() => expect(boom).not.toThrow())
  })

  test('asymmetric matchers inside toEqual', () => {
    passes(() => expect({ id: 'abc-1' }).toEqual({ id: expect.stringMatching(/^abc-\d$/) }))
    fails(() => expect({ id: 'xyz' }).toEqual({ id: expect.stringMatching(/^abc/) }))
    passes(() => expect([{ a: 1, b: 2 }]).toEqual([expect.objectContaining({ a: 1 })]))
    fails(() => expect([{ a: 1 }]).toEqual([expect.objectContaining({ a: 2 })]))
    passes(() => expect({ n: 3 }).toEqual({ n: expect.any(Number) })); fails(() => expect({ n: '3' }).toEqual({ n: expect.any(Number) }))
  })
})
