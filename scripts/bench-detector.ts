/**
 * Detector benchmark, everything in one run on one machine (the numbers are ratios against the in-process
 * pipeline measured in the same run, because these machines are noisy):
 *   REST /detect throughput and p50/p99 with 1 and 4 clients vs the in-process pipeline (target overhead ≤ 10 %),
 *   socket.io `detect` frames/s with raw 640×480×3 frames, p99 during a hot swap vs steady (target ≤ 1.2×),
 *   outbox enqueue rate (target ≥ 500 images/s), RSS after 10k detections vs after 1k (target ≤ 5 % drift),
 *   an autoupload flood on a fixed-box model (scripts/bench-outbox-flood.ts: /detect with and without it, RSS,
 *   descriptors, outbox depth vs cap, drops by reason, EMFILE), dynamic batching batched vs unbatched at 1/4/16
 *   clients (scripts/bench-batching.ts), a custom logic that decodes, with decodeImage on the main thread and with
 *   decodeImageInWorker, next to the built-in path at 1 and 4 REST clients (scripts/bench-custom-logic.ts),
 *   the automatic worker pool vs INFERENCE_WORKERS=1 at 1, 4 and 16 REST clients, built-in model and YOLOv8n (scripts/bench-pool.ts),
 *   and the detector on Deno vs Bun (scripts/bench-runtimes.ts: REST throughput with 1 and 4 clients, start → ready;
 *   `--runtime-rounds 0 --startups 0` leaves it out).
 * Usage: bun scripts/bench-detector.ts [--model builtin|yolov8n] [--seconds S] [--drift-detections N] [--swaps N] [--flood-seconds S] [--flood-clients N]
 *          [--pool-seconds S] [--pool-clients 1,4,16] [--runtime-rounds N] [--startups N]
 *        bun scripts/bench-detector.ts --only pool [--pool-seconds 1]   (the pool rows alone: quick, for development)
 * Progress goes to stderr, results to stdout.
 */
import { Transformer } from '@napi-rs/image'
import { join } from 'node:path'
import { io as connect } from 'socket.io-client'
import { loadNodeConfig } from '../src/config/node-config.ts'
import { DetectorNode } from '../src/detector/detector-node.ts'
import { LocalLoop } from '../src/local-loop/local-loop.ts'
import { createZip } from '../src/foundation/zip-archive.ts'
import { builtinModelDir } from '../src/inference/builtin-model.ts'
import { decodeImage } from '../src/inference/image-decoding.ts'
import { fetchBenchModels, fetchedYolov8nDir } from './fetch-bench-models.ts'
import { measurePoolScaling } from './bench-pool.ts'
import { modelPackageZip, readModelFiles } from './model-package-zip.ts'
import { describeFlood, measureOutboxFlood } from './bench-outbox-flood.ts'
import { describeBatching, measureBatching } from './bench-batching.ts'
import { describeCustomLogic, measureCustomLogic } from './bench-custom-logic.ts'
import { multipartRequest, RawHttpClient } from './raw-http-client.ts'
import { compareRuntimes } from './bench-runtimes.ts'
import { makeTempDir } from '../test/support/temp.ts'
import { readFile } from 'node:fs/promises'
import { parseLevel, setLogLevel } from '../src/foundation/log.ts'

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1]! : fallback
}
const modelChoice = argument('model', 'builtin')
const seconds = Number(argument('seconds', '5'))
const driftDetections = Number(argument('drift-detections', '10000'))
const swaps = Number(argument('swaps', '4'))
const floodSeconds = Number(argument('flood-seconds', '10'))
const floodClients = Number(argument('flood-clients', '4'))
const runtimeRounds = Number(argument('runtime-rounds', '2'))
const startups = Number(argument('startups', '3'))
const only = argument('only', 'all')
const poolSeconds = Number(argument('pool-seconds', '3'))
const poolClients = argument('pool-clients', '1,4,16').split(',').map(Number)
type Measured = { latencies: number[]; perSecond: number }
const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))]!
const fmt = (v: number) => v.toFixed(2)

setLogLevel(parseLevel(process.env.LOG_LEVEL) ?? 'warn')
const temp = await makeTempDir('lln-bench-detector-')
const loop = await LocalLoop.start({ dataFolder: join(temp.path, 'loop'), port: 0, hostname: '127.0.0.1' })
const photo = new Uint8Array(await readFile(join(import.meta.dir, '../test/fixtures/astronaut.jpg')))
const jpeg = new Uint8Array(await new Transformer(photo).resize(640, 480).jpeg(85))
const poolScaling = () => measurePoolScaling({
  loopUrl: loop.url, dataFolder: join(temp.path, 'pool'), jpeg, seconds: poolSeconds, clientCounts: poolClients,
  models: [{ name: 'built-in', dir: builtinModelDir() }, { name: 'YOLOv8n', dir: fetchedYolov8nDir() }],
})
if (only === 'pool') {
  console.log(`pool bench: 640×480 JPEG over REST, ${navigator.hardwareConcurrency} cores, ${poolSeconds} s per row and variant, Bun ${Bun.version}`)
  for (const line of await poolScaling()) console.log(line)
  await loop.stop()
  await temp.cleanup()
  process.exit(0)
}
const modelDir = modelChoice === 'yolov8n' ? await fetchBenchModels() : builtinModelDir()
const modelFiles = await readModelFiles(modelDir)
const deploy = async (version: string) => {
  const model = await loop.uploadModel('local', 'demo', { format: 'onnx', zip: modelPackageZip(modelFiles, version) })
  loop.setDeploymentTarget('local', 'demo', model.id)
  return model.version
}
// the inference tuning settings pass through, to compare them on a machine
const tuning = Object.fromEntries(['INFERENCE_WORKERS', 'INFERENCE_THREADS', 'INFERENCE_SPIN_WAIT'].flatMap((name) => process.env[name] ? [[name, process.env[name]!]] : []))
const detector = await DetectorNode.start({
  config: loadNodeConfig({ LOOP_HOST: loop.url, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', DATA_FOLDER: join(temp.path, 'detector'), PORT: '0', BIND_HOST: '127.0.0.1', INFERENCE_BACKEND: 'cpu', ...tuning }),
})
const firstVersion = await deploy('1.0')
while (detector.active.version !== firstVersion) await Bun.sleep(100)

const rgb = await decodeImage({ kind: 'encoded', bytes: jpeg })
const frame = { bytes: rgb.data, dtype: 'uint8', shape: [rgb.height, rgb.width, 3] }
console.log(`detector bench: model ${modelChoice} (${detector.active.logic!.backend}${Object.keys(tuning).length ? ` ${JSON.stringify(tuning)}` : ''}), 640×480 JPEG ${jpeg.length} B, ${navigator.hardwareConcurrency} cores, ${seconds} s per measurement, Bun ${Bun.version}`)

type One = (client: number) => Promise<void>
/** Runs `clients` loops of `one(client)` for `seconds`; returns latencies (ms) and requests/s. */
async function load(clients: number, one: One, durationS = seconds) {
  const latencies: number[] = []
  const end = performance.now() + durationS * 1000
  await Promise.all(Array.from({ length: clients }, async (_, client) => {
    while (performance.now() < end) {
      const t = performance.now()
      await one(client)
      latencies.push(performance.now() - t)
    }
  }))
  return { latencies, perSecond: latencies.length / durationS }
}

const inProcess = () => detector.active.use((logic) => logic.detect({ kind: 'encoded', bytes: jpeg })).then(() => undefined)
// REST clients: keep-alive connections with prebuilt requests (what the node adds), and Bun's fetch for reference
const detectRequest = multipartRequest('/detect', 'file', jpeg, { autoupload: 'disabled' })
const connections = await Promise.all(Array.from({ length: 4 }, () => RawHttpClient.open(detector.url)))
const rest: One = async (client) => {
  const { status } = await connections[client]!.send(detectRequest)
  if (status !== 200) throw new Error(`detect answered ${status}`)
}
const restFetch: One = async () => {
  const form = new FormData()
  form.append('file', new File([jpeg as Uint8Array<ArrayBuffer>], 'frame.jpg', { type: 'image/jpeg' }))
  const response = await fetch(`${detector.url}/detect`, { method: 'POST', body: form, headers: { autoupload: 'disabled' } })
  if (response.status !== 200) throw new Error(`detect answered ${response.status}`)
  await response.arrayBuffer()
}
await load(2, rest, 1) // warm-up
await load(2, restFetch, 1)

const rows: string[][] = [['measurement', 'req/s', 'p50 ms', 'p99 ms']]
const row = (name: string, r: { latencies: number[]; perSecond: number }) => rows.push([name, fmt(r.perSecond), fmt(quantile(r.latencies, 0.5)), fmt(quantile(r.latencies, 0.99))])
/**
 * The platform's own cost of the same round trip: a bare Bun.serve that parses the same multipart body and
 * waits for a Worker busy for `busyMs` (the pipeline's p50), over the same kind of keep-alive connection.
 * On small VMs the thread wake-ups after the wait cost most of it; what REST /detect adds beyond this is ours.
 */
async function measureHttpFloor(busyMs: number): Promise<number> {
  const worker = new Worker(URL.createObjectURL(new Blob([`self.onmessage = () => { const end = performance.now() + ${busyMs}; while (performance.now() < end); self.postMessage(0) }`])))
  const busy = () => new Promise<void>((resolve) => { worker.onmessage = () => resolve(); worker.postMessage(0) })
  const server = Bun.serve({
    port: 0, hostname: '127.0.0.1',
    async fetch(request) {
      await ((await request.formData()).get('file') as File).arrayBuffer()
      await busy()
      return Response.json({ ok: true })
    },
  })
  const connection = await RawHttpClient.open(`http://127.0.0.1:${server.port}`)
  const bareRequest = multipartRequest('/', 'file', jpeg)
  const [workerOnly, viaHttp] = await alternate(1, [busy, async () => void await connection.send(bareRequest)]) as [Measured, Measured]
  connection.close()
  await server.stop(true)
  worker.terminate()
  return quantile(viaHttp.latencies, 0.5) - quantile(workerOnly.latencies, 0.5)
}

/** The `variants` measured in alternating 1 s slices, so noise from other work on the machine hits all alike. */
async function alternate(clients: number, variants: One[]) {
  const merged = variants.map(() => ({ latencies: [] as number[], perSecond: 0 }))
  for (let slice = 0; slice < seconds; slice++) {
    for (const [i, one] of variants.entries()) {
      const r = await load(clients, one, 1)
      merged[i]!.latencies.push(...r.latencies)
      merged[i]!.perSecond += r.perSecond / seconds
    }
  }
  return merged
}
const phase = (what: string) => console.error(`… ${what}`)
phase('in-process vs REST, 1 client')
const [pipeline1, rest1, fetch1] = await alternate(1, [inProcess, rest, restFetch]) as [Measured, Measured, Measured]
phase('the bare Bun.serve + Worker floor')
const floor1 = await measureHttpFloor(quantile(pipeline1.latencies, 0.5))
phase('in-process vs REST, 4 clients')
const [pipeline4, rest4, fetch4] = await alternate(4, [inProcess, rest, restFetch]) as [Measured, Measured, Measured]
row('in-process pipeline, 1 caller', pipeline1); row('REST /detect, 1 client', rest1); row('REST /detect via fetch(), 1 client', fetch1)
row('in-process pipeline, 4 callers', pipeline4); row('REST /detect, 4 clients', rest4); row('REST /detect via fetch(), 4 clients', fetch4)

const socket = connect(detector.url, { path: '/ws/socket.io', transports: ['websocket'] })
await new Promise((resolve) => socket.on('connect', resolve as () => void))
phase('socket.io raw frames')
const socketRun = await load(1, async () => {
  const answer = await socket.emitWithAck('detect', { image: frame, autoupload: 'disabled' })
  if (answer.error) throw new Error(answer.error)
})
row('socket.io detect, raw 640×480×3 frames', socketRun)
socket.close()

// p99 while a new version is downloaded, built, warmed and switched to, against steady traffic just before
// (on a machine with few cores the build competes with the detections for the CPU); the update cycle is started
// at once (not at the next 5 s repeat) so the window holds the swap, not idle lead-in. Two kinds of traffic:
// 4 clients back to back (saturating the machine: there is no spare CPU for the build) and 4 cameras at 15 fps
// that wait for each answer (the robot case; spare CPU exists).
type Traffic = (until: () => boolean, onFailure: () => void) => Promise<{ latencies: number[]; perSecond: number }>
const trafficOf = (framesPerSecond: number | undefined): Traffic => async (until, onFailure) => {
  const latencies: number[] = []
  const started = performance.now()
  await Promise.all(Array.from({ length: 4 }, async (_, camera) => {
    const interval = framesPerSecond ? 1000 / framesPerSecond : 0
    let next = started + (interval * camera) / 4
    while (!until()) {
      if (interval) await Bun.sleep(Math.max(0, next - performance.now()))
      const t = performance.now()
      await rest(camera).catch(onFailure)
      latencies.push(performance.now() - t)
      next = Math.max(next + interval, performance.now())
    }
  }))
  return { latencies, perSecond: latencies.length / ((performance.now() - started) / 1000) }
}
let swapVersion = 1
/** `swaps` rounds of 2 s steady traffic then a swap window (until 0.5 s after the switch); p99 over all rounds. */
async function swapUnder(traffic: Traffic) {
  const steady = { latencies: [] as number[], perSecond: 0 }
  const during = { latencies: [] as number[], perSecond: 0 }
  let failures = 0
  for (let round = 0; round < swaps; round++) {
    const steadyEnd = performance.now() + 2000
    const calm = await traffic(() => performance.now() > steadyEnd, () => undefined)
    let swapDoneAt: number | undefined
    const to = await deploy(`1.${swapVersion++}`)
    const giveUpAt = performance.now() + 120_000
    const watch = (async () => {
      while (detector.active.version !== to) {
        if (performance.now() > giveUpAt) {
          swapDoneAt = performance.now() // ends the traffic; the bench then fails below
          throw new Error(`the swap to ${to} did not happen within 120 s: ${JSON.stringify(detector.runtime.status.errors)}`)
        }
        await Bun.sleep(20)
      }
      swapDoneAt = performance.now()
    })()
    void detector.updater.cycle()
    const swapping = await traffic(() => swapDoneAt !== undefined && performance.now() - swapDoneAt > 500, () => failures++)
    await watch
    steady.latencies.push(...calm.latencies)
    steady.perSecond += calm.perSecond / swaps
    during.latencies.push(...swapping.latencies)
    during.perSecond += swapping.perSecond / swaps
  }
  return { steady, during, failures, ratio: quantile(during.latencies, 0.99) / quantile(steady.latencies, 0.99) }
}
phase(`${swaps} hot swaps under 4 clients back to back`)
const saturated = await swapUnder(trafficOf(undefined))
phase(`${swaps} hot swaps under 4 cameras at 15 fps`)
const cameras = await swapUnder(trafficOf(15))
row('REST 4 clients, steady', saturated.steady); row('REST 4 clients, during hot swap', saturated.during)
row('REST 4 cameras × 15 fps, steady', cameras.steady); row('REST 4 cameras × 15 fps, during hot swap', cameras.during)

// outbox enqueue rate (8 saves in flight)
const outboxCount = 1000
await detector.outbox.setMode('stopped')
const metadata = { box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [], box_annotations: [], point_annotations: [], classification_annotation: null, tags: ['bench'], created: null, source: 'bench' }
phase('outbox enqueue')
const outboxStart = performance.now()
for (let i = 0; i < outboxCount; i += 8) await Promise.all(Array.from({ length: 8 }, () => detector.outbox.save(jpeg, metadata)))
const outboxRate = outboxCount / ((performance.now() - outboxStart) / 1000)

// RSS drift: after 1k detections vs after driftDetections
const rssAfter = async (count: number) => {
  let done = 0
  await Promise.all(Array.from({ length: 4 }, async (_, client) => {
    while (done < count) {
      done++
      await rest(client)
    }
  }))
  Bun.gc(true)
  await Bun.sleep(200)
  return process.memoryUsage().rss
}
phase(`RSS after 1000 and ${driftDetections} detections`)
const rss1k = await rssAfter(1000)
const rssN = await rssAfter(driftDetections - 1000)

phase(`outbox flood: ${floodClients} clients, ${floodSeconds} s`)
const flood = await measureOutboxFlood({ loopUrl: loop.url, dataFolder: join(temp.path, 'flood-detector'), jpeg, clients: floodClients, seconds: floodSeconds })

const batching = await measureBatching({ folder: join(temp.path, 'batching'), image: { kind: 'encoded', bytes: jpeg }, seconds: Math.min(seconds, 3), phase })
const customLogic = await measureCustomLogic({ loopUrl: loop.url, dataFolder: join(temp.path, 'custom-logic'), jpeg, builtinUrl: detector.url, seconds: Math.min(seconds, 3), phase })

console.table(rows.slice(1).map(([name, rps, p50, p99]) => ({ measurement: name, 'req/s': rps, 'p50 ms': p50, 'p99 ms': p99 })))
const overhead1 = quantile(rest1.latencies, 0.5) / quantile(pipeline1.latencies, 0.5) - 1
const overhead4 = pipeline4.perSecond / rest4.perSecond - 1
const restAdded1 = quantile(rest1.latencies, 0.5) - quantile(pipeline1.latencies, 0.5)
console.log(`REST overhead vs in-process, 1 client (p50): ${(overhead1 * 100).toFixed(1)} %   (target ≤ 10 %; +${fmt(restAdded1)} ms, of which a bare Bun.serve + Worker round trip costs ${fmt(floor1)} ms here)`)
console.log(`REST overhead vs in-process, 4 clients (throughput): ${(overhead4 * 100).toFixed(1)} %   (target ≤ 10 %)`)
const fetchOverhead1 = quantile(fetch1.latencies, 0.5) / quantile(pipeline1.latencies, 0.5) - 1
console.log(`  the same through Bun's fetch() as the client: 1 client ${(fetchOverhead1 * 100).toFixed(1)} %, 4 clients ${((pipeline4.perSecond / fetch4.perSecond - 1) * 100).toFixed(1)} % (fetch's own client thread adds to the round trip)`)
console.log(`socket.io raw 640×480×3 frames: ${fmt(socketRun.perSecond)} frames/s`)
for (const [name, r] of [['4 clients back to back', saturated], ['4 cameras × 15 fps', cameras]] as const) {
  console.log(`p99 during hot swap / steady, ${name}: ${fmt(r.ratio)}×   (target ≤ 1.2×; ${r.during.latencies.length} requests in the windows of ${swaps} swaps, ${r.failures} failed)`)
}
console.log(`outbox enqueue: ${outboxRate.toFixed(0)} images/s   (target ≥ 500)`)
console.log(`RSS after ${driftDetections} detections vs after 1000: ${((rssN / rss1k - 1) * 100).toFixed(1)} %   (${(rss1k / 2 ** 20).toFixed(0)} → ${(rssN / 2 ** 20).toFixed(0)} MiB; target ≤ 5 %)`)
for (const line of describeFlood(flood)) console.log(line)
for (const line of describeBatching(batching)) console.log(line)
for (const line of describeCustomLogic(customLogic)) console.log(line)
for (const line of await poolScaling()) console.log(line)

for (const connection of connections) connection.close()
await detector.stop()
await loop.stop()
await temp.cleanup()
if (runtimeRounds > 0 || startups > 0) {
  phase('the detector on Deno vs Bun')
  for (const line of await compareRuntimes({ seconds, rounds: runtimeRounds, startups })) console.log(line)
}
process.exit(0)
