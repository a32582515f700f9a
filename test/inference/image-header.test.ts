import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { checkPixelBudget, chooseJpegScale, readImageHeader } from '../../src/inference/image-header.ts'
import { DEFAULT_MAX_IMAGE_PIXELS } from '../../src/config/inference-settings.ts'
import { ImageInputError } from '../../src/inference/inference-errors.ts'
import { jpegClaimingSize, pngBomb } from '../support/image-bombs.ts'
import { encodePng } from './png-writer.ts'

const fixture = (name: string) => Bun.file(join(import.meta.dir, '..', 'fixtures', name)).bytes()

function problemOf(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(ImageInputError)
    return (error as Error).message
  }
  throw new Error('expected an ImageInputError')
}

describe('readImageHeader: the size from the header, without decoding', () => {
  test('JPEG: the frame size from SOF, also when the header lies about it', async () => {
    expect(readImageHeader(await fixture('coffee.jpg'))).toEqual({ format: 'jpeg', width: 600, height: 400 })
    expect(readImageHeader(jpegClaimingSize(9999, 9999))).toEqual({ format: 'jpeg', width: 9999, height: 9999 })
    expect(readImageHeader(jpegClaimingSize(40000, 30000))).toEqual({ format: 'jpeg', width: 40000, height: 30000 })
  })

  test('PNG: the size from IHDR', () => {
    expect(readImageHeader(encodePng(3, 2, 3, new Uint8Array(18)))).toEqual({ format: 'png', width: 3, height: 2 })
    expect(readImageHeader(pngBomb(20000, 20000))).toEqual({ format: 'png', width: 20000, height: 20000 })
  })

  test('other formats have no size here; damaged headers are explained', async () => {
    expect(readImageHeader(new TextEncoder().encode('RIFF....WEBPVP8 '))).toEqual({ format: 'other' })
    const jpeg = await fixture('astronaut.jpg')
    expect(problemOf(() => readImageHeader(jpeg.subarray(0, jpeg.length - 10)))).toContain('truncated')
    // no frame header before the scan: SOF0 renamed to an application segment
    const noFrame = jpegClaimingSize(16, 16)
    noFrame[noFrame.findIndex((b, i) => b === 0xff && noFrame[i + 1] === 0xc0) + 1] = 0xe5
    expect(problemOf(() => readImageHeader(noFrame))).toContain('no frame header')
    const png = encodePng(3, 2, 3, new Uint8Array(18))
    expect(problemOf(() => readImageHeader(png.subarray(0, 20)))).toContain('PNG')
    expect(problemOf(() => readImageHeader(jpegClaimingSize(0, 16)))).toContain('0×')
  })
})

describe('pixel budget', () => {
  test('the default is 50 MP; a larger image is refused naming its size and the budget', () => {
    expect(DEFAULT_MAX_IMAGE_PIXELS).toBe(50_000_000)
    expect(() => checkPixelBudget({ width: 8000, height: 6000 }, DEFAULT_MAX_IMAGE_PIXELS)).not.toThrow()
    const message = problemOf(() => checkPixelBudget({ width: 9999, height: 9999 }, DEFAULT_MAX_IMAGE_PIXELS))
    expect(message).toContain('9999×9999')
    expect(message).toContain('50000000')
    expect(message).toContain('MAX_IMAGE_PIXELS')
  })
})

describe('chooseJpegScale: the largest DCT scale-down that still leaves twice the resampling target', () => {
  test('4000×3000 into a 640 letterbox (640×480) decodes at 1/2; into 128×96 at 1/8', () => {
    expect(chooseJpegScale({ width: 4000, height: 3000 }, { width: 640, height: 480 })).toBe(2)
    expect(chooseJpegScale({ width: 4000, height: 3000 }, { width: 128, height: 96 })).toBe(8)
    expect(chooseJpegScale({ width: 4000, height: 3000 }, { width: 320, height: 240 })).toBe(4)
  })

  test('less than 4× larger in either direction: full scale', () => {
    expect(chooseJpegScale({ width: 1920, height: 1080 }, { width: 640, height: 360 })).toBe(1)
    expect(chooseJpegScale({ width: 2560, height: 700 }, { width: 640, height: 200 })).toBe(1)
    expect(chooseJpegScale({ width: 2560, height: 1920 }, { width: 640, height: 480 })).toBe(2)
    expect(chooseJpegScale({ width: 512, height: 512 }, { width: 128, height: 128 })).toBe(2)
    expect(chooseJpegScale({ width: 451, height: 300 }, { width: 128, height: 85 })).toBe(1)
  })
})
