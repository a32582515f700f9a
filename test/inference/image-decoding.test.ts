import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { decodeImage } from '../../src/inference/image-decoding.ts'
import { readImageHeader } from '../../src/inference/image-header.ts'
import { ImageInputError } from '../../src/inference/inference-errors.ts'
import { jpegClaimingSize, pngBomb } from '../support/image-bombs.ts'
import { encodePng } from './png-writer.ts'

const fixture = (name: string) => Bun.file(join(import.meta.dir, '..', 'fixtures', name)).bytes()

async function expectImageError(promise: Promise<unknown>, fragment: string): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ImageInputError)
  expect((error as Error).message).toContain(fragment)
}

describe('encoded images', () => {
  test('the native decoder agrees with jpeg-js (the oracle) on a real photo', async () => {
    const bytes = await fixture('astronaut.jpg')
    const native = await decodeImage({ kind: 'encoded', bytes })
    const portable = await decodeImage({ kind: 'encoded', bytes }, 'portable')
    expect([native.width, native.height, native.data.length]).toEqual([512, 512, 512 * 512 * 3])
    expect([portable.width, portable.height]).toEqual([512, 512])
    let total = 0
    for (let i = 0; i < native.data.length; i++) total += Math.abs(native.data[i]! - portable.data[i]!)
    // IDCT and chroma upsampling differ slightly between libraries, never by much
    expect(total / native.data.length).toBeLessThan(2)
  })

  test('a PNG with alpha keeps its colours and drops the alpha channel', async () => {
    const rgba = Uint8Array.from([255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 128, 10, 20, 30, 40])
    const image = await decodeImage({ kind: 'encoded', bytes: encodePng(2, 2, 4, rgba) })
    expect(image).toEqual({ width: 2, height: 2, data: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]) })
  })

  test('gray PNGs (8-bit, 16-bit, with alpha) become gray RGB', async () => {
    const gray8 = await decodeImage({ kind: 'encoded', bytes: encodePng(3, 1, 1, Uint8Array.from([0, 128, 255])) })
    expect(Array.from(gray8.data)).toEqual([0, 0, 0, 128, 128, 128, 255, 255, 255])
    const gray16 = await decodeImage({ kind: 'encoded', bytes: encodePng(2, 1, 1, Uint8Array.from([0x12, 0x34, 0xff, 0xff]), 16) })
    expect(Array.from(gray16.data)).toEqual([0x12, 0x12, 0x12, 0xff, 0xff, 0xff])
    const grayAlpha = await decodeImage({ kind: 'encoded', bytes: encodePng(1, 1, 2, Uint8Array.from([77, 0])) })
    expect(Array.from(grayAlpha.data)).toEqual([77, 77, 77])
  })

  test('a truncated JPEG is refused instead of being grey-filled', async () => {
    const bytes = await fixture('astronaut.jpg')
    for (const cut of [bytes.length - 2, bytes.length - 500, Math.floor(bytes.length / 2), 200]) {
      await expectImageError(decodeImage({ kind: 'encoded', bytes: bytes.subarray(0, cut) }), 'damaged')
    }
    await expectImageError(decodeImage({ kind: 'encoded', bytes: bytes.subarray(0, bytes.length - 100) }, 'portable'), 'truncated')
  })

  test('a corrupt JPEG is an ImageInputError from either decoder', async () => {
    const bytes = (await fixture('coffee.jpg')).slice()
    for (let i = 700; i < 6000; i++) bytes[i] = (i * 7) & 0xff
    await expectImageError(decodeImage({ kind: 'encoded', bytes }), 'JPEG')
    await expectImageError(decodeImage({ kind: 'encoded', bytes }, 'portable'), 'JPEG')
  })

  test('data after the end-of-image marker is allowed (some cameras pad files)', async () => {
    const bytes = await fixture('chelsea.jpg')
    const padded = new Uint8Array(bytes.length + 64)
    padded.set(bytes)
    expect(readImageHeader(padded)).toEqual({ format: 'jpeg', width: 451, height: 300 })
    expect((await decodeImage({ kind: 'encoded', bytes: padded })).width).toBe(451)
  })

  test('empty, unknown and non-JPEG data with the portable decoder are explained', async () => {
    await expectImageError(decodeImage({ kind: 'encoded', bytes: new Uint8Array(0) }), 'empty')
    await expectImageError(decodeImage({ kind: 'encoded', bytes: new TextEncoder().encode('hello, not an image') }), 'could not decode')
    await expectImageError(decodeImage({ kind: 'encoded', bytes: encodePng(1, 1, 3, new Uint8Array(3)) }, 'portable'), 'JPEG only')
    await expectImageError(decodeImage({ kind: 'encoded', bytes: 'x' as unknown as Uint8Array }), 'Uint8Array')
  })
})

describe('raw arrays', () => {
  test('gray [h, w] and [h, w, 1] are replicated to RGB', async () => {
    for (const shape of [[1, 2], [1, 2, 1]]) {
      const image = await decodeImage({ kind: 'raw', bytes: Uint8Array.from([5, 250]), dtype: 'uint8', shape })
      expect(image).toEqual({ width: 2, height: 1, data: Uint8Array.from([5, 5, 5, 250, 250, 250]) })
    }
  })

  test('[h, w, 3] is taken as RGB, [h, w, 4] drops alpha', async () => {
    const rgb = await decodeImage({ kind: 'raw', bytes: Uint8Array.from([1, 2, 3, 4, 5, 6]), dtype: 'uint8', shape: [2, 1, 3] })
    expect(rgb).toEqual({ width: 1, height: 2, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) })
    const rgba = await decodeImage({ kind: 'raw', bytes: Uint8Array.from([1, 2, 3, 0, 4, 5, 6, 9]), dtype: 'uint8', shape: [1, 2, 4] })
    expect(Array.from(rgba.data)).toEqual([1, 2, 3, 4, 5, 6])
  })

  test('float32 is 0–1 and scaled to 0–255; 0–255 floats are refused, not guessed', async () => {
    const floats = new Uint8Array(Float32Array.from([0, 0.5, 1]).buffer)
    const image = await decodeImage({ kind: 'raw', bytes: floats, dtype: 'float32', shape: [1, 1, 3] })
    expect(Array.from(image.data)).toEqual([0, 128, 255])
    const wide = new Uint8Array(Float32Array.from([0, 127, 255]).buffer)
    await expectImageError(decodeImage({ kind: 'raw', bytes: wide, dtype: 'float32', shape: [1, 1, 3] }), 'values in 0–1')
    const nan = new Uint8Array(Float32Array.from([Number.NaN]).buffer)
    await expectImageError(decodeImage({ kind: 'raw', bytes: nan, dtype: 'float32', shape: [1, 1] }), 'values in 0–1')
  })

  test('float32 in a Node Buffer at an unaligned offset (as socket.io may hand it over) reads its own samples', async () => {
    // Buffer#slice is a view: the samples must be copied out of the shared memory, not read from its start
    const memory = new ArrayBuffer(64)
    new Uint8Array(memory).fill(0xff) // NaN as float32 wherever it is read
    const bytes = Buffer.from(memory, 5, 12)
    bytes.set(new Uint8Array(Float32Array.from([0, 0.5, 1]).buffer))
    const image = await decodeImage({ kind: 'raw', bytes, dtype: 'float32', shape: [1, 1, 3] })
    expect(Array.from(image.data)).toEqual([0, 128, 255])
  })

  test('wrong shapes, byte counts and dtypes are explained', async () => {
    const bytes = new Uint8Array(12)
    await expectImageError(decodeImage({ kind: 'raw', bytes, dtype: 'uint8', shape: [2, 2, 2] }), '2 channels')
    await expectImageError(decodeImage({ kind: 'raw', bytes, dtype: 'uint8', shape: [3, 3, 3] }), 'needs 27 bytes, got 12')
    await expectImageError(decodeImage({ kind: 'raw', bytes, dtype: 'uint8', shape: [12] }), 'is not [height, width]')
    await expectImageError(decodeImage({ kind: 'raw', bytes, dtype: 'uint8', shape: [0, 4, 3] }), 'is not [height, width]')
    await expectImageError(decodeImage({ kind: 'raw', bytes, dtype: 'int16', shape: [2, 2, 3] }), 'unsupported dtype "int16"')
    await expectImageError(decodeImage({ kind: 'other', bytes } as never), 'unknown image kind')
  })
})

describe('pixel budget: refused from the header, before any pixel is allocated', () => {
  test('a 618-byte JPEG claiming 9999×9999 is refused by both decoders under the default budget (50 MP)', async () => {
    const bomb = jpegClaimingSize(9999, 9999)
    for (const decoder of ['native', 'portable'] as const) {
      await expectImageError(decodeImage({ kind: 'encoded', bytes: bomb }, decoder), '9999×9999')
      await expectImageError(decodeImage({ kind: 'encoded', bytes: bomb }, decoder), 'pixel budget of 50000000')
    }
  })

  test('PNG decompression bombs (20000×20000 in ~50 KB, 8000×8000 in ~8 KB) are refused before inflating', async () => {
    await expectImageError(decodeImage({ kind: 'encoded', bytes: pngBomb(20000, 20000) }), '20000×20000 pixels (400.0 MP), more than the pixel budget of 50000000')
    await expectImageError(decodeImage({ kind: 'encoded', bytes: pngBomb(8000, 8000) }), '8000×8000 pixels (64.0 MP), more than the pixel budget')
  })

  test('maxPixels sets the budget: the 512×512 astronaut passes at 262144 and is refused at 262143', async () => {
    const bytes = await fixture('astronaut.jpg')
    expect((await decodeImage({ kind: 'encoded', bytes }, { maxPixels: 512 * 512 })).width).toBe(512)
    await expectImageError(decodeImage({ kind: 'encoded', bytes }, { maxPixels: 512 * 512 - 1 }), 'pixel budget of 262143')
  })

  test('a raw array is judged by its shape, before its bytes are counted', async () => {
    await expectImageError(decodeImage({ kind: 'raw', bytes: new Uint8Array(12), dtype: 'uint8', shape: [8000, 7000, 3] }), '7000×8000')
    await expectImageError(decodeImage({ kind: 'raw', bytes: new Uint8Array(600), dtype: 'uint8', shape: [10, 20, 3] }, { maxPixels: 199 }), 'pixel budget of 199')
  })
})

describe('reduced-scale decoding (JPEG DCT scaling) when the model input is much smaller', () => {
  const boxAverage = (image: { width: number; data: Uint8Array }, x: number, y: number, c: number, s: number) => {
    let sum = 0
    for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) sum += image.data[((y * s + dy) * image.width + x * s + dx) * 3 + c]!
    return sum / (s * s)
  }

  test('a 1600×1200 JPEG resampled to 200×150 decodes at 1/4 and keeps its original size; pixels match the full decode averaged', async () => {
    const { Transformer, ResizeFilterType, ResizeFit } = await import('@napi-rs/image')
    const bytes = new Uint8Array(await new Transformer(await fixture('astronaut.jpg')).resize({ width: 1600, height: 1200, filter: ResizeFilterType.Triangle, fit: ResizeFit.Fill }).jpeg(90))
    const full = await decodeImage({ kind: 'encoded', bytes })
    const reduced = await decodeImage({ kind: 'encoded', bytes }, { targetSize: () => ({ width: 200, height: 150 }) })
    expect([full.width, full.height, full.original]).toEqual([1600, 1200, undefined])
    expect([reduced.width, reduced.height, reduced.original]).toEqual([400, 300, { width: 1600, height: 1200 }])
    expect(reduced.data.length).toBe(400 * 300 * 3)
    let total = 0
    for (let y = 0; y < 300; y++) for (let x = 0; x < 400; x++) for (let c = 0; c < 3; c++) total += Math.abs(reduced.data[(y * 400 + x) * 3 + c]! - boxAverage(full, x, y, c, 4))
    expect(total / reduced.data.length).toBeLessThan(2)
  })

  test('at 1/2 when 4× larger; full size when less, for PNG, and with the portable decoder', async () => {
    const bytes = await fixture('astronaut.jpg')
    const half = await decodeImage({ kind: 'encoded', bytes }, { targetSize: () => ({ width: 128, height: 128 }) })
    expect([half.width, half.height, half.original]).toEqual([256, 256, { width: 512, height: 512 }])
    for (const image of [
      await decodeImage({ kind: 'encoded', bytes }, { targetSize: () => ({ width: 129, height: 129 }) }),
      await decodeImage({ kind: 'encoded', bytes }, { decoder: 'portable', targetSize: () => ({ width: 64, height: 64 }) }),
    ]) expect([image.width, image.original]).toEqual([512, undefined])
    const png = await decodeImage({ kind: 'encoded', bytes: encodePng(64, 64, 3, new Uint8Array(64 * 64 * 3)) }, { targetSize: () => ({ width: 8, height: 8 }) })
    expect([png.width, png.original]).toEqual([64, undefined])
  })
})
