import { describe, expect, test } from 'bun:test'
import { CookieJar, parseSetCookie } from '../../src/loop/cookie-jar.ts'

describe('parseSetCookie', () => {
  test('reads name, value and ignores path/domain/flags', () => {
    expect(parseSetCookie('session=abc123; Path=/; HttpOnly; SameSite=Lax')).toEqual({ name: 'session', value: 'abc123', expiresAt: undefined })
  })
  test('strips quotes and keeps = inside the value', () => {
    expect(parseSetCookie('token="a=b=c"; Secure')?.value).toBe('a=b=c')
  })
  test('Max-Age wins over Expires', () => {
    const now = Date.UTC(2030, 0, 1)
    expect(parseSetCookie('s=1; Expires=Wed, 01 Jan 2031 00:00:00 GMT; Max-Age=10', now)?.expiresAt).toBe(now + 10_000)
    expect(parseSetCookie('s=1; Max-Age=10; Expires=Wed, 01 Jan 2031 00:00:00 GMT', now)?.expiresAt).toBe(now + 10_000)
  })
  test('rejects values without a name', () => {
    expect(parseSetCookie('=abc')).toBeUndefined()
    expect(parseSetCookie('novalue')).toBeUndefined()
  })
})

describe('CookieJar', () => {
  test('builds the Cookie header from stored cookies and replaces by name', () => {
    const jar = new CookieJar()
    jar.store(['a=1; Path=/', 'b=2'])
    jar.store(['a=3'])
    expect(jar.header()).toBe('a=3; b=2')
    expect(jar.size()).toBe(2)
  })
  test('Max-Age=0 and past Expires delete a cookie (logout)', () => {
    const jar = new CookieJar()
    jar.store(['a=1', 'b=2', 'c=3'])
    jar.store(['a=; Max-Age=0', 'b=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT'])
    expect(jar.header()).toBe('c=3')
  })
  test('expired cookies are not sent', () => {
    const jar = new CookieJar()
    const now = 1_000_000
    jar.store(['a=1; Max-Age=5'], now)
    expect(jar.header(now + 4_000)).toBe('a=1')
    expect(jar.header(now + 6_000)).toBe('')
    expect(jar.size(now + 6_000)).toBe(0)
  })
  test('clear empties the jar', () => {
    const jar = new CookieJar()
    jar.store(['a=1'])
    jar.clear()
    expect(jar.header()).toBe('')
  })
})
