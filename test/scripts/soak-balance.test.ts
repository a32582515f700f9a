import { describe, expect, test } from 'bun:test'
import { computeBalance, type AskedUpload, type BalanceInput } from '../../scripts/soak-balance.ts'

// The soak benchmark's image balance: what it calls exact, and what it puts down to a kill.

const asked = (source: string, endedAt: number, outcome: AskedUpload['outcome'] = 'accepted'): AskedUpload =>
  ({ source, route: 'rest /detect', outcome, startedAt: endedAt - 5, endedAt })
const noCounts = { dropped: 0, saveFailures: 0, quarantined: 0, autouploadErrors: 0 }
const input = (overrides: Partial<BalanceInput>): BalanceInput =>
  ({ asked: [], received: new Set(), queued: new Set(), counts: noCounts, kills: [], killLeadMs: 2_000, ...overrides })

describe('soak image balance', () => {
  test('received, queued and counted drops account for every asked image: exact, nothing lost', () => {
    const balance = computeBalance(input({
      asked: [asked('a', 100), asked('b', 200), asked('c', 300), asked('d', 400, 'refused')],
      received: new Set(['a']), queued: new Set(['b']), counts: { ...noCounts, dropped: 2 },
    }))
    expect(balance).toMatchObject({ asked: 4, received: 1, queued: 1, counted: 2, lost: 0, exactOutsideKillWindows: true, unexpected: 0 })
  })

  test('an accepted image missing just before a kill is lost in the kill window; one missing elsewhere breaks exactness', () => {
    const kills = [{ killedAt: 10_000, servingAt: 11_000 }]
    const inWindow = computeBalance(input({ asked: [asked('a', 100), asked('b', 9_500)], received: new Set(['a']), kills }))
    expect(inWindow).toMatchObject({ lost: 1, exactOutsideKillWindows: true })
    expect(inWindow.missingInKillWindows.map((u) => u.source)).toEqual(['b'])
    const elsewhere = computeBalance(input({ asked: [asked('a', 100), asked('b', 5_000)], received: new Set(['a']), kills }))
    expect(elsewhere).toMatchObject({ lost: 1, exactOutsideKillWindows: false })
  })

  test('an image sent into a kill without an answer counts as asked only if it turned up; one at the Loop and still on disk counts once', () => {
    const balance = computeBalance(input({
      asked: [asked('a', 100, 'unknown'), asked('b', 200, 'unknown'), asked('c', 300)],
      received: new Set(['a', 'c', 'stranger']), queued: new Set(['c']),
    }))
    expect(balance).toMatchObject({ asked: 2, unknownNotFound: 1, received: 2, queued: 0, queuedAndReceived: 1, lost: 0, unexpected: 1 })
  })
})
