/**
 * The part of bun:test's `expect` that the pure modules' tests use, runtime-agnostic, so those tests run
 * unchanged under Deno (test/deno/bun-test-shim.ts maps `bun:test` here). Semantics follow bun:test:
 * `toEqual` compares recursively and ignores properties that are `undefined`; `toMatchObject` checks a
 * recursive subset; `toThrow` accepts a message substring, a RegExp or an Error class.
 * A failed expectation throws an ExpectationError naming the matcher and both values.
 */

export class ExpectationError extends Error {
  override name = 'ExpectationError'
}

function show(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`
  if (value instanceof Error) return `${value.name}: ${value.message}`
  if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`
  try {
    const text = JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `Uint8Array(${v.length})` : v))
    return text === undefined ? String(value) : text.length > 400 ? `${text.slice(0, 400)}…` : text
  } catch {
    return String(value)
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)
    && !(value instanceof Date) && !(value instanceof RegExp) && !(value instanceof Map) && !(value instanceof Set)
}

function definedKeys(object: Record<string, unknown>): string[] {
  return Object.keys(object).filter((key) => object[key] !== undefined)
}

/** Recursive equality in the sense of bun:test's toEqual. */
export function deepEquals(actual: unknown, expected: unknown): boolean {
  if (expected instanceof AsymmetricMatcher) return expected.matches(actual)
  if (Object.is(actual, expected)) return true
  if (typeof actual !== typeof expected || actual === null || expected === null || typeof actual !== 'object') return false
  if (actual instanceof Date || expected instanceof Date) {
    return actual instanceof Date && expected instanceof Date && actual.getTime() === expected.getTime()
  }
  if (actual instanceof RegExp || expected instanceof RegExp) return String(actual) === String(expected)
  if (Array.isArray(actual) || Array.isArray(expected)) {
    if (!Array.isArray(actual) || !Array.isArray(expected) || actual.length !== expected.length) return false
    return actual.every((item, index) => deepEquals(item, expected[index]))
  }
  if (ArrayBuffer.isView(actual) || ArrayBuffer.isView(expected)) {
    if (!ArrayBuffer.isView(actual) || !ArrayBuffer.isView(expected) || actual.constructor !== expected.constructor) return false
    const a = actual as unknown as ArrayLike<unknown>
    const b = expected as unknown as ArrayLike<unknown>
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false
    return true
  }
  if (actual instanceof Map || expected instanceof Map) {
    if (!(actual instanceof Map) || !(expected instanceof Map) || actual.size !== expected.size) return false
    for (const [key, value] of expected) if (!actual.has(key) || !deepEquals(actual.get(key), value)) return false
    return true
  }
  if (actual instanceof Set || expected instanceof Set) {
    if (!(actual instanceof Set) || !(expected instanceof Set) || actual.size !== expected.size) return false
    for (const value of expected) if (![...actual].some((candidate) => deepEquals(candidate, value))) return false
    return true
  }
  const a = actual as Record<string, unknown>
  const b = expected as Record<string, unknown>
  const aKeys = definedKeys(a)
  const bKeys = definedKeys(b)
  if (aKeys.length !== bKeys.length) return false
  return bKeys.every((key) => Object.prototype.hasOwnProperty.call(a, key) && deepEquals(a[key], b[key]))
}

/** Whether `actual` contains `expected` recursively (objects: a subset of keys; arrays: same length, element-wise). */
export function matchesObject(actual: unknown, expected: unknown): boolean {
  if (expected instanceof AsymmetricMatcher) return expected.matches(actual)
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((item, index) => matchesObject(actual[index], item))
  }
  if (isPlainObject(expected)) {
    if (typeof actual !== 'object' || actual === null) return false
    const object = actual as Record<string, unknown>
    return Object.keys(expected).every((key) => matchesObject(object[key], expected[key]))
  }
  return deepEquals(actual, expected)
}

abstract class AsymmetricMatcher {
  abstract matches(actual: unknown): boolean
  abstract toJSON(): string
}

class StringMatching extends AsymmetricMatcher {
  constructor(private readonly pattern: RegExp | string) { super() }
  matches(actual: unknown): boolean {
    return typeof actual === 'string' && (typeof this.pattern === 'string' ? actual.includes(this.pattern) : this.pattern.test(actual))
  }
  toJSON(): string { return `StringMatching ${String(this.pattern)}` }
}

class ObjectContaining extends AsymmetricMatcher {
  constructor(private readonly subset: Record<string, unknown>) { super() }
  matches(actual: unknown): boolean { return matchesObject(actual, this.subset) }
  toJSON(): string { return `ObjectContaining ${show(this.subset)}` }
}

class AnyOf extends AsymmetricMatcher {
  constructor(private readonly type: unknown) { super() }
  matches(actual: unknown): boolean {
    if (this.type === String) return typeof actual === 'string'
    if (this.type === Number) return typeof actual === 'number'
    if (this.type === Boolean) return typeof actual === 'boolean'
    return typeof this.type === 'function' && actual instanceof (this.type as new (...args: never[]) => unknown)
  }
  toJSON(): string { return `Any<${(this.type as { name?: string }).name ?? '?'}>` }
}

class Anything extends AsymmetricMatcher {
  matches(actual: unknown): boolean { return actual !== null && actual !== undefined }
  toJSON(): string { return 'Anything' }
}

type ThrowExpectation = string | RegExp | (new (...args: never[]) => Error) | Error | undefined

function thrownBy(thunk: unknown): { threw: boolean; error?: unknown } {
  if (typeof thunk !== 'function') throw new ExpectationError('toThrow needs a function to call')
  try {
    thunk()
    return { threw: false }
  } catch (error) {
    return { threw: true, error }
  }
}

function throwMatches(error: unknown, expected: ThrowExpectation): boolean {
  if (expected === undefined) return true
  const message = error instanceof Error ? error.message : String(error)
  if (typeof expected === 'string') return message.includes(expected)
  if (expected instanceof RegExp) return expected.test(message)
  if (expected instanceof Error) return message === expected.message
  return error instanceof expected
}

export interface Matchers {
  toBe(expected: unknown): void
  toEqual(expected: unknown): void
  toStrictEqual(expected: unknown): void
  toMatchObject(expected: unknown): void
  toBeCloseTo(expected: number, digits?: number): void
  toBeDefined(): void
  toBeUndefined(): void
  toBeNull(): void
  toBeTruthy(): void
  toBeFalsy(): void
  toBeGreaterThan(expected: number): void
  toBeGreaterThanOrEqual(expected: number): void
  toBeLessThan(expected: number): void
  toBeLessThanOrEqual(expected: number): void
  toBeInstanceOf(expected: new (...args: never[]) => unknown): void
  toContain(expected: unknown): void
  toHaveLength(expected: number): void
  toMatch(expected: string | RegExp): void
  toThrow(expected?: ThrowExpectation): void
}

function matchers(actual: unknown, negated: boolean): Matchers {
  const check = (pass: boolean, what: string, ...expected: unknown[]) => {
    if (pass === negated) {
      const detail = expected.length > 0 ? show(expected[0]) : ''
      throw new ExpectationError(`expect(${show(actual)}).${negated ? 'not.' : ''}${what}(${detail}) failed`)
    }
  }
  const number = (what: string) => {
    if (typeof actual !== 'number' && typeof actual !== 'bigint') throw new ExpectationError(`${what}: ${show(actual)} is not a number`)
    return actual as number
  }
  return {
    toBe: (expected) => check(Object.is(actual, expected), 'toBe', expected),
    toEqual: (expected) => check(deepEquals(actual, expected), 'toEqual', expected),
    toStrictEqual: (expected) => check(deepEquals(actual, expected), 'toStrictEqual', expected),
    toMatchObject: (expected) => check(matchesObject(actual, expected), 'toMatchObject', expected),
    toBeCloseTo: (expected, digits = 2) => check(Math.abs(number('toBeCloseTo') - expected) < 10 ** -digits / 2, 'toBeCloseTo', expected),
    toBeDefined: () => check(actual !== undefined, 'toBeDefined'),
    toBeUndefined: () => check(actual === undefined, 'toBeUndefined'),
    toBeNull: () => check(actual === null, 'toBeNull'),
    toBeTruthy: () => check(Boolean(actual), 'toBeTruthy'),
    toBeFalsy: () => check(!actual, 'toBeFalsy'),
    toBeGreaterThan: (expected) => check(number('toBeGreaterThan') > expected, 'toBeGreaterThan', expected),
    toBeGreaterThanOrEqual: (expected) => check(number('toBeGreaterThanOrEqual') >= expected, 'toBeGreaterThanOrEqual', expected),
    toBeLessThan: (expected) => check(number('toBeLessThan') < expected, 'toBeLessThan', expected),
    toBeLessThanOrEqual: (expected) => check(number('toBeLessThanOrEqual') <= expected, 'toBeLessThanOrEqual', expected),
    toBeInstanceOf: (expected) => check(actual instanceof expected, 'toBeInstanceOf', expected),
    toContain: (expected) => check(
      typeof actual === 'string' ? actual.includes(String(expected)) : Array.isArray(actual) ? actual.some((item) => Object.is(item, expected)) : false,
      'toContain', expected,
    ),
    toHaveLength: (expected) => check((actual as { length?: unknown } | null)?.length === expected, 'toHaveLength', expected),
    toMatch: (expected) => check(typeof actual === 'string' && (typeof expected === 'string' ? actual.includes(expected) : expected.test(actual)), 'toMatch', expected),
    toThrow: (expected) => {
      const { threw, error } = thrownBy(actual)
      const pass = threw && throwMatches(error, expected)
      if (pass === negated) {
        const got = threw ? `it threw ${show(error)}` : 'it did not throw'
        throw new ExpectationError(`expect(fn).${negated ? 'not.' : ''}toThrow(${expected === undefined ? '' : show(expected instanceof Function ? expected.name : expected)}) failed: ${got}`)
      }
    },
  }
}

export interface Expect {
  (actual: unknown): Matchers & { not: Matchers }
  stringMatching(pattern: RegExp | string): unknown
  objectContaining(subset: Record<string, unknown>): unknown
  any(type: unknown): unknown
  anything(): unknown
}

export const expect: Expect = Object.assign(
  (actual: unknown) => Object.assign(matchers(actual, false), { not: matchers(actual, true) }),
  {
    stringMatching: (pattern: RegExp | string) => new StringMatching(pattern),
    objectContaining: (subset: Record<string, unknown>) => new ObjectContaining(subset),
    any: (type: unknown) => new AnyOf(type),
    anything: () => new Anything(),
  },
)
