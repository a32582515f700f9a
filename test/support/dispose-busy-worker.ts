/**
 * Disposes an inference engine whose worker is busy, in a process of its own (test/inference/worker-dispose.test.ts
 * runs it): terminating a worker thread while onnxruntime-node runs aborts the whole process, and that must end this
 * child, not the test runner. Prints one JSON line with what happened, then "alive" a moment later.
 *
 *   bun test/support/dispose-busy-worker.ts <queued|batched|one-request|long-run> <folder for the model>
 */
import { join } from 'node:path'
import { writeTinyModelPackage } from '../../scripts/make-test-models.ts'
import { createInferenceEngine } from '../../src/inference/inference-engine.ts'
import type { WorkerPool } from '../../src/inference/worker-pool.ts'

const [scenario, folder] = process.argv.slice(2) as [string, string]
const image = { kind: 'raw' as const, bytes: new Uint8Array(64 * 64 * 3).fill(9), dtype: 'uint8', shape: [64, 64, 3] }
const outcome = (request: Promise<unknown>) => request.then(() => 'ran', (error: Error) => error.message)

if (scenario === 'queued' || scenario === 'batched') {
  const batched = scenario === 'batched'
  const dir = await writeTinyModelPackage(join(folder, scenario), { layout: 'yolov8', size: 512, featureScale: 0.001, planted: [], dynamicBatch: batched })
  const engine = await createInferenceEngine({
    modelDir: dir, backend: 'cpu', workers: 1, threads: 1, verify: false, ...(batched ? { batchWindowMs: 1, maxBatch: 2 } : {}),
  })
  const requests = Array.from({ length: 30 }, () => outcome(engine.detect(image)))
  await engine.dispose()
  const outcomes = await Promise.all(requests)
  console.log(JSON.stringify({ ran: outcomes.filter((o) => o === 'ran').length, failed: [...new Set(outcomes.filter((o) => o !== 'ran'))] }))
} else if (scenario === 'one-request') {
  // one request of 30 images on one worker: a dispose stops it after the image in progress
  const dir = await writeTinyModelPackage(join(folder, scenario), { layout: 'yolov8', size: 512, featureScale: 0.001, planted: [] })
  const engine = await createInferenceEngine({ modelDir: dir, backend: 'cpu', workers: 1, threads: 1, verify: false })
  const request = outcome(engine.detectBatch(Array.from({ length: 30 }, () => image)))
  await engine.dispose()
  console.log(JSON.stringify({ failed: [await request] }))
} else if (scenario === 'long-run') {
  // a run long enough to be caught in the middle: the model's input is 4096×4096
  const dir = await writeTinyModelPackage(join(folder, scenario), { layout: 'yolov8', size: 4096, featureScale: 0.001, planted: [] })
  // the dispose must land inside the session's run, timed from the run before; on a busy machine it may land after
  // it (the request then ran), so a few tries, each with a fresh engine
  let result = 'no try landed in a run'
  for (let attempt = 1; attempt <= 8 && result !== 'the inference engine was disposed'; attempt++) {
    const engine = await createInferenceEngine({ modelDir: dir, backend: 'cpu', workers: 1, threads: 1, verify: false })
    const { timings } = await engine.detect(image)
    const request = outcome(engine.detect(image))
    await Bun.sleep(timings.decodeMs + timings.preprocessMs + timings.inferenceMs / 2)
    // 10 ms for the worker to release its session: not enough while the run goes on
    await (engine as unknown as WorkerPool).workersForTest()[0]!.dispose(10)
    result = await request
    await engine.dispose()
  }
  console.log(JSON.stringify({ failed: [result] }))
} else {
  throw new Error(`unknown scenario ${scenario}`)
}
await Bun.sleep(1000)
console.log('alive')
