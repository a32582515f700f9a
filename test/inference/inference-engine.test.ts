import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { writeTinyModelPackage, type PlantedBox } from '../../scripts/make-test-models.ts'
import { createInferenceEngine, type InferenceEngine } from '../../src/inference/inference-engine.ts'
import { decodeImage } from '../../src/inference/image-decoding.ts'
import { ImageInputError, InferenceUnavailableError, ModelPackageError, NoBackendError } from '../../src/inference/inference-errors.ts'
import { setLogLevel, setLogSink, getLogLevel } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { makeTempDir } from '../support/temp.ts'

// In 64×64 network pixels: P2 overlaps P1 (IoU 0.88, same class) and must be suppressed.
const PLANTED: PlantedBox[] = [
  { anchor: 5, cx: 20, cy: 24, w: 16, h: 12, classIndex: 0, score: 0.9 },
  { anchor: 9, cx: 21, cy: 24, w: 16, h: 12, classIndex: 0, score: 0.6 },
  { anchor: 20, cx: 44, cy: 40, w: 10, h: 20, classIndex: 1, score: 0.8 },
]
// A 128×64 image letterboxed into 64×64: scale 0.5, 16 px of padding above and below.
const RAW = { kind: 'raw' as const, bytes: new Uint8Array(128 * 64).fill(90), dtype: 'uint8', shape: [64, 128] }
const EXPECTED = [
  { category_name: 'class0', category_id: 'class-0', model_name: '1.0', x: 24, y: 4, width: 32, height: 24 },
  // (39,30)-(49,50) → (78,28)-(98,68), clamped to the 64 px image height
  { category_name: 'class1', category_id: 'class-1', model_name: '1.0', x: 78, y: 28, width: 20, height: 36 },
]

let temp: Awaited<ReturnType<typeof makeTempDir>>
let v8Dir: string
let v5Dir: string
let engine: InferenceEngine
let astronaut: Uint8Array

beforeAll(async () => {
  temp = await makeTempDir('lln-engine-')
  v8Dir = await writeTinyModelPackage(join(temp.path, 'v8'), { layout: 'yolov8', featureScale: 0.001, planted: PLANTED })
  v5Dir = await writeTinyModelPackage(join(temp.path, 'v5'), { layout: 'yolov5', featureScale: 0.001, planted: PLANTED })
  astronaut = await Bun.file(join(import.meta.dir, '..', 'fixtures', 'astronaut.jpg')).bytes()
  engine = await createInferenceEngine({ modelDir: v8Dir, backend: 'cpu', threads: 1 })
})
afterAll(async () => {
  await engine?.dispose()
  await temp.cleanup()
})

function expectPlanted(output: { box_detections: { confidence: number }[] }): void {
  expect(output.box_detections).toEqual(EXPECTED.map((e) => expect.objectContaining(e)))
  expect(output.box_detections[0]!.confidence).toBeCloseTo(0.9, 1)
  expect(output.box_detections[1]!.confidence).toBeCloseTo(0.8, 1)
}

describe('detections through the worker', () => {
  test('YOLOv8 layout: planted boxes come back in source pixels after NMS', async () => {
    expect(engine.backend).toBe('cpu')
    expect(engine.modelInfo).toMatchObject({ version: '1.0', organization: 'tests' })
    expect(engine.inputSize).toEqual({ width: 64, height: 64 })
    const output = await engine.detect(RAW)
    expectPlanted(output)
    expect(output).toMatchObject({ width: 128, height: 64, point_detections: [], segmentation_detections: [], classification_detections: [] })
    for (const value of Object.values(output.timings)) expect(value).toBeGreaterThanOrEqual(0)
  })

  test('YOLOv5 layout gives the same detections; wasm gives the same as cpu', async () => {
    for (const [modelDir, backend] of [[v5Dir, 'cpu'], [v8Dir, 'wasm']] as const) {
      const other = await createInferenceEngine({ modelDir, backend, threads: 1 })
      try {
        expect(other.backend).toBe(backend)
        expectPlanted(await other.detect(RAW))
      } finally {
        await other.dispose()
      }
    }
  })

  test('concurrent detect calls and batches all get their own answers', async () => {
    const square = { kind: 'raw' as const, bytes: new Uint8Array(64 * 64 * 3), dtype: 'uint8', shape: [64, 64, 3] }
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => engine.detect(i % 3 === 0 ? { kind: 'encoded', bytes: astronaut } : i % 3 === 1 ? RAW : square)))
    results.forEach((r, i) => expect([r.width, r.height]).toEqual(i % 3 === 0 ? [512, 512] : i % 3 === 1 ? [128, 64] : [64, 64]))
    // 64×64 maps 1:1: the planted box (12,18)-(28,30) stays where it is
    expect(results[2]!.box_detections[0]).toMatchObject({ x: 12, y: 18, width: 16, height: 12 })
    expect(results[0]!.box_detections[0]).toMatchObject({ x: 96, y: 144, width: 128, height: 96 })
    const batch = await engine.detectBatch([RAW, square])
    expect(batch.map((b) => b.width)).toEqual([128, 64])
    expect(await engine.detectBatch([])).toEqual([])
  })

  test('bytes in shared memory (camera frames) are read where they are and detect as a copy would', async () => {
    const square = new Uint8Array(64 * 64 * 3)
    const shared = new Uint8Array(new SharedArrayBuffer(square.length))
    shared.set(square)
    const [fromShared, fromCopy] = await Promise.all([
      engine.detect({ kind: 'raw', bytes: shared, dtype: 'uint8', shape: [64, 64, 3] }),
      engine.detect({ kind: 'raw', bytes: square, dtype: 'uint8', shape: [64, 64, 3] }),
    ])
    expect(fromShared.box_detections).toEqual(fromCopy.box_detections)
    // nothing was transferred away from the caller
    expect(shared.byteLength).toBe(64 * 64 * 3)
  })

  test('the caller keeps its bytes: the engine copies before transferring', async () => {
    const bytes = astronaut.slice()
    await engine.detect({ kind: 'encoded', bytes })
    expect(bytes.byteLength).toBe(astronaut.byteLength)
    expect(bytes[100]).toBe(astronaut[100]!)
    // a Buffer (what socket.io and fs hand over): its slice() is a view, so it must not be the copy
    const buffer = Buffer.from(astronaut)
    await engine.detect({ kind: 'encoded', bytes: buffer })
    expect(buffer.byteLength).toBe(astronaut.byteLength)
    expect(buffer[100]).toBe(astronaut[100]!)
  })

  test('a Node Buffer (socket.io hands attachments over as Buffers) is copied too: neither it nor its neighbours are detached', async () => {
    // Buffer.prototype.slice is a view, not a copy: transferring its buffer would empty the caller's bytes
    // and every other view of the same memory (Buffers share pooled memory)
    const memory = new ArrayBuffer(astronaut.byteLength + 512)
    const neighbour = new Uint8Array(memory, 0, 512).fill(7)
    const bytes = Buffer.from(memory, 512, astronaut.byteLength)
    bytes.set(astronaut)
    expect((await engine.detect({ kind: 'encoded', bytes })).width).toBeGreaterThan(0)
    expect(bytes.byteLength).toBe(astronaut.byteLength)
    expect(bytes.equals(astronaut)).toBe(true)
    expect(neighbour.byteLength).toBe(512)
    expect(neighbour[511]).toBe(7)
  })

  test('keepDecoded: a PNG or raw array comes back decoded, as the model saw it; a JPEG never does', async () => {
    const png = await new Bun.Image(astronaut).png().bytes()
    const [fromPng, fromRaw, fromJpeg] = await engine.detectBatch([{ kind: 'encoded', bytes: png }, RAW, { kind: 'encoded', bytes: astronaut }], { keepDecoded: true })
    const pngPixels = await decodeImage({ kind: 'encoded', bytes: png })
    expect(fromPng!.decoded).toEqual({ width: pngPixels.width, height: pngPixels.height, data: pngPixels.data })
    expect(fromRaw!.decoded).toEqual({ width: 128, height: 64, data: new Uint8Array(128 * 64 * 3).fill(90) })
    expectPlanted(fromRaw!)
    expect(fromJpeg!.decoded).toBeUndefined()
    expect((await engine.detect(RAW)).decoded).toBeUndefined()
    expect((await engine.detect({ kind: 'encoded', bytes: png }, { keepDecoded: true })).decoded?.data).toEqual(pngPixels.data)
  })

  test('the main thread keeps running while the worker decodes and infers', async () => {
    const big = { kind: 'raw' as const, bytes: new Uint8Array(1600 * 1200 * 3), dtype: 'uint8', shape: [1200, 1600, 3] }
    let ticks = 0
    let running = true
    const tick = () => { ticks++; if (running) setTimeout(tick, 0) }
    tick()
    await engine.detectBatch(Array.from({ length: 8 }, () => big))
    running = false
    expect(ticks).toBeGreaterThan(1)
  })
})

describe('failures are typed, logged, counted, and leave the engine usable', () => {
  test('corrupt and truncated images → ImageInputError, then the next image works', async () => {
    const corrupt = astronaut.slice()
    for (let i = 700; i < 6000; i++) corrupt[i] = (i * 13) & 0xff
    for (const bytes of [corrupt, astronaut.subarray(0, 5000)]) {
      const error = await engine.detect({ kind: 'encoded', bytes }).catch((e: Error) => e)
      expect(error).toBeInstanceOf(ImageInputError)
    }
    const wrongShape = await engine.detect({ kind: 'raw', bytes: new Uint8Array(10), dtype: 'uint8', shape: [2, 2, 3] }).catch((e: Error) => e)
    expect(wrongShape).toBeInstanceOf(ImageInputError)
    expect((wrongShape as Error).message).toContain('needs 12 bytes, got 10')
    const batchError = await engine.detectBatch([RAW, { kind: 'encoded', bytes: new Uint8Array([1, 2, 3]) }]).catch((e: Error) => e)
    expect(batchError).toBeInstanceOf(ImageInputError)
    expect((batchError as Error).message).toStartWith('image 1:')
    const notBytes = await engine.detect({ kind: 'encoded', bytes: [1, 2, 3] as unknown as Uint8Array }).catch((e: Error) => e)
    expect(notBytes).toBeInstanceOf(ImageInputError)
    expectPlanted(await engine.detect(RAW))
  })

  test('a full queue refuses more work with InferenceUnavailableError; metrics count images and failures', async () => {
    const metrics = new MetricsRegistry()
    const small = await createInferenceEngine({ modelDir: v8Dir, backend: 'cpu', threads: 1, maxPendingImages: 2, metrics, verify: false })
    try {
      const accepted = [small.detect(RAW), small.detect(RAW)]
      const refused = await small.detect(RAW).catch((e: Error) => e)
      expect(refused).toBeInstanceOf(InferenceUnavailableError)
      expect((refused as Error).message).toContain('queue is full')
      await Promise.all(accepted)
      await small.detect({ kind: 'encoded', bytes: new Uint8Array([0xff, 0xd8, 0xff]) }).catch(() => undefined)
      const text = metrics.render()
      expect(text).toContain('inference_images_total{backend="cpu"} 2')
      expect(text).toContain('inference_failures_total{kind="unavailable"} 1')
      expect(text).toContain('inference_failures_total{kind="image_input"} 1')
      expect(text).toContain('inference_stage_seconds_count{stage="inference"} 2')
    } finally {
      await small.dispose()
    }
  })

  test('after dispose, detect is refused; dispose twice is harmless', async () => {
    const short = await createInferenceEngine({ modelDir: v8Dir, backend: 'cpu', threads: 1, verify: false })
    const inFlight = short.detect(RAW)
    await short.dispose()
    await short.dispose()
    // an image already queued either finished before the dispose or fails; never hangs
    await inFlight.then(() => undefined, (e: Error) => expect(e).toBeInstanceOf(InferenceUnavailableError))
    await expect(short.detect(RAW)).rejects.toBeInstanceOf(InferenceUnavailableError)
  })

  test('an explicit backend that cannot run → NoBackendError naming it and its reason; the reason is logged', async () => {
    const lines: string[] = []
    const previousSink = setLogSink((line) => lines.push(line))
    const previousLevel = getLogLevel()
    setLogLevel('info')
    try {
      const error = await createInferenceEngine({ modelDir: v8Dir, backend: 'cuda' }).catch((e: Error) => e)
      expect(error).toBeInstanceOf(NoBackendError)
      expect((error as NoBackendError).rejected).toEqual([{ backend: 'cuda', reason: expect.stringContaining('CUDA provider libraries') }])
      expect((error as Error).message).toContain('cuda: CUDA provider libraries')
      expect(lines.some((l) => l.includes('inference engine failed to start') && l.includes('cuda'))).toBe(true)
    } finally {
      setLogSink(previousSink)
      setLogLevel(previousLevel)
    }
  })

  test('auto logs every rejected backend with its reason and the chosen one', async () => {
    if (process.env.VK_ICD_FILENAMES) return // webgpu would be chosen; backends.test.ts covers that
    const lines: string[] = []
    const previousSink = setLogSink((line) => lines.push(line))
    const previousLevel = getLogLevel()
    setLogLevel('info')
    try {
      const auto = await createInferenceEngine({ modelDir: v8Dir, threads: 1 })
      await auto.dispose()
      expect(auto.backend).toBe('cpu')
      const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(records.filter((r) => r.msg === 'inference backend rejected').flatMap((r) => r.backends)).toEqual(['cuda', 'webgpu-native', 'webgpu'])
      expect(records.find((r) => r.msg === 'inference backend chosen')).toMatchObject({ backend: 'cpu', model: '1.0' })
    } finally {
      setLogSink(previousSink)
      setLogLevel(previousLevel)
    }
  })

  test('fastest times every backend that works on the model and keeps the quickest; the others are named with their times', async () => {
    const fastest = await createInferenceEngine({ modelDir: v8Dir, backend: 'fastest', threads: 1 })
    try {
      expectPlanted(await fastest.detect(RAW))
      const slower = fastest.rejected.filter((r) => r.reason.startsWith('slower on this model'))
      // cpu and wasm work everywhere, so at least one of them was timed and lost
      const timed = [fastest.backend, ...slower.map((r) => r.backend)]
      expect(timed).toContain('cpu')
      expect(timed).toContain('wasm')
      for (const { reason } of slower) {
        const [, loserMs, winnerMs] = /: ([\d.]+) ms per run, \S+ ([\d.]+) ms/.exec(reason)!
        expect(Number(loserMs)).toBeGreaterThanOrEqual(Number(winnerMs))
      }
      // the ones that cannot run here keep their reason
      expect(fastest.rejected.find((r) => r.backend === 'cuda')?.reason).not.toContain('slower')
    } finally {
      await fastest.dispose()
    }
  })

  test('a bad model folder → ModelPackageError; an unknown backend name → a clear error', async () => {
    await expect(createInferenceEngine({ modelDir: join(temp.path, 'nothing-here') })).rejects.toBeInstanceOf(ModelPackageError)
    const badJson = await writeTinyModelPackage(join(temp.path, 'bad-json'), { layout: 'yolov8', modelJson: { id: 'x' } })
    const error = await createInferenceEngine({ modelDir: badJson, backend: 'cpu' }).catch((e: Error) => e)
    expect(error).toBeInstanceOf(ModelPackageError)
    expect((error as Error).message).toContain('/version')
    await expect(createInferenceEngine({ modelDir: v8Dir, backend: 'tpu' as never })).rejects.toThrow('unknown inference backend')
  })
})
