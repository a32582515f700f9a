import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeTinyModelPackage, type PlantedBox } from '../../scripts/make-test-models.ts'
import { createInferenceEngine, type InferenceEngine } from '../../src/inference/inference-engine.ts'
import { builtinModelDir } from '../../src/inference/builtin-model.ts'
import { ImageInputError, InferenceUnavailableError } from '../../src/inference/inference-errors.ts'
import type { WorkerPool } from '../../src/inference/worker-pool.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

// Real workers with real ONNX sessions. A crash is a worker thread ended abruptly (terminateAsIfCrashed): the main
// thread sees the same close event as when a worker dies on its own.
const PLANTED: PlantedBox[] = [
  { anchor: 5, cx: 20, cy: 24, w: 16, h: 12, classIndex: 0, score: 0.9 },
  { anchor: 20, cx: 44, cy: 40, w: 10, h: 20, classIndex: 1, score: 0.8 },
]
/** Large enough that a request is still in its worker when the test ends that worker. */
const BIG = { kind: 'raw' as const, bytes: new Uint8Array(1600 * 1200 * 3).fill(60), dtype: 'uint8', shape: [1200, 1600, 3] }

let temp: Awaited<ReturnType<typeof makeTempDir>>
let tinyDir: string
let astronaut: Uint8Array
let coffee: Uint8Array

beforeAll(async () => {
  temp = await makeTempDir('lln-pool-')
  tinyDir = await writeTinyModelPackage(join(temp.path, 'tiny'), { layout: 'yolov8', featureScale: 0.001, planted: PLANTED })
  astronaut = await Bun.file(join(import.meta.dir, '..', 'fixtures', 'astronaut.jpg')).bytes()
  coffee = await Bun.file(join(import.meta.dir, '..', 'fixtures', 'coffee.jpg')).bytes()
})
afterAll(async () => {
  await temp.cleanup()
})

const poolOf = (engine: InferenceEngine) => engine as unknown as WorkerPool
const withoutTimings = <T extends { timings: unknown }>({ timings: _, ...rest }: T) => rest

describe('a pool of workers', () => {
  test('gives the same detections as one worker, for the built-in model on real photos, under concurrency', async () => {
    const single = await createInferenceEngine({ modelDir: builtinModelDir(), backend: 'cpu', workers: 1, threads: 1 })
    const pool = await createInferenceEngine({ modelDir: builtinModelDir(), backend: 'cpu', workers: 3, threads: 1 })
    try {
      expect(single.pool).toMatchObject({ workers: 1, liveWorkers: 1 })
      expect(pool.pool).toMatchObject({ workers: 3, threadsPerWorker: 1, liveWorkers: 3, reason: 'INFERENCE_WORKERS and INFERENCE_THREADS' })
      const images = Array.from({ length: 12 }, (_, i) => ({ kind: 'encoded' as const, bytes: i % 2 ? astronaut : coffee }))
      const expected = await Promise.all(images.map((image) => single.detect(image)))
      expect(expected[1]!.box_detections.length).toBeGreaterThan(0)
      const fromPool = await Promise.all(images.map((image) => pool.detect(image)))
      expect(fromPool.map(withoutTimings)).toEqual(expected.map(withoutTimings))
      expect((await pool.detectBatch(images.slice(0, 4))).map(withoutTimings)).toEqual(expected.slice(0, 4).map(withoutTimings))
    } finally {
      await Promise.all([single.dispose(), pool.dispose()])
    }
  })

  test('each request goes to the least busy worker', async () => {
    const engine = await createInferenceEngine({ modelDir: tinyDir, backend: 'cpu', workers: 3, threads: 1, verify: false })
    try {
      const workers = poolOf(engine).workersForTest()
      const requests = [engine.detect(BIG), engine.detect(BIG), engine.detect(BIG)]
      expect(workers.map((w) => w.busyImages)).toEqual([1, 1, 1])
      requests.push(engine.detect(BIG), engine.detect(BIG))
      expect(workers.map((w) => w.busyImages)).toEqual([2, 2, 1])
      await Promise.all(requests)
      expect(workers.map((w) => w.busyImages)).toEqual([0, 0, 0])
    } finally {
      await engine.dispose()
    }
  })

  test('a batch is spread over the workers, each image to the least busy, and answered in its order', async () => {
    const engine = await createInferenceEngine({ modelDir: tinyDir, backend: 'cpu', workers: 3, threads: 1, verify: false })
    try {
      const workers = poolOf(engine).workersForTest()
      const single = engine.detect(BIG)
      const batch = engine.detectBatch([BIG, BIG, BIG, BIG, BIG])
      // the first worker holds the single: the batch's five images make every worker's load 2
      expect(workers.map((w) => w.busyImages)).toEqual([2, 2, 2])
      await Promise.all([single, batch])
      const small = (value: number) => ({ kind: 'raw' as const, bytes: new Uint8Array(64 * 48 * 3).fill(value), dtype: 'uint8', shape: [48, 64, 3] })
      const images = [small(0), small(250), small(0), { kind: 'encoded' as const, bytes: astronaut }, small(250)]
      const oneByOne = await Promise.all(images.map((image) => engine.detect(image)))
      expect((await engine.detectBatch(images)).map(withoutTimings)).toEqual(oneByOne.map(withoutTimings))
      // a bad image fails the batch only once every share has settled: nothing is left counted as pending
      const bad = { kind: 'encoded' as const, bytes: new Uint8Array([0xff, 0xd8, 0xff, 0x00]) }
      const failure = await engine.detectBatch([BIG, bad, BIG, BIG]).catch((error: unknown) => error)
      expect(failure).toBeInstanceOf(ImageInputError)
      expect((failure as Error).message).toStartWith('image 1: the JPEG image is damaged')
      expect((failure as ImageInputError).imageIndex).toBe(1)
      // bad images on two workers (shares [0, 3], [1, 4], [2, 5]): the first of the whole request is named
      const twoBad = await engine.detectBatch([BIG, BIG, bad, BIG, bad, BIG]).catch((error: unknown) => error)
      expect((twoBad as Error).message).toStartWith('image 2: ')
      expect(workers.map((w) => w.busyImages)).toEqual([0, 0, 0])
    } finally {
      await engine.dispose()
    }
  })

  test('sized automatically: the model is timed at load, the plan is kept, and the queue limit covers the whole pool', async () => {
    const engine = await createInferenceEngine({ modelDir: tinyDir, backend: 'cpu', usableCores: 2, maxPendingImages: 3, verify: false })
    try {
      const { pool } = engine
      expect(pool.usableCores).toBe(2)
      expect(pool.measurement).toMatchObject({ threads: 2, runMs: expect.any(Number), singleThreadRunMs: expect.any(Number) })
      expect(pool.workers * pool.threadsPerWorker).toBe(2)
      expect(pool.liveWorkers).toBe(pool.workers)
      const accepted = [engine.detect(BIG), engine.detectBatch([BIG, BIG])]
      await expect(engine.detect(BIG)).rejects.toThrow('the inference queue is full (3 images waiting, limit 3)')
      await Promise.all(accepted)
    } finally {
      await engine.dispose()
    }
  })

  test('planned for 8 cores: the workers load a few at a time and all serve', async () => {
    const engine = await createInferenceEngine({ modelDir: tinyDir, backend: 'cpu', usableCores: 8, verify: false })
    try {
      const { pool } = engine
      // 4 threads compared with one; either 2 workers × 4 threads or 8 × 1
      expect(pool.measurement?.threads).toBe(4)
      expect(pool.workers * pool.threadsPerWorker).toBe(8)
      expect(pool.liveWorkers).toBe(pool.workers)
      const requests = Array.from({ length: pool.workers }, () => engine.detect(BIG))
      expect(poolOf(engine).workersForTest().map((w) => w.busyImages)).toEqual(Array(pool.workers).fill(1))
      expect((await Promise.all(requests)).length).toBe(pool.workers)
    } finally {
      await engine.dispose()
    }
  })
})

describe('an image that cannot be sent to a worker', () => {
  test('(a property structured clone refuses) is an ImageInputError, and leaves nothing counted as in flight', async () => {
    const engine = await createInferenceEngine({ modelDir: tinyDir, backend: 'cpu', workers: 1, threads: 1, verify: false })
    try {
      const unsendable = { ...BIG, note: () => 'a function' } as unknown as typeof BIG
      const error = await engine.detect(unsendable).catch((e: Error) => e)
      expect(error).toBeInstanceOf(ImageInputError)
      expect((error as Error).message).toContain('cannot be sent to the inference worker')
      expect(poolOf(engine).workersForTest()[0]!.busyImages).toBe(0)
      expect((await engine.detect(BIG)).width).toBe(1600)
    } finally {
      await engine.dispose()
    }
  })
})

describe('a crashed worker', () => {
  test('is replaced; the requests it held run again on another worker and none fails or hangs', async () => {
    const metrics = new MetricsRegistry()
    const engine = await createInferenceEngine({ modelDir: tinyDir, backend: 'cpu', workers: 3, threads: 1, verify: false, metrics })
    try {
      const pool = poolOf(engine)
      const requests = Array.from({ length: 12 }, () => engine.detect(BIG))
      const doomed = pool.workersForTest()[0]!
      expect(doomed.busyImages).toBe(4)
      doomed.terminateAsIfCrashed()
      const outputs = await Promise.all(requests)
      expect(outputs.map((o) => o.width)).toEqual(Array(12).fill(1600))
      await waitFor(() => engine.pool.liveWorkers === 3, 30_000, 'the replacement worker')
      expect(pool.workersForTest()).not.toContain(doomed)
      const text = metrics.render()
      expect(text).toContain('inference_worker_crashes_total 1')
      expect(text).toMatch(/inference_retries_total\{result="ok"\} [1-4]\b/)
      expect(text).not.toContain('inference_failures_total{')
      // the replacement serves
      expect((await Promise.all(Array.from({ length: 6 }, () => engine.detect(BIG)))).length).toBe(6)
    } finally {
      await engine.dispose()
    }
  })

  test('the only worker: its requests wait for the replacement and are answered', async () => {
    const metrics = new MetricsRegistry()
    const engine = await createInferenceEngine({ modelDir: tinyDir, backend: 'cpu', workers: 1, threads: 1, verify: false, metrics })
    try {
      const requests = [engine.detect(BIG), engine.detectBatch([BIG, BIG])]
      const doomed = poolOf(engine).workersForTest()[0]!
      doomed.terminateAsIfCrashed()
      expect((await Promise.all(requests)).flat().length).toBe(3)
      expect(engine.pool.liveWorkers).toBe(1)
      expect(poolOf(engine).workersForTest()).not.toContain(doomed)
      expect(metrics.render()).toContain('inference_worker_crashes_total 1')
    } finally {
      await engine.dispose()
    }
  })

  test('when no replacement can load (the model folder is gone), requests get a clear InferenceUnavailableError', async () => {
    const doomedDir = await writeTinyModelPackage(join(temp.path, 'doomed'), { layout: 'yolov8', featureScale: 0.001, planted: PLANTED })
    const engine = await createInferenceEngine({ modelDir: doomedDir, backend: 'cpu', workers: 1, threads: 1, verify: false })
    try {
      await rm(doomedDir, { recursive: true })
      const inFlight = engine.detect(BIG)
      poolOf(engine).workersForTest()[0]!.terminateAsIfCrashed()
      const error = await inFlight.catch((e: Error) => e)
      expect(error).toBeInstanceOf(InferenceUnavailableError)
      expect((error as Error).message).toContain('no inference worker is running')
      await expect(engine.detect(BIG)).rejects.toThrow('no inference worker is running')
    } finally {
      await engine.dispose()
    }
  })

  test('a replacement that failed to load is tried again: once the model folder is back, the pool serves again', async () => {
    const comebackDir = join(temp.path, 'comeback')
    await writeTinyModelPackage(comebackDir, { layout: 'yolov8', featureScale: 0.001, planted: PLANTED })
    const engine = await createInferenceEngine({
      modelDir: comebackDir, backend: 'cpu', workers: 1, threads: 1, verify: false, metrics: new MetricsRegistry(),
      replacementRetry: { initialMs: 100, maxMs: 200 },
    })
    try {
      const expected = await engine.detect(BIG)
      await rm(comebackDir, { recursive: true })
      poolOf(engine).workersForTest()[0]!.terminateAsIfCrashed()
      await expect(engine.detect(BIG)).rejects.toThrow('no inference worker is running')
      await writeTinyModelPackage(comebackDir, { layout: 'yolov8', featureScale: 0.001, planted: PLANTED })
      await waitFor(() => engine.pool.liveWorkers === 1, 30_000, 'a replacement once the model is back')
      expect((await engine.detect(BIG)).box_detections).toEqual(expected.box_detections)
    } finally {
      await engine.dispose()
    }
  })

  test('a pool being disposed does not replace its workers, and its requests end', async () => {
    const engine = await createInferenceEngine({ modelDir: tinyDir, backend: 'cpu', workers: 2, threads: 1, verify: false })
    const requests = [engine.detect(BIG), engine.detect(BIG)].map((r) => r.then(() => 'ok', (e: Error) => e.name))
    await engine.dispose()
    expect(engine.pool.liveWorkers).toBe(0)
    // each was running on its own idle worker when the dispose came: a run in progress finishes
    expect(await Promise.all(requests)).toEqual(['ok', 'ok'])
    await expect(engine.detect(BIG)).rejects.toBeInstanceOf(InferenceUnavailableError)
  })
})
