/** The soak benchmark's progress lines (stderr) and final report (stdout); see scripts/soak.ts. */
import type { ProcessSample } from './process-sample.ts'
import { drift, windowStats, type Drift, type ResourceSample, type WindowStats } from './soak-resources.ts'
import { readCounters, sumCounters, type LifeCounters, type SoakDetectorApi, type SoakLoopApi } from './soak-apis.ts'
import type { Balance, KillWindow } from './soak-balance.ts'
import type { LoadPlan, RequestFailure, SoakLedger } from './soak-load.ts'
import { countLogLines, type SoakProcess } from './soak-processes.ts'

export interface SoakEvents {
  loopRestarts: { stoppedAt: number; upAt: number }[]
  swaps: { version: string; setAt: number; doneAt: number | undefined }[]
  kills: (KillWindow & { readToKillMs: number })[]
  capFill: { stoppedAt: number; fullAt: number | undefined; resumedAt: number | undefined; dropsAtCap: number; peakItems: number } | undefined
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const percent = (ratio: number) => `${ratio >= 0 ? '+' : ''}${(ratio * 100).toFixed(1)} %`
const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))] ?? NaN

/** Whether a failed request was in flight during a kill window (from the SIGKILL until `graceMs` after serving again). */
export function duringKill(failure: RequestFailure, kills: readonly KillWindow[], graceMs: number): boolean {
  return kills.some((k) => failure.endedAt >= k.killedAt && failure.startedAt <= k.servingAt + graceMs)
}

/** "a 3, b 1": how many of `items` fall under each key */
function countBy<T>(items: readonly T[], key: (item: T) => string): string {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return [...counts].map(([name, n]) => `${name} ${n}`).join(', ') || '–'
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  const line = (row: string[]) => `| ${row.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n')
}

export async function progressLine(input: {
  at: number; ledger: SoakLedger; lives: readonly LifeCounters[]; loopApi: SoakLoopApi; detectorApi: SoakDetectorApi; imagesBefore: number
  loopProcess: SoakProcess; detectorProcess: SoakProcess; kills: readonly KillWindow[]; graceMs: number
}): Promise<string> {
  const { ledger } = input
  const [received, counters, detector, loop] = await Promise.all([
    input.loopApi.imageCount().then((n) => String(n - input.imagesBefore), () => '– (restarting)'),
    readCounters(input.detectorApi).catch(() => undefined),
    input.detectorProcess.running ? input.detectorProcess.sample().catch(() => undefined) : undefined,
    input.loopProcess.running ? input.loopProcess.sample().catch(() => undefined) : undefined,
  ])
  const outside = ledger.failures.filter((f) => !duringKill(f, input.kills, input.graceMs)).length
  const drops = sumCounters(input.lives).dropped + (counters?.dropped ?? 0)
  const processText = (sample: ProcessSample | undefined) => (sample && Number.isFinite(sample.rssBytes) ? `${mib(sample.rssBytes)} ${sample.fds} fds` : '–')
  return `[${(input.at / 1000).toFixed(0).padStart(4)} s] served ${ledger.served}  failed ${ledger.failures.length} (${outside} outside kills)  ` +
    `asked ${ledger.uploads.length}  received ${received}  queued ${counters?.items ?? '–'}  drops ${counters ? drops : '–'}  ` +
    `| detector ${processText(detector)} | loop ${processText(loop)}`
}

export interface ReportInput {
  options: { minutes: number; clients: number; clientRps: number; cameras: number; cameraFps: number; loopRestartS: number; swapS: number; kills: number; outboxCap: number }
  plan: LoadPlan
  durationMs: number
  ledger: SoakLedger
  soakStart: number
  balance: Balance
  totals: LifeCounters
  lives: readonly LifeCounters[]
  events: SoakEvents
  resources: readonly ResourceSample[]
  warmUpMs: number
  drainMs: number
  loopImages: { total: number; fileNames: number; before: number }
  queuedOnDisk: number
  kills: readonly KillWindow[]
  graceMs: number
  killLeadMs: number
  detectorLog: string
  loopLog: string
}

export function printReport(r: ReportInput): void {
  const { ledger, balance, totals, events, options } = r
  const out = (line = '') => console.log(line)
  const at = (ms: number) => `${((ms - r.soakStart) / 1000).toFixed(1)} s`
  out(`soak: ${options.minutes} min after a 10 s warm-up; ${options.clients} REST clients × ${options.clientRps || 'max'} req/s, ${options.cameras} socket.io cameras × ${options.cameraFps} fps ` +
    `(odd ones send raw frames); autoupload: all on every ${r.plan.autouploadEvery}th request, an upload every ${r.plan.uploadEvery}th; ` +
    `${navigator.hardwareConcurrency} cores, Bun ${Bun.version}`)
  out()

  const outside = ledger.failures.filter((f) => !duringKill(f, r.kills, r.graceMs))
  const byRoute = (failures: RequestFailure[]) => countBy(failures, (f) => f.route)
  out('requests')
  out(table([
    ['served', 'failed', 'failed outside kill windows', 'refused by a full write queue', '/detect p50', '/detect p99'],
    [String(ledger.served), `${ledger.failures.length} (${byRoute(ledger.failures)})`, `${outside.length}${outside.length ? ` (${byRoute(outside)})` : ''}`, String(ledger.refused),
      `${quantile(ledger.detectLatencies, 0.5).toFixed(1)} ms`, `${quantile(ledger.detectLatencies, 0.99).toFixed(1)} ms`],
  ]))
  for (const failure of outside.slice(0, 5)) out(`  outside a kill window at ${at(failure.startedAt)}: ${failure.route}: ${failure.error}`)
  out()

  out('events')
  const downs = events.loopRestarts.map((e) => e.upAt - e.stoppedAt)
  out(`  loop restarts (SIGTERM, start again): ${downs.length}, down ${seconds(Math.min(...downs))}–${seconds(Math.max(...downs))}`)
  const follows = events.swaps.map((s) => (s.doneAt === undefined ? undefined : s.doneAt - s.setAt))
  out(`  model swaps: ${events.swaps.length} (${events.swaps.map((s) => s.version).join(' → ')}); followed in ` +
    `${follows.map((f) => (f === undefined ? 'never' : seconds(f))).join(', ')}`)
  for (const kill of events.kills) {
    out(`  kill -9 at ${at(kill.killedAt)}: serving again ${seconds(kill.servingAt - kill.killedAt)} later; counters read ${kill.readToKillMs.toFixed(0)} ms before the kill`)
  }
  const fill = events.capFill
  if (fill) {
    out(`  outbox stopped at ${at(fill.stoppedAt)}: ${fill.fullAt === undefined ? `cap of ${options.outboxCap} NOT reached (peak ${fill.peakItems})` : `at its cap of ${options.outboxCap} after ${seconds(fill.fullAt - fill.stoppedAt)}`}, ` +
      `${fill.dropsAtCap} older images displaced in the 5 s at the cap; uploading again at ${fill.resumedAt === undefined ? '–' : at(fill.resumedAt)}`)
  }
  out(`  after the load: the outbox drained in ${seconds(r.drainMs)}`)
  out()

  out('image balance (each asked image has its own source; the Loop and the outbox on disk are matched image by image)')
  const lost = balance.missingInKillWindows
  out(`  asked ${balance.asked} = received ${balance.received} + still queued ${balance.queued} + dropped ${totals.dropped} + save failures ${totals.saveFailures} ` +
    `+ quarantined ${totals.quarantined} + autoupload errors ${totals.autouploadErrors} + lost in kill windows ${balance.lost}`)
  out(`  asked by route: ${countBy(ledger.uploads, (u) => u.route)}; ` +
    `${balance.unknownNotFound} more were sent into a kill, got no answer and never turned up (not counted as asked)`)
  out(`  dropped by reason: ${JSON.stringify(totals.droppedByReason)} (summed over ${r.lives.length} detector lives)`)
  out(`  missing images answered outside the kill windows: ${balance.missingElsewhere.length} = counted drops and failures ${balance.counted}: ` +
    `${balance.exactOutsideKillWindows ? 'exact' : `NOT exact (off by ${balance.missingElsewhere.length - balance.counted})`}`)
  out(`  lost in kill windows: ${balance.lost}; missing images answered at most ${r.killLeadMs} ms before a kill: ${lost.length}` +
    (lost.length ? ` (${r.kills.map((k) => lost.filter((u) => u.endedAt <= k.servingAt && u.endedAt >= k.killedAt - r.killLeadMs).map((u) => `${(k.killedAt - u.endedAt).toFixed(0)}`).join(', ')).filter(Boolean).join('; ')} ms before the kill)` : ''))
  out(`  Loop: ${r.loopImages.total} soak images, ${r.loopImages.fileNames} distinct file names, ${balance.unexpected} nobody asked for; ` +
    `outbox on disk after the stop: ${r.queuedOnDisk} items (lln_outbox_items before it: ${totals.items}), ${balance.queuedAndReceived} of them already at the Loop`)
  out()

  const minute = 60_000
  const end = r.soakStart + r.durationMs
  const lastServing = events.kills.at(-1)?.servingAt
  const lastLife = lastServing === undefined ? 1 : events.kills.length + 1
  const lastLifeFrom = lastServing === undefined ? r.soakStart : lastServing + r.warmUpMs
  const detectorFirst = drift(windowStats(r.resources, 'detector', r.soakStart, r.soakStart + minute, 1), windowStats(r.resources, 'detector', end - minute, end))
  const detectorLast = drift(windowStats(r.resources, 'detector', lastLifeFrom, lastLifeFrom + minute, lastLife), windowStats(r.resources, 'detector', end - minute, end, lastLife))
  const loopDrift = drift(windowStats(r.resources, 'loop', r.soakStart, r.soakStart + minute), windowStats(r.resources, 'loop', end - minute, end))
  const range = (w: WindowStats | undefined, pick: 'rss' | 'fds') => !w ? '–' : pick === 'rss'
    ? `${mib(w.rssMedian)} (${mib(w.rssMin)}–${mib(w.rssMax)})` : `${w.fdsMedian} (${w.fdsMin}–${w.fdsMax})`
  out(`resources: VmRSS and open descriptors from /proc every few seconds; median (min–max) per minute of the run`)
  const rows = [['minute', 'detector RSS', 'detector fds', 'loop RSS', 'loop fds', 'events']]
  for (let from = r.soakStart; from < end - 1; from += minute) {
    const detector = windowStats(r.resources, 'detector', from, from + minute)
    const loop = windowStats(r.resources, 'loop', from, from + minute)
    const happened = [
      ...events.kills.filter((k) => k.killedAt >= from && k.killedAt < from + minute).map(() => 'kill -9'),
      ...(events.capFill && events.capFill.stoppedAt >= from && events.capFill.stoppedAt < from + minute ? ['outbox held to its cap'] : []),
    ]
    rows.push([String(Math.round((from - r.soakStart) / minute) + 1), range(detector, 'rss'), range(detector, 'fds'), range(loop, 'rss'), range(loop, 'fds'), happened.join(', ')])
  }
  out(table(rows))
  const driftRow = (name: string, d: Drift | undefined) => d
    ? [name, `${mib(d.start.rssMedian)} → ${mib(d.end.rssMedian)}`, percent(d.rssMedian), `${mib(d.start.rssMin)} → ${mib(d.end.rssMin)}`, percent(d.rssFloor), `${d.start.fdsMedian} → ${d.end.fdsMedian}`]
    : [name, '–', '–', '–', '–', '–']
  out(table([
    ['first minute → last minute', 'RSS median', 'drift', 'RSS minimum', 'drift', 'fds median'],
    driftRow(`detector, last life (from ${r.warmUpMs / 1000} s after its restart)`, detectorLast),
    driftRow('detector, first life → last life', detectorFirst),
    driftRow('loop (restarted every 30 s: other processes)', loopDrift),
  ]))
  out()

  const lastLifeDrift = detectorLast?.rssMedian ?? NaN
  const fdChange = detectorLast?.fds ?? NaN
  const mark = (met: boolean) => (met ? 'yes' : 'NO')
  out('targets')
  out(table([
    ['target', 'measured', 'met'],
    ['0 failed valid requests outside the kill windows', String(outside.length), mark(outside.length === 0)],
    ['balance exact outside the kill windows', `${balance.missingElsewhere.length} missing vs ${balance.counted} counted; ${balance.unexpected} unexpected`, mark(balance.exactOutsideKillWindows && balance.unexpected === 0)],
    ['detector RSS drift ≤ 10 % (last life, medians of its first and last minute)', percent(lastLifeDrift), mark(lastLifeDrift <= 0.1)],
    ['detector fd count flat (last life, medians within ±5)', `${fdChange >= 0 ? '+' : ''}${fdChange}`, mark(Math.abs(fdChange) <= 5)],
    [`outbox filled to its cap (${options.outboxCap}) once`, fill?.fullAt === undefined ? 'no' : `yes, ${fill.dropsAtCap} displaced`, mark(fill?.fullAt !== undefined)],
  ]))
  out()

  for (const [name, text] of [['detector', r.detectorLog], ['loop', r.loopLog]] as const) {
    const lines = [...countLogLines(text)].sort((a, b) => b[1].count - a[1].count)
    out(`${name} log, warn and error lines by message: ${lines.length ? '' : 'none'}`)
    for (const [message, { count, example }] of lines.slice(0, 12)) out(`  ${String(count).padStart(6)}  ${message}${example ? ` (first: ${example})` : ''}`)
  }
}
