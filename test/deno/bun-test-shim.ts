/**
 * `bun:test` for Deno: deno.json maps the specifier here, so the pure modules' test files run unchanged with
 * `deno test`. `describe` only prefixes names (and runs its body at once, as bun:test does); every `test`
 * becomes one `Deno.test`. Hooks run around each test of their describe block (and its children).
 */
import { expect } from './expectations.ts'

export { expect }

type TestFunction = () => void | Promise<void>
type Hook = () => void | Promise<void>

interface Scope {
  names: string[]
  beforeEach: Hook[]
  afterEach: Hook[]
}

declare const Deno: {
  test(options: { name: string; fn: () => Promise<void>; ignore?: boolean; sanitizeOps?: boolean; sanitizeResources?: boolean }): void
}

const scopes: Scope[] = [{ names: [], beforeEach: [], afterEach: [] }]
const current = () => scopes[scopes.length - 1]!

function format(title: string, values: readonly unknown[]): string {
  let index = 0
  return title.replace(/%[sdipfjo#%]/g, (token) => {
    if (token === '%%') return '%'
    if (token === '%#') return String(index)
    const value = values[index++]
    return token === '%j' || token === '%o' ? JSON.stringify(value) : String(value)
  })
}

function register(name: string, fn: TestFunction, ignore = false): void {
  const chain = [...scopes]
  const fullName = [...current().names, name].join(' > ')
  Deno.test({
    name: fullName,
    ignore,
    // bun:test does not check for leaked timers or handles per test; the pure modules start none anyway
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      for (const scope of chain) for (const hook of scope.beforeEach) await hook()
      try {
        await fn()
      } finally {
        for (const scope of [...chain].reverse()) for (const hook of scope.afterEach) await hook()
      }
    },
  })
}

function describeBlock(name: string, body: () => void): void {
  scopes.push({ names: [...current().names, name], beforeEach: [], afterEach: [] })
  try {
    body()
  } finally {
    scopes.pop()
  }
}

type Each = <Row extends readonly unknown[] | unknown>(rows: readonly Row[]) => (title: string, fn: (...args: Row extends readonly unknown[] ? Row : [Row]) => void | Promise<void>) => void

function eachOf(run: (name: string, fn: () => void | Promise<void>) => void): Each {
  return (rows) => (title, fn) => {
    rows.forEach((row) => {
      const args = (Array.isArray(row) ? row : [row]) as unknown[]
      run(format(title, args), () => (fn as (...a: unknown[]) => void | Promise<void>)(...args))
    })
  }
}

export const test = Object.assign((name: string, fn: TestFunction, _timeout?: number) => register(name, fn), {
  skip: (name: string, fn: TestFunction) => register(name, fn, true),
  todo: (name: string, fn: TestFunction = () => {}) => register(name, fn, true),
  only: (name: string, fn: TestFunction) => register(name, fn),
  skipIf: (condition: boolean) => (name: string, fn: TestFunction) => register(name, fn, condition),
  if: (condition: boolean) => (name: string, fn: TestFunction) => register(name, fn, !condition),
  each: eachOf((name, fn) => register(name, fn)),
})
export const it = test

export const describe = Object.assign((name: string, body: () => void) => describeBlock(name, body), {
  skip: (name: string, _body: () => void) => register(`${name} (skipped)`, () => {}, true),
  only: (name: string, body: () => void) => describeBlock(name, body),
  each: eachOf((name, body) => describeBlock(name, body as () => void)),
})

export function beforeEach(hook: Hook): void {
  current().beforeEach.push(hook)
}

export function afterEach(hook: Hook): void {
  current().afterEach.push(hook)
}

/** bun:test's beforeAll/afterAll: in a pure test file they set up plain data, so run them at registration. */
export function beforeAll(hook: Hook): void {
  const result = hook()
  if (result instanceof Promise) throw new Error('async beforeAll is not supported by the Deno shim: the pure modules\' tests need no I/O')
}

export function afterAll(_hook: Hook): void {}

export function setDefaultTimeout(_ms: number): void {}
