import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { Transformer } from '@napi-rs/image'
import { decodeImage, type ImageInput } from '../../src/inference/image-decoding.ts'
import { decodeImageInWorker, ImageDecodePool } from '../../src/inference/image-decode-pool.ts'
import { ImageInputError, InferenceUnavailableError } from '../../src/inference/inference-errors.ts'

let photo: ImageInput
let big: ImageInput
const pool = new ImageDecodePool({ size: 2 })

beforeAll(async () => {
  const bytes = await Bun.file(join(import.meta.dir, '..', 'fixtures', 'astronaut.jpg')).bytes()
  photo = { kind: 'encoded', bytes }
  // 12 MP: tens of milliseconds to decode on any machine
  big = { kind: 'encoded', bytes: new Uint8Array(await new Transformer(bytes).resize(4000, 3000).jpeg(90)) }
})
afterAll(() => pool.dispose())

/** Whether a 0 ms timer set just after the decode started fires before the decode's result arrives. */
async function timerFiresDuring(decode: () => Promise<unknown>): Promise<boolean> {
  const order: string[] = []
  const decoding = decode().then(() => order.push('decoded'))
  await new Promise((resolve) => setTimeout(resolve, 0))
  order.push('timer')
  await decoding
  return order[0] === 'timer'
}

describe('decoding in a pool of workers', () => {
  test('the same pixels as decodeImage, for a JPEG and a raw array; the caller keeps its bytes', async () => {
    const expected = await decodeImage(photo)
    const decoded = await pool.decode(photo)
    expect([decoded.width, decoded.height]).toEqual([expected.width, expected.height])
    expect(Buffer.from(decoded.data).equals(Buffer.from(expected.data))).toBe(true)
    expect(photo.bytes.length).toBeGreaterThan(0)
    const raw: ImageInput = { kind: 'raw', bytes: Uint8Array.from({ length: 4 * 3 * 4 }, (_, i) => i * 5), dtype: 'uint8', shape: [3, 4, 4] }
    expect(await pool.decode(raw)).toEqual(await decodeImage(raw))
  })

  test('a bad image is an ImageInputError, as on the main thread; the pool serves on', async () => {
    const bad: ImageInput = { kind: 'encoded', bytes: new TextEncoder().encode('not an image') }
    await expect(pool.decode(bad)).rejects.toBeInstanceOf(ImageInputError)
    await expect(pool.decode(big, { maxPixels: 1_000_000 })).rejects.toThrow('pixels')
    await expect(pool.decode({ kind: 'nope' } as never)).rejects.toBeInstanceOf(ImageInputError)
    expect((await pool.decode(photo)).width).toBe(512)
  })

  test('the event loop stays free while a large image decodes (on the main thread it does not)', async () => {
    await decodeImage(photo) // the native decoder is loaded: what remains of decodeImage runs without yielding
    expect(await timerFiresDuring(() => decodeImage(big))).toBe(false)
    expect(await timerFiresDuring(() => pool.decode(big))).toBe(true)
    expect(await timerFiresDuring(() => decodeImageInWorker(big))).toBe(true)
  })

  test('workers start on demand, up to the pool size, and concurrent decodes all finish', async () => {
    const fresh = new ImageDecodePool({ size: 2 })
    try {
      expect(fresh.started).toBe(0)
      const outputs = await Promise.all(Array.from({ length: 5 }, () => fresh.decode(photo)))
      expect(outputs.every((image) => image.width === 512 && image.height === 512)).toBe(true)
      expect(fresh.started).toBe(2)
    } finally {
      await fresh.dispose()
    }
    await expect(fresh.decode(photo)).rejects.toBeInstanceOf(InferenceUnavailableError)
  })
})
