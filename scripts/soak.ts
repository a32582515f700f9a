/**
 * Soak benchmark (issue 11; a benchmark, not a CI test): a detector under steady load — REST clients on keep-alive
 * connections and socket.io cameras (JPEG and raw frames), a share of them asking for `autoupload: all`, `/upload`
 * and socket `upload` — while the local Loop is restarted every 30 s, the deployment target swaps between two
 * versions of the built-in model every 60 s, the outbox is stopped until it is full to its cap once
 * (OUTBOX_MAX_ITEMS), and the detector is killed with -9 and restarted twice. Loop and detector run as child
 * processes on free ports of 127.0.0.1, in a temp folder removed at the end (unless --keep).
 *
 * At the end it balances every image a client asked to upload against what the Loop received (matched by a unique
 * `source` per image), what is still queued in the outbox on disk, and what the detector counted as dropped or
 * failed (counters summed over the detector's lives: they restart at 0 after a kill, so they are read just before
 * each one). Images accepted in the moment before a kill, before they were on disk, are counted apart. It prints
 * requests served/failed (failures outside the kill windows must be 0), RSS and open descriptors of both
 * processes at start and end, and a table of targets. Progress on stderr every 10 s, the report on stdout.
 *
 *   bun scripts/soak.ts [--minutes 10] [--clients 4] [--client-rps 25] [--cameras 2] [--camera-fps 5]
 *                       [--loop-restart-s 30] [--swap-s 60] [--kills 2] [--outbox-cap 300]
 *                       [--autoupload-every 10] [--upload-every 50] [--keep]
 */
import { rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeImage } from '../src/inference/image-decoding.ts'
import { builtinModelDir } from '../src/inference/builtin-model.ts'
import { makeTempDir } from '../test/support/temp.ts'
import { modelPackageZip, readModelFiles } from './model-package-zip.ts'
import { computeBalance, type KillWindow } from './soak-balance.ts'
import { readCounters, SoakDetectorApi, SoakLoopApi, sumCounters, type LifeCounters } from './soak-apis.ts'
import { runCamera, runRestClient, SoakLedger, type LoadImages, type LoadPlan } from './soak-load.ts'
import { freePort } from '../test/support/node-process.ts'
import { SoakProcess } from './soak-processes.ts'
import type { ResourceSample } from './soak-resources.ts'
import { printReport, progressLine, type SoakEvents } from './soak-report.ts'

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1]! : fallback
}
const numberArgument = (name: string, fallback: number) => {
  const value = Number(argument(name, String(fallback)))
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`)
  return value
}
const options = {
  minutes: numberArgument('minutes', 10),
  clients: numberArgument('clients', 4),
  clientRps: numberArgument('client-rps', 25),
  cameras: numberArgument('cameras', 2),
  cameraFps: numberArgument('camera-fps', 5),
  loopRestartS: numberArgument('loop-restart-s', 30),
  swapS: numberArgument('swap-s', 60),
  kills: numberArgument('kills', 2),
  outboxCap: numberArgument('outbox-cap', 300),
  keep: process.argv.includes('--keep'),
}
const plan: LoadPlan = { autouploadEvery: numberArgument('autoupload-every', 10), uploadEvery: numberArgument('upload-every', 50), requestTimeoutMs: 20_000 }
const WARM_UP_MS = 10_000
const RESOURCE_SAMPLE_MS = 2_000
/** socket.io clients reconnect with a backoff of up to 5 s: failures this long after a restarted node serves belong to its kill */
const KILL_GRACE_MS = 6_000
/** an accepted autoupload answered this long before a kill may not have reached the disk */
const KILL_LEAD_MS = 2_000
const durationMs = options.minutes * 60_000
const log = (line: string) => process.stderr.write(`${line}\n`)

const root = join(import.meta.dir, '..')
const temp = await makeTempDir('lln-soak-')
const [loopPort, detectorPort] = [freePort(), freePort()]
const loopUrl = `http://127.0.0.1:${loopPort}`
const detectorUrl = `http://127.0.0.1:${detectorPort}`
const bun = process.execPath
const cli = join(root, 'src/cli/main.ts')
const loopProcess = new SoakProcess('loop', [bun, cli, 'loop', '--port', String(loopPort), '--data', join(temp.path, 'loop'), '--log-level', 'warn'], {}, 'local loop listening on')
const detectorData = join(temp.path, 'detector')
const detectorProcess = new SoakProcess('detector', [bun, cli, 'detector', '--port', String(detectorPort), '--data', detectorData, '--bind', '127.0.0.1'], {
  LOOP_HOST: loopUrl, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', LOG_LEVEL: 'warn', OUTBOX_MAX_ITEMS: String(options.outboxCap),
  INFERENCE_BACKEND: process.env.INFERENCE_BACKEND ?? 'cpu',
}, 'detector listening on', async () => (await fetch(`${detectorUrl}/ready`)).ok)
const loopApi = new SoakLoopApi(loopUrl)
const detectorApi = new SoakDetectorApi(detectorUrl)

// whatever ends this script (an error, Ctrl-C), the nodes end with it and the temp folder goes
process.on('exit', () => {
  detectorProcess.killNow()
  loopProcess.killNow()
  if (!options.keep) rmSync(temp.path, { recursive: true, force: true })
})
process.on('SIGINT', () => process.exit(130))
process.on('SIGTERM', () => process.exit(143))

// ---------------------------------------------------------------- setup
log(`soak: ${options.minutes} min, ${options.clients} REST clients × ${options.clientRps || 'max'} req/s, ${options.cameras} cameras × ${options.cameraFps} fps, data in ${temp.path}`)
await loopProcess.start()
const modelFiles = await readModelFiles(builtinModelDir())
const models = [await loopApi.uploadModel(modelPackageZip(modelFiles, 'soak-a')), await loopApi.uploadModel(modelPackageZip(modelFiles, 'soak-b'))]
await loopApi.setTarget(models[0]!.id)
const imagesBefore = await loopApi.imageCount()
await detectorProcess.start()
await detectorApi.waitForVersion(models[0]!.version, 120_000)

const fixtures = ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg']
const jpegs = await Promise.all(fixtures.map(async (name) => new Uint8Array(await readFile(join(root, 'test/fixtures', name)))))
const rgb = await decodeImage({ kind: 'encoded', bytes: jpegs[0]! })
const images: LoadImages = { jpegs, frame: { bytes: rgb.data, dtype: 'uint8', shape: [rgb.height, rgb.width, 3] } }

// ---------------------------------------------------------------- load
const ledger = new SoakLedger()
let loadRunning = true
const running = () => loadRunning
const load = [
  ...Array.from({ length: options.clients }, (_, index) => runRestClient({ index, url: detectorUrl, images, plan, perSecond: options.clientRps, ledger, running })),
  ...Array.from({ length: options.cameras }, (_, index) => runCamera({ index, url: detectorUrl, images, plan, fps: options.cameraFps, raw: index % 2 === 1, ledger, running })),
]
log(`… warm-up ${WARM_UP_MS / 1000} s`)
await Bun.sleep(WARM_UP_MS)
const soakStart = ledger.now()
const resources: ResourceSample[] = []
const sampler = setInterval(() => {
  for (const [name, node] of [['detector', detectorProcess], ['loop', loopProcess]] as const) {
    if (!node.running) continue
    const life = node.starts
    void node.sample().then((sample) => resources.push({ ...sample, process: name, life, at: ledger.now() }), () => undefined)
  }
}, RESOURCE_SAMPLE_MS)

// ---------------------------------------------------------------- events
const events: SoakEvents = { loopRestarts: [], swaps: [], kills: [], capFill: undefined }
const lives: LifeCounters[] = []
const killWindows: KillWindow[] = []
let nextModel = 1

type Scheduled = { atMs: number; name: string; run: () => Promise<void> }
const schedule: Scheduled[] = []
for (let t = options.loopRestartS * 1000; options.loopRestartS > 0 && t < durationMs; t += options.loopRestartS * 1000) {
  schedule.push({ atMs: t, name: 'loop restart', run: restartLoop })
}
for (let t = options.swapS * 750; options.swapS > 0 && t < durationMs; t += options.swapS * 1000) schedule.push({ atMs: t, name: 'model swap', run: swapModel })
for (let i = 0; i < options.kills; i++) schedule.push({ atMs: durationMs * (0.15 + 0.2 * i) + 7_000, name: 'kill -9', run: killDetector })
if (options.outboxCap > 0) schedule.push({ atMs: durationMs * 0.55 + 3_000, name: 'outbox cap fill', run: async () => void fillOutbox() })
schedule.sort((a, b) => a.atMs - b.atMs)

async function restartLoop(): Promise<void> {
  const stoppedAt = ledger.now()
  await loopProcess.stop('SIGTERM')
  await loopProcess.start()
  events.loopRestarts.push({ stoppedAt, upAt: ledger.now() })
}

async function swapModel(): Promise<void> {
  const model = models[nextModel++ % models.length]!
  const swap = { version: model.version, setAt: ledger.now(), doneAt: undefined as number | undefined }
  events.swaps.push(swap)
  await loopApi.setTarget(model.id)
  // followed in the background: the detector notices it within a repeat cycle (5 s)
  void detectorApi.waitForVersion(model.version, 120_000).then(() => (swap.doneAt = ledger.now()), () => undefined)
}

async function killDetector(): Promise<void> {
  const before = performance.now()
  const counters = await readCounters(detectorApi)
  const readToKillMs = performance.now() - before
  lives.push(counters)
  // open until the node serves again, so that progress lines already count failures meanwhile as the kill's
  const window: KillWindow = { killedAt: ledger.now(), servingAt: Number.POSITIVE_INFINITY }
  killWindows.push(window)
  await detectorProcess.stop('SIGKILL')
  await detectorProcess.start()
  window.servingAt = ledger.now()
  events.kills.push({ ...window, readToKillMs })
}

async function fillOutbox(): Promise<void> {
  const fill = { stoppedAt: ledger.now(), fullAt: undefined as number | undefined, resumedAt: undefined as number | undefined, dropsAtCap: 0, peakItems: 0 }
  events.capFill = fill
  await detectorApi.setOutboxMode('stopped')
  const dropsBefore = (await readCounters(detectorApi)).displaced
  const giveUpAt = ledger.now() + Math.max(30_000, durationMs * 0.25)
  while (ledger.now() < giveUpAt && loadRunning) {
    const counters = await readCounters(detectorApi).catch(() => undefined)
    fill.peakItems = Math.max(fill.peakItems, counters?.items ?? 0)
    if (counters && counters.items >= options.outboxCap && fill.fullAt === undefined) fill.fullAt = ledger.now()
    // 5 s at the cap: newer images displace the oldest
    if (fill.fullAt !== undefined && ledger.now() > fill.fullAt + 5_000) {
      fill.dropsAtCap = counters!.displaced - dropsBefore
      break
    }
    await Bun.sleep(500)
  }
  await detectorApi.setOutboxMode('continuous_upload')
  fill.resumedAt = ledger.now()
}

// ---------------------------------------------------------------- run
const progress = setInterval(() => {
  void progressLine({ at: ledger.now() - soakStart, ledger, lives, loopApi, detectorApi, imagesBefore, loopProcess, detectorProcess, kills: killWindows, graceMs: KILL_GRACE_MS })
    .then(log, (error) => log(`progress: ${(error as Error).message}`))
}, 10_000)
for (const event of schedule) {
  const wait = soakStart + event.atMs - ledger.now()
  if (wait > 0) await Bun.sleep(wait)
  log(`… ${Math.round((ledger.now() - soakStart) / 1000)} s: ${event.name}`)
  await event.run()
}
while (ledger.now() < soakStart + durationMs) await Bun.sleep(Math.min(1_000, soakStart + durationMs - ledger.now()))
// the last samples are taken under the same load as the first ones (its connections included)
clearInterval(sampler)
loadRunning = false
await Promise.all(load)
clearInterval(progress)
log('… load stopped; waiting for the outbox to drain')
const drainStart = ledger.now()
await detectorApi.setOutboxMode('continuous_upload')
while (ledger.now() - drainStart < 120_000) {
  const counters = await readCounters(detectorApi)
  if (counters.items === 0 && counters.backlog === 0) break
  await Bun.sleep(1_000)
}
const drainMs = ledger.now() - drainStart
lives.push(await readCounters(detectorApi))
await detectorProcess.stop('SIGTERM')
// the Loop's side is read only after the detector stopped: an upload finishing in between would be on neither side
const soakImages = (await loopApi.images()).filter((image) => image.source?.startsWith('soak-'))
const queued = await SoakDetectorApi.queuedSources(detectorData)
await loopProcess.stop('SIGTERM')

const totals = sumCounters(lives)
const balance = computeBalance({
  asked: ledger.uploads, received: new Set(soakImages.map((image) => image.source!)), queued: new Set(queued),
  counts: totals, kills: killWindows, killLeadMs: KILL_LEAD_MS,
})
printReport({
  options, plan, durationMs, ledger, soakStart, balance, totals, lives, events, resources, warmUpMs: WARM_UP_MS, drainMs,
  loopImages: { total: soakImages.length, fileNames: new Set(soakImages.map((image) => image.file_name)).size, before: imagesBefore },
  queuedOnDisk: queued.length, kills: killWindows, graceMs: KILL_GRACE_MS, killLeadMs: KILL_LEAD_MS,
  detectorLog: detectorProcess.output(), loopLog: loopProcess.output(),
})
if (options.keep) log(`kept ${temp.path}`)
else await temp.cleanup()
process.exit(0)
