/**
 * Images → JPEG bytes for the outbox. Encoded JPEG passes through unchanged (no re-encoding loss) once its
 * header shows a complete stream within the pixel budget; raw arrays and other encodings are decoded (within
 * the budget) and encoded with @napi-rs/image, whose async encoder runs on the libuv thread pool, so the main
 * thread only does the cheap RGB → RGBA copy. jpeg-js is the portable fallback when the native module cannot load.
 */
import jpeg from 'jpeg-js'
import { decodeImage, loadNapiImage, type ImageInput, type RgbImage } from './image-decoding.ts'
import { checkPixelBudget, readImageHeader } from './image-header.ts'
import { DEFAULT_MAX_IMAGE_PIXELS } from '../config/inference-settings.ts'

function toRgba(image: RgbImage): Uint8Array {
  const rgba = new Uint8Array(image.width * image.height * 4)
  for (let s = 0, d = 0; s < image.data.length; s += 3, d += 4) {
    rgba[d] = image.data[s]!; rgba[d + 1] = image.data[s + 1]!; rgba[d + 2] = image.data[s + 2]!; rgba[d + 3] = 255
  }
  return rgba
}

/**
 * JPEG bytes for `image`; `quality` 1–100 (default 85) applies when encoding is needed. Throws ImageInputError
 * for a damaged JPEG or an image of more than `maxPixels` pixels, so the Loop never gets what a detector refuses.
 */
export async function encodeJpeg(image: ImageInput, quality = 85, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): Promise<Uint8Array> {
  if (image.kind === 'encoded' && image.bytes instanceof Uint8Array) {
    const header = readImageHeader(image.bytes)
    if (header.format === 'jpeg') {
      checkPixelBudget(header, maxPixels)
      return image.bytes
    }
  }
  return encodeRgbJpeg(await decodeImage(image, { maxPixels }), quality)
}

/** JPEG bytes for decoded pixels (e.g. what the inference worker decoded already); `quality` 1–100, default 85. */
export async function encodeRgbJpeg(rgb: RgbImage, quality = 85): Promise<Uint8Array> {
  const rgba = toRgba(rgb)
  const level = Math.min(100, Math.max(1, Math.round(quality)))
  const napi = await loadNapiImage()
  if (napi instanceof Error) return new Uint8Array(jpeg.encode({ data: rgba, width: rgb.width, height: rgb.height }, level).data)
  return new Uint8Array(await napi.Transformer.fromRgbaPixels(rgba, rgb.width, rgb.height).jpeg(level))
}
