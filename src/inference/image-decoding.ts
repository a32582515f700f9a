/**
 * Turns what callers send into 8-bit RGB pixels. Runs inside the inference worker.
 *
 * Encoded images: JPEG and PNG (and whatever else @napi-rs/image reads: WebP, BMP, TIFF…), decoded
 * with @napi-rs/image (native, also works in a compiled binary); jpeg-js is the portable fallback for
 * JPEG when the native module cannot load, and the test oracle. EXIF orientation is not applied:
 * boxes refer to the stored pixel grid, the same grid jpeg-js and raw-array callers see.
 *
 * Raw arrays `{bytes, dtype, shape}` are row-major HWC:
 * - shape `[h, w]` or `[h, w, 1]` gray, `[h, w, 3]` RGB, `[h, w, 4]` RGBA (alpha is dropped, not blended);
 * - dtype `uint8` (0–255) or `float32` (0–1, the torchvision/ToTensor convention; values outside
 *   0–1 are refused rather than guessed, so a 0–255 float image fails loudly instead of turning white).
 * Channels are taken as RGB; OpenCV callers must convert BGR first.
 *
 * Nothing is decoded before its size is known and within the pixel budget (image-header.ts): JPEG and PNG
 * from their headers, WebP/GIF/BMP through the runtime's built-in codec (Bun.Image; Deno has none and refuses
 * them); a format whose size cannot be read without decoding is refused. A full-size decode then peaks at
 * about 6 bytes per pixel of the budget (the decoder's RGB buffer, used as it is, plus its working memory;
 * measured 276 MB for 8000×6000).
 */
import jpeg from 'jpeg-js'
import { checkPixelBudget, chooseJpegScale, readImageHeader, type ImageSize } from './image-header.ts'
import { DEFAULT_MAX_IMAGE_PIXELS } from '../config/inference-settings.ts'
import { ImageInputError } from './inference-errors.ts'
import { quoteInput } from '../foundation/log.ts'
import { BUILTIN_IMAGE_CODEC } from '../runtime/image-codec.ts'

export type ImageInput =
  | { kind: 'encoded'; bytes: Uint8Array }
  | { kind: 'raw'; bytes: Uint8Array; dtype: string; shape: number[] }

/** 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number
  height: number
  data: Uint8Array
  /** set when a JPEG was decoded at reduced scale: its real size (`width`/`height` are the decoded grid) */
  original?: ImageSize
}

export type ImageDecoderChoice = 'native' | 'portable'

export interface DecodeOptions {
  /** `portable` decodes JPEG with jpeg-js, always at full size (default native) */
  decoder?: ImageDecoderChoice
  /** most pixels (width × height) accepted, checked before decoding (default DEFAULT_MAX_IMAGE_PIXELS) */
  maxPixels?: number
  /**
   * The size the pixels will be resampled to, given the image's size (the network input). A JPEG at least
   * four times as large in both directions is then decoded at 1/2, 1/4 or 1/8 scale (chooseJpegScale).
   */
  targetSize?: (size: ImageSize) => ImageSize
}
const RAW_DTYPES = ['uint8', 'float32'] as const

type NapiImage = typeof import('@napi-rs/image')
let napiImage: Promise<NapiImage | Error> | undefined
/** The native image module, or the Error that kept it from loading (then the portable paths apply). */
export function loadNapiImage(): Promise<NapiImage | Error> {
  napiImage ??= import('@napi-rs/image').catch((error: unknown) => error instanceof Error ? error : new Error(String(error)))
  return napiImage
}

/** Converts interleaved pixels with `channels` channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) to RGB. */
function toRgb(source: ArrayLike<number>, pixels: number, channels: number, convert: (v: number) => number): Uint8Array {
  const rgb = new Uint8Array(pixels * 3)
  if (channels === 3 && source instanceof Uint8Array) {
    rgb.set(source.subarray(0, pixels * 3))
    return rgb
  }
  for (let p = 0, s = 0, d = 0; p < pixels; p++, s += channels, d += 3) {
    if (channels <= 2) {
      const gray = convert(source[s]!)
      rgb[d] = gray; rgb[d + 1] = gray; rgb[d + 2] = gray
    } else {
      rgb[d] = convert(source[s]!); rgb[d + 1] = convert(source[s + 1]!); rgb[d + 2] = convert(source[s + 2]!)
    }
  }
  return rgb
}

const identity = (v: number) => v

// napi-rs JsColorType → [channels, bytes per sample]
const NAPI_COLOR_TYPES: Record<number, [number, number]> = { 0: [1, 1], 1: [2, 1], 2: [3, 1], 3: [4, 1], 4: [1, 2], 5: [2, 2], 6: [3, 2], 7: [4, 2] }

async function decodeWithNapi(napi: NapiImage, bytes: Uint8Array, format: string): Promise<RgbImage> {
  let metadata: { width: number; height: number; colorType: number }
  let pixels: Uint8Array
  try {
    const transformer = new napi.Transformer(bytes)
    metadata = transformer.metadataSync()
    pixels = transformer.rawPixelsSync()
  } catch (error) {
    throw new ImageInputError(`could not decode the ${format === 'unknown' ? 'image' : format.toUpperCase() + ' image'}: ${(error as Error).message}`)
  }
  const layout = NAPI_COLOR_TYPES[metadata.colorType]
  if (!layout) throw new ImageInputError(`unsupported pixel format (color type ${metadata.colorType}); send 8- or 16-bit gray, RGB or RGBA`)
  const [channels, sampleBytes] = layout
  const count = metadata.width * metadata.height
  if (pixels.length < count * channels * sampleBytes) throw new ImageInputError('the decoder returned fewer pixels than the image size says')
  // 8-bit RGB (most JPEGs) is used as the decoder returned it: a copy would add 3 bytes per pixel to the peak
  if (channels === 3 && sampleBytes === 1) return { width: metadata.width, height: metadata.height, data: new Uint8Array(pixels.buffer, pixels.byteOffset, count * 3) }
  const samples = sampleBytes === 2 ? new Uint16Array(pixels.buffer, pixels.byteOffset, count * channels) : pixels
  return { width: metadata.width, height: metadata.height, data: toRgb(samples, count, channels, sampleBytes === 2 ? (v) => v >> 8 : identity) }
}

function decodeWithJpegJs(bytes: Uint8Array, maxPixels: number): RgbImage {
  try {
    // the budget was checked from the header already; jpeg-js's own limits are a second fence
    const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: maxPixels / 1e6, maxMemoryUsageInMB: 2048 })
    const data = decoded.data as Uint8Array
    // jpeg-js returns RGB when formatAsRGBA is false, whatever the component count
    return { width: decoded.width, height: decoded.height, data: data.length === decoded.width * decoded.height * 3 ? data : toRgb(data, decoded.width * decoded.height, 4, identity) }
  } catch (error) {
    throw new ImageInputError(`could not decode the JPEG image: ${(error as Error).message}`)
  }
}

/** WebP, GIF, BMP: the size from the runtime's header probe, which allocates no pixels. */
async function probeOtherFormat(bytes: Uint8Array): Promise<ImageSize> {
  if (!BUILTIN_IMAGE_CODEC) throw new ImageInputError('only JPEG and PNG images can be checked before decoding on this runtime; send JPEG or PNG')
  try {
    return await BUILTIN_IMAGE_CODEC.size(bytes)
  } catch (error) {
    throw new ImageInputError(`could not decode the image (JPEG, PNG, WebP, GIF or BMP expected): ${(error as Error).message}`)
  }
}

/**
 * A JPEG at 1/`scale` of its size: libjpeg-turbo's scaled IDCT (Bun's built-in codec) never builds the
 * full-size image (4000×3000 at 1/8: ~17 ms and ~11 MB instead of ~72 ms and ~220 MB); its uncompressed PNG
 * is unpacked by @napi-rs/image. Undefined without a built-in codec (Deno); the caller then decodes at full size.
 */
async function decodeJpegReduced(napi: NapiImage, bytes: Uint8Array, size: ImageSize, scale: number): Promise<RgbImage | undefined> {
  if (!BUILTIN_IMAGE_CODEC) return undefined
  const width = Math.ceil(size.width / scale)
  const height = Math.ceil(size.height / scale)
  let png: Uint8Array
  try {
    png = await BUILTIN_IMAGE_CODEC.jpegAsPng(bytes, width, height)
  } catch (error) {
    throw new ImageInputError(`could not decode the JPEG image: ${(error as Error).message}`)
  }
  const image = await decodeWithNapi(napi, png, 'png')
  if (image.width !== width || image.height !== height) return undefined
  return { ...image, original: { width: size.width, height: size.height } }
}

/** Decodes encoded bytes (JPEG, PNG; WebP, GIF, BMP with the native decoder) to RGB, within the pixel budget. */
export async function decodeEncodedImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  if (bytes.length === 0) throw new ImageInputError('the image is empty (0 bytes)')
  const { decoder = 'native', maxPixels = DEFAULT_MAX_IMAGE_PIXELS } = options
  const header = readImageHeader(bytes)
  const napi = decoder === 'native' ? await loadNapiImage() : undefined
  if (napi instanceof Error || !napi) {
    if (header.format !== 'jpeg') {
      const why = napi instanceof Error ? `@napi-rs/image failed to load (${napi.message})` : 'the portable decoder reads JPEG only'
      throw new ImageInputError(`cannot decode this ${header.format === 'png' ? 'PNG' : 'non-JPEG'} image: ${why}`)
    }
    checkPixelBudget(header, maxPixels)
    return decodeWithJpegJs(bytes, maxPixels)
  }
  const size = header.format === 'other' ? await probeOtherFormat(bytes) : header
  checkPixelBudget(size, maxPixels)
  if (header.format === 'jpeg' && options.targetSize) {
    const scale = chooseJpegScale(size, options.targetSize(size))
    const reduced = scale > 1 ? await decodeJpegReduced(napi, bytes, size, scale) : undefined
    if (reduced) return reduced
  }
  return decodeWithNapi(napi, bytes, header.format === 'other' ? 'unknown' : header.format)
}

/** Validates a raw HWC array and converts it to RGB. */
export function decodeRawImage(bytes: Uint8Array, dtype: string, shape: number[], maxPixels = DEFAULT_MAX_IMAGE_PIXELS): RgbImage {
  if (!(RAW_DTYPES as readonly string[]).includes(dtype)) {
    throw new ImageInputError(`unsupported dtype ${quoteInput(dtype)}; raw images must be ${RAW_DTYPES.join(' or ')}`)
  }
  if (!Array.isArray(shape) || (shape.length !== 2 && shape.length !== 3) || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ImageInputError(`raw image shape ${quoteInput(shape)} is not [height, width] or [height, width, channels]`)
  }
  const [height, width] = shape as [number, number]
  const channels = shape[2] ?? 1
  if (![1, 3, 4].includes(channels)) throw new ImageInputError(`raw image has ${channels} channels; use 1 (gray), 3 (RGB) or 4 (RGBA)`)
  checkPixelBudget({ width, height }, maxPixels, 'the raw image')
  const bytesPerSample = dtype === 'float32' ? 4 : 1
  const expected = width * height * channels * bytesPerSample
  if (bytes.length !== expected) {
    throw new ImageInputError(`raw image shape ${quoteInput(shape)} with dtype ${dtype} needs ${expected} bytes, got ${bytes.length}`)
  }
  if (dtype === 'uint8') return { width, height, data: toRgb(bytes, width * height, channels, identity) }
  const floats = bytes.byteOffset % 4 === 0
    ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
    : new Float32Array(new Uint8Array(bytes).buffer) // a copy: a Buffer's slice() would be a view of its whole (pooled) buffer
  for (let i = 0; i < floats.length; i++) {
    const v = floats[i]!
    if (!(v >= -1e-3 && v <= 1.001)) {
      throw new ImageInputError(`float32 raw images must hold values in 0–1; found ${v} at index ${i} (send uint8 for 0–255 data)`)
    }
  }
  return { width, height, data: toRgb(floats, width * height, channels, (v) => Math.min(255, Math.max(0, Math.round(v * 255)))) }
}

/** Decodes an encoded image or a raw array to RGB. A decoder name as `options` is short for `{ decoder }`. */
export async function decodeImage(input: ImageInput, options: DecodeOptions | ImageDecoderChoice = {}): Promise<RgbImage> {
  if (!input || typeof input !== 'object' || !(input.bytes instanceof Uint8Array)) {
    throw new ImageInputError('an image must be { kind: "encoded", bytes } or { kind: "raw", bytes, dtype, shape } with bytes as a Uint8Array')
  }
  const decodeOptions = typeof options === 'string' ? { decoder: options } : options
  if (input.kind === 'encoded') return decodeEncodedImage(input.bytes, decodeOptions)
  if (input.kind === 'raw') return decodeRawImage(input.bytes, input.dtype, input.shape, decodeOptions.maxPixels)
  throw new ImageInputError(`unknown image kind ${quoteInput((input as { kind: unknown }).kind)}; use "encoded" or "raw"`)
}
