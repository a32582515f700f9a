import { describe, expect, test } from 'bun:test'
import { AnnotationSessions } from '../../src/annotator/annotation-sessions.ts'

describe('AnnotationSessions', () => {
  test('creates histories lazily, returns the same one on every use, frees it on release', () => {
    let created = 0
    const sessions = new AnnotationSessions(() => ({ n: ++created }))
    const a = sessions.acquire('a', 0)
    expect(sessions.acquire('a', 5)).toBe(a)
    expect(created).toBe(1)
    expect(sessions.size).toBe(1)
    expect(sessions.release('a')).toBe(true)
    expect(sessions.release('a')).toBe(false)
    expect(sessions.acquire('a', 6)).not.toBe(a)
  })

  test('drops sessions idle longer than the timeout; use refreshes the clock', () => {
    const sessions = new AnnotationSessions(() => ({}), { idleTimeoutMs: 1_000 })
    sessions.acquire('old', 0)
    sessions.acquire('busy', 0)
    sessions.acquire('busy', 900)
    expect(sessions.expireIdle(1_000)).toEqual([])
    expect(sessions.expireIdle(1_001)).toEqual(['old'])
    expect(sessions.has('busy')).toBe(true)
    expect(sessions.expireIdle(1_901)).toEqual(['busy'])
    expect(sessions.size).toBe(0)
  })

  test('over the limit the least recently used session goes first', () => {
    const sessions = new AnnotationSessions(() => ({}), { maxSessions: 2 })
    sessions.acquire('a', 0)
    sessions.acquire('b', 1)
    sessions.acquire('a', 2)
    sessions.acquire('c', 3)
    expect([sessions.has('a'), sessions.has('b'), sessions.has('c')]).toEqual([true, false, true])
    expect(sessions.evicted).toBe(1)
    expect(() => new AnnotationSessions(() => ({}), { maxSessions: 0 })).toThrow('maxSessions')
  })
})
