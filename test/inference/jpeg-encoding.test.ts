import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { decodeImage } from '../../src/inference/image-decoding.ts'
import { ImageInputError } from '../../src/inference/inference-errors.ts'
import { encodeJpeg } from '../../src/inference/jpeg-encoding.ts'
import { encodePng } from './png-writer.ts'

describe('encodeJpeg', () => {
  test('an encoded JPEG passes through as the same bytes', async () => {
    const bytes = await Bun.file(join(import.meta.dir, '..', 'fixtures', 'rocket.jpg')).bytes()
    expect(await encodeJpeg({ kind: 'encoded', bytes })).toBe(bytes)
  })

  test('a raw RGB frame becomes a JPEG that decodes back close to the original', async () => {
    const width = 64
    const height = 48
    const bytes = new Uint8Array(width * height * 3)
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) bytes.set([x * 4, y * 5, 128], (y * width + x) * 3)
    const jpeg = await encodeJpeg({ kind: 'raw', bytes, dtype: 'uint8', shape: [height, width, 3] }, 90)
    expect([jpeg[0], jpeg[1]]).toEqual([0xff, 0xd8])
    const back = await decodeImage({ kind: 'encoded', bytes: jpeg }, 'portable')
    expect([back.width, back.height]).toEqual([width, height])
    let total = 0
    for (let i = 0; i < bytes.length; i++) total += Math.abs(back.data[i]! - bytes[i]!)
    expect(total / bytes.length).toBeLessThan(4)
  })

  test('PNG is re-encoded; bad raw input is an ImageInputError', async () => {
    const png = encodePng(2, 2, 4, new Uint8Array(16).fill(200))
    const jpeg = await encodeJpeg({ kind: 'encoded', bytes: png })
    expect((await decodeImage({ kind: 'encoded', bytes: jpeg })).width).toBe(2)
    await expect(encodeJpeg({ kind: 'raw', bytes: new Uint8Array(5), dtype: 'uint8', shape: [2, 2, 3] })).rejects.toBeInstanceOf(ImageInputError)
  })
})
