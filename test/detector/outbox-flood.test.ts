import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { DEFAULT_WRITE_BACKLOG, DEFAULT_WRITE_CONCURRENCY } from '../../src/detector/outbox-policy.ts'
import { multipartRequest, RawHttpClient } from '../../scripts/raw-http-client.ts'
import { spawnChild, type Child } from '../support/child-process.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

setDefaultTimeout(120_000)

/**
 * An autoupload flood (issue 11): a detector with a model that answers at once, flooded by clients sending
 * `autoupload: all` while its outbox is stopped, with a low file-descriptor limit (as in many containers). The
 * node runs as a child process so that the limit applies to it and not to the test.
 */
const FD_LIMIT = 256
const CLIENTS = 16
const FLOOD_MS = 4_000
const photo = new Uint8Array(await readFile(join(import.meta.dir, '../fixtures/chelsea.jpg')))

type Samples = Map<string, { labels: string; value: number }[]>
const total = (samples: Samples, name: string, labelFilter = '') =>
  (samples.get(name) ?? []).filter((s) => s.labels.includes(labelFilter)).reduce((sum, s) => sum + s.value, 0)
/** Drops decided when an image arrived, as opposed to queued items displaced by newer ones. */
const ARRIVAL_DROP = (labels: string) => !/reason="(limit|disk_low)"/.test(labels)

class FloodedDetector {
  private constructor(readonly child: Child, readonly url: string, readonly dataFolder: string) {}

  static async start(temp: string, loop: LocalLoop, cap: number): Promise<FloodedDetector> {
    const dataFolder = join(temp, `detector-${cap}`)
    const fixture = join(import.meta.dir, 'fixtures/fixed-box-detector.ts')
    // soft and hard limit, so the runtime cannot raise it
    const child = spawnChild(['sh', '-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, fixture, dataFolder, loop.url, String(cap)], { env: { LOG_LEVEL: 'warn' } })
    const { port } = JSON.parse(await child.waitForLine((line) => line.startsWith('{"port"'), 30_000))
    const url = `http://127.0.0.1:${port}`
    await waitFor(async () => (await fetch(`${url}/ready`)).ok, 30_000, 'detector ready')
    return new FloodedDetector(child, url, dataFolder)
  }

  /** The samples of its Prometheus text: name → [labels, value]. */
  async scrape(): Promise<Samples> {
    const text = await (await fetch(`${this.url}/metrics`)).text()
    const samples: Samples = new Map()
    for (const line of text.split('\n')) {
      const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line)
      if (!m) continue
      const list = samples.get(m[1]!) ?? []
      list.push({ labels: m[2] ?? '', value: Number(m[3]) })
      samples.set(m[1]!, list)
    }
    return samples
  }

  /** the most resident memory the process had (VmHWM), in MiB */
  peakRssMiB = async () => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${this.child.proc.pid}/status`, 'utf8'))![1]) / 1024
  openFds = async () => (await readdir(`/proc/${this.child.proc.pid}/fd`)).length
  itemFoldersOnDisk = async () => (await readdir(join(this.dataFolder, 'outbox/normal'))).length

  /** CLIENTS keep-alive clients send `autoupload: all` back to back for FLOOD_MS while the metrics and open descriptors are sampled. */
  async flood() {
    expect((await fetch(`${this.url}/outbox_mode`, { method: 'PUT', body: 'stopped' })).status).toBe(200)
    const request = multipartRequest('/detect', 'file', photo, { autoupload: 'all' })
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => RawHttpClient.open(this.url)))
    // a request on each connection first: the server accepts a connection only once data arrives (TCP_DEFER_ACCEPT)
    const warmUp = multipartRequest('/detect', 'file', photo, { autoupload: 'disabled' })
    await Promise.all(clients.map((client) => client.send(warmUp)))
    await this.scrape()
    const fdsBefore = await this.openFds()
    const rssBeforeMiB = await this.peakRssMiB()
    const peaks = { items: 0, fds: 0, writesInFlight: 0, writeBacklog: 0 }
    const statuses = new Map<number, number>()
    const end = performance.now() + FLOOD_MS
    const sending = Promise.all(clients.map(async (client) => {
      while (performance.now() < end) {
        const { status } = await client.send(request)
        statuses.set(status, (statuses.get(status) ?? 0) + 1)
      }
    }))
    const sampling = (async () => {
      while (performance.now() < end) {
        const metrics = await this.scrape()
        peaks.items = Math.max(peaks.items, total(metrics, 'lln_outbox_items'))
        peaks.writesInFlight = Math.max(peaks.writesInFlight, total(metrics, 'lln_outbox_writes_in_flight'))
        peaks.writeBacklog = Math.max(peaks.writeBacklog, total(metrics, 'lln_outbox_write_backlog_items'))
        peaks.fds = Math.max(peaks.fds, await this.openFds())
        await Bun.sleep(10)
      }
    })()
    await Promise.all([sending, sampling])
    for (const client of clients) client.close()
    expect([...statuses.keys()]).toEqual([200])
    const handed = statuses.get(200)!
    // every image handed to the outbox ends saved or dropped with a counted reason (or as a counted failure)
    const settled = await waitFor(async () => {
      const metrics = await this.scrape()
      const saved = total(metrics, 'lln_outbox_saved_total')
      const refused = (metrics.get('lln_outbox_dropped_total') ?? []).filter((s) => ARRIVAL_DROP(s.labels)).reduce((sum, s) => sum + s.value, 0)
      const failed = total(metrics, 'lln_outbox_save_failures_total')
      return saved + refused + failed === handed ? { metrics, saved, refused, failed } : undefined
    }, 60_000, `all ${handed} autouploads saved or counted as dropped`).catch(async (error) => {
      const text = await (await fetch(`${this.url}/metrics`)).text()
      throw new Error(`${(error as Error).message}\n${text.split('\n').filter((l) => /^lln_(outbox|detector)/.test(l)).join('\n')}`)
    })
    const log = this.child.output()
    const report = {
      handed, saved: settled.saved, refused: settled.refused, failed: settled.failed, peaks, fdsBefore,
      rssBeforeMiB: Math.round(rssBeforeMiB), rssPeakMiB: Math.round(await this.peakRssMiB()),
      dropped: Object.fromEntries((settled.metrics.get('lln_outbox_dropped_total') ?? []).map((s) => [s.labels, s.value])),
      failures: Object.fromEntries((settled.metrics.get('lln_outbox_save_failures_total') ?? []).map((s) => [s.labels, s.value])),
      queued: total(settled.metrics, 'lln_outbox_items'), onDisk: await this.itemFoldersOnDisk(),
      emfile: log.split('EMFILE').length - 1, logLines: log.split('\n').length,
    }
    return { ...settled, report, text: JSON.stringify(report, null, 1), log }
  }

  async stop(): Promise<void> {
    await this.child.kill('SIGKILL')
  }
}

let testLoop: TestLoop
let loop: LocalLoop

beforeAll(async () => {
  testLoop = await startTestLoop()
  loop = testLoop.loop
})

afterAll(async () => {
  await testLoop?.cleanup()
})

describe('an autoupload flood into a stopped outbox', () => {
  test('a low cap (50) holds exactly, on disk too; drops are counted with true reasons; every image is accounted for', async () => {
    const cap = 50
    const detector = await FloodedDetector.start(testLoop.folder, loop, cap)
    try {
      const { metrics, saved, failed, report, text, log } = await detector.flood()
      expect(report.handed).toBeGreaterThan(cap * 4)
      expect(failed, text).toBe(0)
      expect(report.emfile, text).toBe(0)
      expect(report.peaks.items, text).toBeLessThanOrEqual(cap)
      expect(report.queued, text).toBe(cap)
      expect(report.onDisk, text).toBe(cap)
      expect(saved - total(metrics, 'lln_outbox_dropped_total', 'reason="limit"'), text).toBe(cap)
      // only normal items arrived: nothing may claim that priority items were in the way
      for (const labels of Object.keys(report.dropped)) expect(labels, text).toContain('queue="normal"')
      expect(log.includes('priority items'), text).toBe(false)
    } finally {
      await detector.stop()
    }
  })

  test(`a high cap under a limit of ${FD_LIMIT} descriptors: writes are bounded, nothing fails with EMFILE`, async () => {
    const cap = 10_000
    const detector = await FloodedDetector.start(testLoop.folder, loop, cap)
    try {
      const { failed, report, text } = await detector.flood()
      expect(report.emfile, text).toBe(0)
      expect(failed, text).toBe(0)
      expect(report.peaks.items, text).toBeLessThanOrEqual(cap)
      expect(report.onDisk, text).toBe(report.queued)
      // a handful of writes at once, each with at most a few descriptors open, and a bounded backlog in memory
      expect(report.peaks.writesInFlight, text).toBeGreaterThan(0)
      expect(report.peaks.writesInFlight, text).toBeLessThanOrEqual(DEFAULT_WRITE_CONCURRENCY)
      expect(report.peaks.writeBacklog, text).toBeLessThanOrEqual(DEFAULT_WRITE_BACKLOG.maxItems)
      expect(report.peaks.fds - report.fdsBefore, text).toBeLessThanOrEqual(DEFAULT_WRITE_CONCURRENCY * 3 + 8)
    } finally {
      await detector.stop()
    }
  })
})
