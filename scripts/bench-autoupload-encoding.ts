/**
 * What an autouploaded non-JPEG image costs the detection flow: a 640×480 frame as JPEG, PNG and raw RGB array,
 * run through DetectionService on the built-in model (cpu, one thread) into a stopped outbox, one request at a time.
 *
 *   bun scripts/bench-autoupload-encoding.ts [--requests 60] [--warmup 10]
 *
 * Per request (medians): `answer` is the latency the client sees, `saved` until the image is in the outbox, and
 * `main` the CPU time of the main thread (from /proc/self/task/<pid>/schedstat, so other threads and other
 * processes on the machine do not count). `filtered` uses thresholds no detection of the model falls in: nothing
 * is uploaded, which is what most frames cost under the default mode.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ActiveDetector } from '../src/detector/active-detector.ts'
import { DetectionService } from '../src/detector/detection-service.ts'
import { OnnxDetectorFactory } from '../src/detector/detector-logic.ts'
import { Outbox } from '../src/detector/outbox.ts'
import { OutboxStore } from '../src/detector/outbox-store.ts'
import { RelevanceFilter } from '../src/detector/relevance-filter.ts'
import { createLogger, setLogLevel } from '../src/foundation/log.ts'
import { MetricsRegistry } from '../src/foundation/metrics.ts'
import { builtinModelDir } from '../src/inference/builtin-model.ts'
import type { ImageInput } from '../src/inference/image-decoding.ts'
import type { AutouploadMode } from '../src/contract/index.ts'

setLogLevel('warn')
const { values } = parseArgs({ options: { requests: { type: 'string', default: '60' }, warmup: { type: 'string', default: '10' } } })
const requests = Number(values.requests)
const warmup = Number(values.warmup)

const mainThreadNs = async () => Number((await Bun.file(`/proc/self/task/${process.pid}/schedstat`).text()).split(' ')[0])
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

// a photo with a face, at the size of a common camera frame
const photo = new Bun.Image(new Uint8Array(await Bun.file(new URL('../test/fixtures/astronaut.jpg', import.meta.url)).arrayBuffer()))
const jpeg = await photo.resize(640, 480).jpeg({ quality: 85 }).bytes()
const png = await new Bun.Image(jpeg).png().bytes()
const napi = await import('@napi-rs/image')
const rgba = new napi.Transformer(png).rawPixelsSync()
const rgb = new Uint8Array(640 * 480 * 3)
for (let s = 0, d = 0; d < rgb.length; s += 4, d += 3) rgb.set(rgba.subarray(s, s + 3), d)
const inputs: Record<string, () => ImageInput> = {
  jpeg: () => ({ kind: 'encoded', bytes: jpeg }),
  png: () => ({ kind: 'encoded', bytes: png }),
  raw: () => ({ kind: 'raw', bytes: rgb, dtype: 'uint8', shape: [480, 640, 3] }),
}

const folder = await mkdtemp(join(tmpdir(), 'bench-autoupload-'))
const metrics = new MetricsRegistry()
await new OutboxStore(folder).writeMode('stopped')
const outbox = await Outbox.open({ dataFolder: folder, upload: async () => new Response(null, { status: 503 }), limits: { maxItems: 100_000 }, metrics })
const active = new ActiveDetector()
await active.swap(await new OnnxDetectorFactory({ backend: 'cpu', threads: 1 }).build(builtinModelDir()))
let background: Promise<unknown>[] = []
const service = new DetectionService({
  active, outbox, metrics, log: createLogger('bench'),
  // no detection of the built-in model is this uncertain: `filtered` uploads nothing
  filter: new RelevanceFilter({ minUncertain: 0.01, maxUncertain: 0.02 }),
  track: (work) => (background.push(work), work),
})

console.log(`autoupload encoding: 640×480, jpeg ${jpeg.length} B, png ${png.length} B, raw ${rgb.length} B; ${requests} requests each, medians`)
console.log('input  autoupload  answer ms  saved ms  main ms')
try {
  for (const autoupload of ['disabled', 'filtered', 'all'] as AutouploadMode[]) {
    for (const [name, input] of Object.entries(inputs)) {
      const answer: number[] = []
      const saved: number[] = []
      const main: number[] = []
      for (let i = 0; i < warmup + requests; i++) {
        background = []
        const cpu = await mainThreadNs()
        const started = performance.now()
        await service.detect(input(), { autoupload }, 'bench')
        const answered = performance.now()
        await Promise.all(background)
        const done = performance.now()
        const cpuAfter = await mainThreadNs()
        if (i < warmup) continue
        answer.push(answered - started)
        saved.push(done - started)
        main.push((cpuAfter - cpu) / 1e6)
      }
      console.log(`${name.padEnd(6)} ${autoupload.padEnd(10)}  ${median(answer).toFixed(2).padStart(9)}  ${median(saved).toFixed(2).padStart(8)}  ${median(main).toFixed(2).padStart(7)}`)
    }
  }
  const failures = metrics.counter('detector_failures_total', '').get({ kind: 'autoupload' })
  if (failures > 0) console.log(`autoupload failures: ${failures}`)
} finally {
  await outbox.stop()
  await active.close()
  await rm(folder, { recursive: true, force: true })
}
