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
 */
import jpeg from 'jpeg-js'
import { ImageInputError } from './inference-errors.ts'
import { quoteInput } from '../node/log.ts'

export type ImageInput =
  | { kind: 'encoded'; bytes: Uint8Array }
  | { kind: 'raw'; bytes: Uint8Array; dtype: string; shape: number[] }

/** 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number
  height: number
  data: Uint8Array
}

export type ImageDecoderChoice = 'native' | 'portable'

const MAX_PIXELS = 100_000_000
const RAW_DTYPES = ['uint8', 'float32'] as const

type NapiImage = typeof import('@napi-rs/image')
let napiImage: Promise<NapiImage | Error> | undefined
/** The native image module, or the Error that kept it from loading (then the portable paths apply). */
export function loadNapiImage(): Promise<NapiImage | Error> {
  napiImage ??= import('@napi-rs/image').catch((error: unknown) => error instanceof Error ? error : new Error(String(error)))
  return napiImage
}

export function sniffImageFormat(bytes: Uint8Array): 'jpeg' | 'png' | 'unknown' {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg'
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png'
  return 'unknown'
}

/**
 * Walks the JPEG marker segments and entropy-coded scans up to the EOI marker. Decoders quietly
 * grey-fill a truncated file, so without this check a half-uploaded frame would be "detected".
 * Returns a description of the problem, or undefined when the stream is complete.
 */
export function findJpegStructureProblem(bytes: Uint8Array): string | undefined {
  const length = bytes.length
  if (length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return 'it does not start with a JPEG SOI marker'
  let at = 2
  let sawScan = false
  while (at < length) {
    if (bytes[at] !== 0xff) return `unexpected byte 0x${bytes[at]!.toString(16)} where a marker should be (offset ${at})`
    while (at < length && bytes[at] === 0xff) at++ // fill bytes
    if (at >= length) break
    const marker = bytes[at++]!
    if (marker === 0xd9) return sawScan ? undefined : 'it ends before any image data'
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue // no length field
    if (at + 2 > length) break
    const segmentLength = (bytes[at]! << 8) | bytes[at + 1]!
    if (segmentLength < 2) return `invalid segment length at offset ${at}`
    at += segmentLength
    if (marker !== 0xda) continue
    sawScan = true
    // entropy-coded data: 0xFF is followed by 0x00 (stuffing) or a restart marker until the next real marker
    while (at < length) {
      if (bytes[at] !== 0xff) { at++; continue }
      const next = bytes[at + 1]
      if (next === undefined) { at++; break }
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) { at += next === 0xff ? 1 : 2; continue }
      break
    }
  }
  return 'the file is truncated (no end-of-image marker)'
}

function checkDimensions(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageInputError(`${what} has an invalid size ${width}×${height}`)
  }
  if (width * height > MAX_PIXELS) throw new ImageInputError(`${what} is ${width}×${height} pixels, more than the limit of ${MAX_PIXELS}`)
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
    checkDimensions(metadata.width, metadata.height, 'the image')
    pixels = transformer.rawPixelsSync()
  } catch (error) {
    if (error instanceof ImageInputError) throw error
    throw new ImageInputError(`could not decode the ${format === 'unknown' ? 'image' : format.toUpperCase() + ' image'}: ${(error as Error).message}`)
  }
  const layout = NAPI_COLOR_TYPES[metadata.colorType]
  if (!layout) throw new ImageInputError(`unsupported pixel format (color type ${metadata.colorType}); send 8- or 16-bit gray, RGB or RGBA`)
  const [channels, sampleBytes] = layout
  const count = metadata.width * metadata.height
  if (pixels.length < count * channels * sampleBytes) throw new ImageInputError('the decoder returned fewer pixels than the image size says')
  const samples = sampleBytes === 2 ? new Uint16Array(pixels.buffer, pixels.byteOffset, count * channels) : pixels
  return { width: metadata.width, height: metadata.height, data: toRgb(samples, count, channels, sampleBytes === 2 ? (v) => v >> 8 : identity) }
}

function decodeWithJpegJs(bytes: Uint8Array): RgbImage {
  try {
    const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 2048 })
    checkDimensions(decoded.width, decoded.height, 'the image')
    const data = decoded.data as Uint8Array
    // jpeg-js returns RGB when formatAsRGBA is false, whatever the component count
    return { width: decoded.width, height: decoded.height, data: data.length === decoded.width * decoded.height * 3 ? data : toRgb(data, decoded.width * decoded.height, 4, identity) }
  } catch (error) {
    if (error instanceof ImageInputError) throw error
    throw new ImageInputError(`could not decode the JPEG image: ${(error as Error).message}`)
  }
}

/** Decodes JPEG/PNG bytes to RGB. `portable` forces jpeg-js (JPEG only). */
export async function decodeEncodedImage(bytes: Uint8Array, decoder: ImageDecoderChoice = 'native'): Promise<RgbImage> {
  if (bytes.length === 0) throw new ImageInputError('the image is empty (0 bytes)')
  const format = sniffImageFormat(bytes)
  if (format === 'jpeg') {
    const problem = findJpegStructureProblem(bytes)
    if (problem) throw new ImageInputError(`the JPEG image is damaged: ${problem}`)
  }
  const napi = decoder === 'native' ? await loadNapiImage() : undefined
  if (napi && !(napi instanceof Error)) return decodeWithNapi(napi, bytes, format)
  if (format === 'jpeg') return decodeWithJpegJs(bytes)
  const why = napi instanceof Error ? `@napi-rs/image failed to load (${napi.message})` : 'the portable decoder reads JPEG only'
  throw new ImageInputError(`cannot decode this ${format === 'png' ? 'PNG' : 'non-JPEG'} image: ${why}`)
}

/** Validates a raw HWC array and converts it to RGB. */
export function decodeRawImage(bytes: Uint8Array, dtype: string, shape: number[]): RgbImage {
  if (!(RAW_DTYPES as readonly string[]).includes(dtype)) {
    throw new ImageInputError(`unsupported dtype ${quoteInput(dtype)}; raw images must be ${RAW_DTYPES.join(' or ')}`)
  }
  if (!Array.isArray(shape) || (shape.length !== 2 && shape.length !== 3) || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ImageInputError(`raw image shape ${quoteInput(shape)} is not [height, width] or [height, width, channels]`)
  }
  const [height, width] = shape as [number, number]
  const channels = shape[2] ?? 1
  if (![1, 3, 4].includes(channels)) throw new ImageInputError(`raw image has ${channels} channels; use 1 (gray), 3 (RGB) or 4 (RGBA)`)
  checkDimensions(width, height, 'the raw image')
  const bytesPerSample = dtype === 'float32' ? 4 : 1
  const expected = width * height * channels * bytesPerSample
  if (bytes.length !== expected) {
    throw new ImageInputError(`raw image shape ${quoteInput(shape)} with dtype ${dtype} needs ${expected} bytes, got ${bytes.length}`)
  }
  if (dtype === 'uint8') return { width, height, data: toRgb(bytes, width * height, channels, identity) }
  const floats = bytes.byteOffset % 4 === 0
    ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
    : new Float32Array(bytes.slice().buffer)
  for (let i = 0; i < floats.length; i++) {
    const v = floats[i]!
    if (!(v >= -1e-3 && v <= 1.001)) {
      throw new ImageInputError(`float32 raw images must hold values in 0–1; found ${v} at index ${i} (send uint8 for 0–255 data)`)
    }
  }
  return { width, height, data: toRgb(floats, width * height, channels, (v) => Math.min(255, Math.max(0, Math.round(v * 255)))) }
}

export async function decodeImage(input: ImageInput, decoder: ImageDecoderChoice = 'native'): Promise<RgbImage> {
  if (!input || typeof input !== 'object' || !(input.bytes instanceof Uint8Array)) {
    throw new ImageInputError('an image must be { kind: "encoded", bytes } or { kind: "raw", bytes, dtype, shape } with bytes as a Uint8Array')
  }
  if (input.kind === 'encoded') return decodeEncodedImage(input.bytes, decoder)
  if (input.kind === 'raw') return decodeRawImage(input.bytes, input.dtype, input.shape)
  throw new ImageInputError(`unknown image kind ${quoteInput((input as { kind: unknown }).kind)}; use "encoded" or "raw"`)
}
