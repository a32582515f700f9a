/**
 * An autoupload flood (issue 11): a detector whose model answers at once (a fixed box, as fast as a GPU model
 * or faster) and `clients` keep-alive REST clients sending `autoupload: all` back to back, in 1 s slices
 * alternating with the same clients sending `autoupload: disabled`. The outbox does not upload meanwhile, so
 * it fills to its cap and then drops. Reports /detect req/s and p50/p99 with and without the flood, peak RSS,
 * the most open file descriptors, the outbox depth against its cap, drops by reason and EMFILE errors.
 *
 *   bun scripts/bench-outbox-flood.ts [--seconds 10] [--clients 4] [--cap 10000]     (also a row of `npm run bench:detector`)
 */
import { Transformer } from '@napi-rs/image'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadNodeConfig } from '../src/config/node-config.ts'
import { DetectorNode, type DetectorNodeOptions } from '../src/detector/detector-node.ts'
import { LocalLoop } from '../src/local-loop/local-loop.ts'
import { parseLevel, setLogLevel, setLogSink } from '../src/foundation/log.ts'
import { fixedBoxFactory } from '../test/support/fixed-box-logic.ts'
import { makeTempDir } from '../test/support/temp.ts'
import { sampleProcess } from './process-sample.ts'
import { byLabels, parseMetrics } from './prometheus-text.ts'
import { multipartRequest, RawHttpClient } from './raw-http-client.ts'

export interface FloodResult {
  clients: number
  seconds: number
  quiet: { perSecond: number; p50: number; p99: number }
  flood: { perSecond: number; p50: number; p99: number }
  rssBeforeMiB: number
  rssPeakMiB: number
  fdsBefore: number
  fdsPeak: number
  itemsPeak: number
  cap: number
  saved: number
  dropped: Record<string, number>
  saveFailures: Record<string, number>
  emfile: number
}

const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))] ?? NaN
const openFds = async () => (await sampleProcess('self')).fds
const mib = (bytes: number) => Math.round(bytes / 2 ** 20)

export async function measureOutboxFlood(options: {
  loopUrl: string; dataFolder: string; jpeg: Uint8Array; clients?: number; seconds?: number; phase?: (what: string) => void
  outbox?: DetectorNodeOptions['outbox']
}): Promise<FloodResult> {
  const clients = options.clients ?? 4
  const seconds = options.seconds ?? 10
  let emfile = 0
  const previousSink = setLogSink((line) => {
    if (line.includes('EMFILE')) emfile++
    previousSink(line)
  })
  const node = await DetectorNode.start({
    // paused: the fixed-box model stays, whatever the Loop deploys for the other benchmarks
    config: loadNodeConfig({
      LOOP_HOST: options.loopUrl, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', DATA_FOLDER: options.dataFolder, PORT: '0', BIND_HOST: '127.0.0.1',
      VERSION_CONTROL_DEFAULT: 'pause',
    }),
    factory: fixedBoxFactory, fallbackModelDir: options.dataFolder, ...(options.outbox ? { outbox: options.outbox } : {}),
  })
  try {
    while (!node.active.logic) await Bun.sleep(20)
    await node.outbox.setMode('stopped')
    const connections = await Promise.all(Array.from({ length: clients }, () => RawHttpClient.open(node.url)))
    const requests = { quiet: multipartRequest('/detect', 'file', options.jpeg, { autoupload: 'disabled' }), flood: multipartRequest('/detect', 'file', options.jpeg, { autoupload: 'all' }) }
    const latencies = { quiet: [] as number[], flood: [] as number[] }
    const slice = async (kind: 'quiet' | 'flood') => {
      const end = performance.now() + 1000
      await Promise.all(connections.map(async (connection) => {
        while (performance.now() < end) {
          const started = performance.now()
          const { status } = await connection.send(requests[kind])
          if (status !== 200) throw new Error(`detect answered ${status}`)
          latencies[kind].push(performance.now() - started)
        }
      }))
    }
    await slice('quiet') // warm-up
    latencies.quiet.length = 0
    Bun.gc(true)
    const fdsBefore = await openFds()
    const rssBefore = process.memoryUsage().rss
    const peaks = { rss: rssBefore, fds: fdsBefore, items: 0 }
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        peaks.rss = Math.max(peaks.rss, process.memoryUsage().rss)
        peaks.fds = Math.max(peaks.fds, await openFds())
        peaks.items = Math.max(peaks.items, node.outbox.count())
        await Bun.sleep(20)
      }
    })()
    for (let s = 0; s < seconds; s++) {
      options.phase?.(`outbox flood: slice ${s + 1} of ${seconds}`)
      await slice('quiet')
      await slice('flood')
    }
    // the accepted backlog is still being written
    while (node.outbox.writeState().backlogItems > 0) await Bun.sleep(20)
    sampling = false
    await sampler
    for (const connection of connections) connection.close()
    const samples = parseMetrics(node.runtime.metrics.render())
    const summary = (values: number[]) => ({ perSecond: values.length / seconds, p50: quantile(values, 0.5), p99: quantile(values, 0.99) })
    return {
      clients, seconds, quiet: summary(latencies.quiet), flood: summary(latencies.flood),
      rssBeforeMiB: mib(rssBefore), rssPeakMiB: mib(peaks.rss), fdsBefore, fdsPeak: peaks.fds, itemsPeak: peaks.items, cap: node.outbox.limits.maxItems,
      saved: node.outbox.totals.saved, dropped: byLabels(samples, 'lln_outbox_dropped_total'), saveFailures: byLabels(samples, 'lln_outbox_save_failures_total'), emfile,
    }
  } finally {
    await node.stop()
    setLogSink(previousSink)
  }
}

export function describeFlood(r: FloodResult): string[] {
  const f = (v: number) => v.toFixed(2)
  return [
    `outbox flood, ${r.clients} clients × ${r.seconds} s autoupload: all (fixed-box model, outbox not uploading), against the same clients with autoupload: disabled:`,
    `  /detect ${f(r.flood.perSecond)} vs ${f(r.quiet.perSecond)} req/s (${f(r.flood.perSecond / r.quiet.perSecond)}×); p50 ${f(r.flood.p50)} vs ${f(r.quiet.p50)} ms (${f(r.flood.p50 / r.quiet.p50)}×); p99 ${f(r.flood.p99)} vs ${f(r.quiet.p99)} ms (${f(r.flood.p99 / r.quiet.p99)}×)`,
    `  RSS ${r.rssBeforeMiB} → peak ${r.rssPeakMiB} MiB; open descriptors ${r.fdsBefore} → peak ${r.fdsPeak}; outbox items peak ${r.itemsPeak} (cap ${r.cap}); saved ${r.saved}`,
    `  dropped ${JSON.stringify(r.dropped)}; save failures ${JSON.stringify(r.saveFailures)}; EMFILE ${r.emfile}   (target: items ≤ cap, no EMFILE, no save failures)`,
  ]
}

if (import.meta.main) {
  const argument = (name: string, fallback: string) => {
    const at = process.argv.indexOf(`--${name}`)
    return at > 0 ? process.argv[at + 1]! : fallback
  }
  setLogLevel(parseLevel(process.env.LOG_LEVEL) ?? 'warn')
  const temp = await makeTempDir('lln-bench-flood-')
  const loop = await LocalLoop.start({ dataFolder: join(temp.path, 'loop'), port: 0, hostname: '127.0.0.1' })
  try {
    const photo = new Uint8Array(await readFile(join(import.meta.dir, '../test/fixtures/astronaut.jpg')))
    const jpeg = new Uint8Array(await new Transformer(photo).resize(640, 480).jpeg(85))
    const result = await measureOutboxFlood({
      loopUrl: loop.url, dataFolder: join(temp.path, 'detector'), jpeg,
      clients: Number(argument('clients', '4')), seconds: Number(argument('seconds', '10')), phase: (what) => console.error(`… ${what}`),
      outbox: { limits: { maxItems: Number(argument('cap', '10000')) } },
    })
    console.log(`640×480 JPEG ${jpeg.length} B, ${navigator.hardwareConcurrency} cores, Bun ${Bun.version}`)
    for (const line of describeFlood(result)) console.log(line)
  } finally {
    await loop.stop()
    await temp.cleanup()
  }
  process.exit(0)
}
