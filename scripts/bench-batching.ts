/**
 * Dynamic batching side by side (rows of `npm run bench:detector`, or alone): a model with a dynamic batch dimension
 * served by two engines on the CPU backend, batched (the GPU default window, asked for explicitly, and batch size) and unbatched
 * (INFERENCE_BATCH_WINDOW_MS=0), at 1, 4 and 16 concurrent in-process callers, in alternating 1 s slices so noise
 * hits both alike; req/s, p50, the mean size of the runs and the ratio. Models: the dynamic-batch test model of
 * make-test-models.ts at 320×320, and, when fetched (scripts/fetch-bench-models.ts), a batch-dynamic copy of YOLOv8n
 * (its three Reshape constants that fix batch 1 keep the incoming batch instead; written to a temp folder, never
 * committed: AGPL weights).
 *
 *   bun scripts/bench-batching.ts [--seconds 3]
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { onnx } from 'onnx-proto'
import { createInferenceEngine, type InferenceEngine } from '../src/inference/inference-engine.ts'
import { DEFAULT_BATCH_WINDOW_MS } from '../src/config/inference-settings.ts'
import type { ImageInput } from '../src/inference/image-decoding.ts'
import { writeTinyModelPackage } from './make-test-models.ts'
import { fetchedYolov8nDir } from './fetch-bench-models.ts'

export interface BatchingRow {
  model: string
  clients: number
  batched: { perSecond: number; p50: number; meanBatch: number }
  unbatched: { perSecond: number; p50: number }
}

const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))] ?? NaN

/** YOLOv8n as exported with a fixed batch, made batch-dynamic: what `dynamic=True` gives, without the dynamic height/width. */
function batchDynamicCopy(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes)
  const graph = model.graph!
  const shapes = new Set(graph.node!.filter((node) => node.opType === 'Reshape').map((node) => node.input![1]))
  for (const tensor of graph.initializer!) {
    if (!shapes.has(tensor.name!) || !tensor.rawData) continue
    const values = new BigInt64Array(new Uint8Array(tensor.rawData).slice().buffer)
    if (values[0] === 1n) values[0] = 0n // Reshape's 0 keeps the incoming dimension
    tensor.rawData = new Uint8Array(values.buffer)
  }
  for (const value of [...graph.input!, ...graph.output!]) value.type!.tensorType!.shape!.dim![0] = { dimParam: 'batch' }
  graph.valueInfo = []
  return onnx.ModelProto.encode(model).finish()
}

/** The models to measure: name → package folder. */
export async function dynamicBatchModels(folder: string): Promise<{ name: string; dir: string }[]> {
  // a few planted boxes over faint features: output decoding and NMS stay cheap, as with a trained model
  const planted = [{ anchor: 10, cx: 60, cy: 80, w: 40, h: 50, classIndex: 1, score: 0.9 }, { anchor: 500, cx: 200, cy: 120, w: 30, h: 30, classIndex: 2, score: 0.7 }]
  const tiny = await writeTinyModelPackage(join(folder, 'tiny-dynamic'), { layout: 'yolov8', size: 320, classes: 4, featureScale: 0.001, planted, dynamicBatch: true })
  const models = [{ name: 'dynamic-batch test model 320×320', dir: tiny }]
  const yolo = fetchedYolov8nDir()
  if (yolo) {
    const dir = join(folder, 'yolov8n-dynamic')
    await mkdir(dir, { recursive: true })
    await copyFile(join(yolo, 'model.json'), join(dir, 'model.json'))
    await writeFile(join(dir, 'model.onnx'), batchDynamicCopy(new Uint8Array(await readFile(join(yolo, 'model.onnx')))))
    models.push({ name: 'YOLOv8n, batch-dynamic copy', dir })
  }
  return models
}

export async function measureBatching(options: { folder: string; image: ImageInput; seconds?: number; clients?: number[]; phase?: (what: string) => void }): Promise<BatchingRow[]> {
  const seconds = options.seconds ?? 3
  const rows: BatchingRow[] = []
  for (const { name, dir } of await dynamicBatchModels(options.folder)) {
    // on the CPU batching is off unless asked for (the point of this measurement)
    const batched = await createInferenceEngine({ modelDir: dir, backend: 'cpu', verify: false, batchWindowMs: DEFAULT_BATCH_WINDOW_MS })
    const unbatched = await createInferenceEngine({ modelDir: dir, backend: 'cpu', verify: false, batchWindowMs: 0 })
    try {
      if (!batched.dynamicBatch) throw new Error(`${name} does not batch`)
      for (const clients of options.clients ?? [1, 4, 16]) {
        options.phase?.(`dynamic batching: ${name}, ${clients} clients`)
        const results = { batched: { latencies: [] as number[], batches: [] as number[] }, unbatched: { latencies: [] as number[], batches: [] as number[] } }
        const slice = async (engine: InferenceEngine, into: { latencies: number[]; batches: number[] }) => {
          const end = performance.now() + 1000
          await Promise.all(Array.from({ length: clients }, async () => {
            while (performance.now() < end) {
              const started = performance.now()
              const output = await engine.detect(options.image)
              into.latencies.push(performance.now() - started)
              into.batches.push(output.batchSize ?? 1)
            }
          }))
        }
        await slice(batched, { latencies: [], batches: [] }) // warm-up
        await slice(unbatched, { latencies: [], batches: [] })
        for (let s = 0; s < seconds; s++) {
          await slice(batched, results.batched)
          await slice(unbatched, results.unbatched)
        }
        // a run of n images is seen n times: the mean over images of 1/n counts runs
        const runs = results.batched.batches.reduce((sum, n) => sum + 1 / n, 0)
        rows.push({
          model: name, clients,
          batched: { perSecond: results.batched.latencies.length / seconds, p50: quantile(results.batched.latencies, 0.5), meanBatch: results.batched.batches.length / runs },
          unbatched: { perSecond: results.unbatched.latencies.length / seconds, p50: quantile(results.unbatched.latencies, 0.5) },
        })
      }
    } finally {
      await Promise.all([batched.dispose(), unbatched.dispose()])
    }
  }
  return rows
}

export function describeBatching(rows: BatchingRow[]): string[] {
  return rows.map((r) => `dynamic batching, ${r.model}, ${String(r.clients).padStart(2)} clients: batched ${r.batched.perSecond.toFixed(1)} req/s (p50 ${r.batched.p50.toFixed(1)} ms, mean run ${r.batched.meanBatch.toFixed(1)} images) vs unbatched ${r.unbatched.perSecond.toFixed(1)} req/s (p50 ${r.unbatched.p50.toFixed(1)} ms): ${(r.batched.perSecond / r.unbatched.perSecond).toFixed(2)}×`)
}

if (import.meta.main) {
  const { Transformer } = await import('@napi-rs/image')
  const { makeTempDir } = await import('../test/support/temp.ts')
  const { setLogLevel } = await import('../src/foundation/log.ts')
  setLogLevel('warn')
  const at = process.argv.indexOf('--seconds')
  const temp = await makeTempDir('lln-bench-batching-')
  const photo = new Uint8Array(await readFile(join(import.meta.dir, '../test/fixtures/astronaut.jpg')))
  const jpeg = new Uint8Array(await new Transformer(photo).resize(640, 480).jpeg(85))
  console.log(`dynamic batching bench: 640×480 JPEG, cpu backend, ${navigator.hardwareConcurrency} cores`)
  const rows = await measureBatching({ folder: temp.path, image: { kind: 'encoded', bytes: jpeg }, seconds: at > 0 ? Number(process.argv[at + 1]) : 3, phase: (what) => console.error(`… ${what}`) })
  for (const line of describeBatching(rows)) console.log(line)
  await temp.cleanup()
  process.exit(0)
}
