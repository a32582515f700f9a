import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { writeTinyModelPackage } from '../../scripts/make-test-models.ts'
import { createInferenceEngine, type InferenceEngine } from '../../src/inference/inference-engine.ts'
import type { ImageInput } from '../../src/inference/image-decoding.ts'
import { ImageInputError } from '../../src/inference/inference-errors.ts'
import type { DetectionOutput } from '../../src/inference/worker-protocol.ts'
import { getLogLevel, setLogLevel } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { makeTempDir } from '../support/temp.ts'

// Boxes planted near the confidence threshold, moved and scored by the convolutions' real arithmetic: what the model
// finds depends on each image's pixels, so a result put back on the wrong image, or a tensor mixed up in the stack,
// changes the boxes.
const PLANTED = Array.from({ length: 16 }, (_, i) => ({ anchor: i * 4, cx: 6 + (i % 4) * 16, cy: 6 + Math.floor(i / 4) * 16, w: 10, h: 10, classIndex: i % 3, score: 0.22 }))
const MODEL = { layout: 'yolov8' as const, size: 64, classes: 3, featureScale: 0.1, planted: PLANTED, dynamicBatch: true }
const WINDOW_MS = 1000
const MAX_BATCH = 4

let temp: Awaited<ReturnType<typeof makeTempDir>>
let images: ImageInput[]
let batched: InferenceEngine
let alone: InferenceEngine
let metrics: MetricsRegistry
let reference: DetectionOutput[]
const logLevel = getLogLevel()

const NOT_AN_IMAGE: ImageInput = { kind: 'encoded', bytes: new TextEncoder().encode('this is not an image') }
const raw = (width: number, height: number, seed: number): ImageInput => ({
  kind: 'raw', dtype: 'uint8', shape: [height, width, 3], bytes: Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * seed + (i >> 7)) % 251),
})

beforeAll(async () => {
  setLogLevel('error')
  temp = await makeTempDir('lln-batching-')
  const dir = await writeTinyModelPackage(join(temp.path, 'dynamic'), MODEL)
  const fixtures = await Promise.all(['astronaut', 'chelsea', 'coffee', 'rocket'].map((name) => Bun.file(join(import.meta.dir, '..', 'fixtures', `${name}.jpg`)).bytes()))
  images = [...fixtures.map((bytes): ImageInput => ({ kind: 'encoded', bytes })), raw(96, 64, 7), raw(50, 80, 13)]
  metrics = new MetricsRegistry()
  // a long window and a batch of 4: four concurrent images run together however slow the machine is
  batched = await createInferenceEngine({ modelDir: dir, backend: 'cpu', workers: 1, threads: 1, batchWindowMs: WINDOW_MS, maxBatch: MAX_BATCH, metrics })
  alone = await createInferenceEngine({ modelDir: dir, backend: 'cpu', workers: 1, threads: 1, batchWindowMs: 0 })
  reference = []
  for (const image of images) reference.push(await alone.detect(image))
})
afterAll(async () => {
  await Promise.all([batched?.dispose(), alone?.dispose()])
  await temp.cleanup()
  setLogLevel(logLevel)
})

/** The same detections within float tolerance (a batched run may sum in another order). */
function expectSameDetections(actual: DetectionOutput, expected: DetectionOutput): void {
  expect([actual.width, actual.height]).toEqual([expected.width, expected.height])
  expect(actual.box_detections.length).toBe(expected.box_detections.length)
  actual.box_detections.forEach((box, i) => {
    const want = expected.box_detections[i]!
    expect(box.category_name).toBe(want.category_name)
    for (const key of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(box[key] - want[key])).toBeLessThanOrEqual(1)
    expect(box.confidence).toBeCloseTo(want.confidence, 3)
  })
}

const batchSizeCount = (size: number) => {
  const line = metrics.render().split('\n').find((l) => l.includes('inference_batch_size_bucket') && l.includes(`le="${size}"`))
  return Number(line?.split(' ').pop() ?? 0)
}

describe('dynamic batching (a model with a symbolic batch dimension)', () => {
  test('the reference has detections to compare, differing between images', () => {
    expect(alone.dynamicBatch).toBe(false)
    expect(reference.every((output) => output.batchSize === 1)).toBe(true)
    expect(reference.filter((output) => output.box_detections.length > 0).length).toBeGreaterThanOrEqual(3)
    expect(new Set(reference.map((output) => JSON.stringify(output.box_detections))).size).toBeGreaterThanOrEqual(3)
  })

  test('concurrent detects run as one batch and get the results they get alone', async () => {
    expect(batched.dynamicBatch).toBe(true)
    const before = batchSizeCount(2) - batchSizeCount(1)
    const outputs = await Promise.all(images.slice(0, MAX_BATCH).map((image) => batched.detect(image)))
    outputs.forEach((output, i) => {
      expect(output.batchSize).toBe(MAX_BATCH)
      expectSameDetections(output, reference[i]!)
    })
    // the histogram counts each image by the size of its run: four images in runs larger than 2
    expect(batchSizeCount(4) - batchSizeCount(2)).toBeGreaterThanOrEqual(MAX_BATCH)
    expect(batchSizeCount(2) - batchSizeCount(1)).toBe(before)
  })

  test('more concurrent images than fit one run: batches of at most the limit, every result right', async () => {
    const many = [...images, ...images]
    const outputs = await Promise.all(many.map((image) => batched.detect(image)))
    outputs.forEach((output, i) => {
      expect(output.batchSize).toBeLessThanOrEqual(MAX_BATCH)
      expectSameDetections(output, reference[i % images.length]!)
    })
    expect(outputs.some((output) => output.batchSize! > 1)).toBe(true)
  })

  test('a bad image among concurrent ones fails only its own request', async () => {
    const requests = [batched.detect(images[0]!), batched.detect(NOT_AN_IMAGE), batched.detect(images[1]!), batched.detect(images[4]!)]
    const settled = await Promise.allSettled(requests)
    expect(settled[1]!.status).toBe('rejected')
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(ImageInputError)
    for (const [at, index] of [[0, 0], [2, 1], [3, 4]] as const) {
      const result = settled[at]!
      expect(result.status).toBe('fulfilled')
      const output = (result as PromiseFulfilledResult<DetectionOutput>).value
      expect(output.batchSize).toBe(3)
      expectSameDetections(output, reference[index]!)
    }
  })

  test('detectBatch feeds the batch directly; a bad image fails that call and names it, concurrent detects go on', async () => {
    const outputs = await batched.detectBatch(images.slice(0, MAX_BATCH))
    outputs.forEach((output, i) => {
      expect(output.batchSize).toBe(MAX_BATCH)
      expectSameDetections(output, reference[i]!)
    })
    const [mixed, single] = await Promise.allSettled([batched.detectBatch([images[2]!, NOT_AN_IMAGE, images[3]!]), batched.detect(images[5]!)])
    expect(mixed.status).toBe('rejected')
    expect((mixed as PromiseRejectedResult).reason).toBeInstanceOf(ImageInputError)
    expect(((mixed as PromiseRejectedResult).reason as Error).message).toStartWith('image 1: ')
    expect(single.status).toBe('fulfilled')
    expectSameDetections((single as PromiseFulfilledResult<DetectionOutput>).value, reference[5]!)
    // the engine serves on
    expectSameDetections(await batched.detect(images[3]!), reference[3]!)
  })

  test('keepDecoded in a batch: the pixels of a raw image come back, a JPEG does not', async () => {
    const [jpeg, rawImage] = await batched.detectBatch([images[0]!, images[4]!], { keepDecoded: true })
    expect(jpeg!.decoded).toBeUndefined()
    expect(rawImage!.batchSize).toBe(2)
    expect(rawImage!.decoded).toMatchObject({ width: 96, height: 64 })
    expect(Buffer.from(rawImage!.decoded!.data).equals(Buffer.from(images[4]!.bytes))).toBe(true)
  })
})

/** Concurrent images each run alone (batch size 1), with their per-image results. */
async function expectConcurrentImagesAlone(engine: InferenceEngine): Promise<void> {
  const outputs = await Promise.all(images.slice(0, MAX_BATCH).map((image) => engine.detect(image)))
  outputs.forEach((output, i) => {
    expect(output.batchSize).toBe(1)
    expectSameDetections(output, reference[i]!)
  })
}

/** An engine that does not batch: it says so, and concurrent images run alone; the engine is disposed after. */
async function expectEachImageAlone(engine: InferenceEngine): Promise<void> {
  try {
    expect(engine.dynamicBatch).toBe(false)
    await expectConcurrentImagesAlone(engine)
  } finally {
    await engine.dispose()
  }
}

describe('images that run alone', () => {
  test('unless asked for, a dynamic-batch model on the CPU backend runs each image alone (batching pays on GPUs)', async () => {
    const engine = await createInferenceEngine({ modelDir: join(temp.path, 'dynamic'), backend: 'cpu', workers: 1, threads: 1 })
    await expectEachImageAlone(engine)
  })

  test('a fixed batch of 1 runs each image alone, as before', async () => {
    const dir = await writeTinyModelPackage(join(temp.path, 'fixed'), { ...MODEL, dynamicBatch: false })
    const engine = await createInferenceEngine({ modelDir: dir, backend: 'cpu', workers: 1, threads: 1, batchWindowMs: WINDOW_MS, maxBatch: MAX_BATCH })
    await expectEachImageAlone(engine)
  })

  test('a model that declares a dynamic batch but fixes it inside: the batch falls back to one run per image, and stays so', async () => {
    const dir = await writeTinyModelPackage(join(temp.path, 'careless'), { ...MODEL, batchFixedInside: true })
    const engine = await createInferenceEngine({ modelDir: dir, backend: 'cpu', workers: 1, threads: 1, batchWindowMs: WINDOW_MS, maxBatch: MAX_BATCH })
    try {
      expect(engine.dynamicBatch).toBe(true)
      for (let round = 0; round < 2; round++) await expectConcurrentImagesAlone(engine)
    } finally {
      await engine.dispose()
    }
  })
})
