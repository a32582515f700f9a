/**
 * What encoded image bytes say about themselves before anything is decoded: the format, the pixel size
 * (JPEG frame header, PNG IHDR), whether a JPEG stream is complete; and the two decisions taken from that:
 * is the image within the pixel budget, and at what reduced scale can a JPEG be decoded. Pure.
 *
 * A decoder allocates width × height × 3–4 bytes as soon as it has read the header, whatever the file size:
 * a 600-byte JPEG can claim 9999×9999 (~400 MB as RGBA) and a 50 KB PNG can inflate to 20000×20000.
 */
import { ImageInputError } from './inference-errors.ts'

export interface ImageSize {
  width: number
  height: number
}

export type ImageHeader = ({ format: 'jpeg' | 'png' } & ImageSize) | { format: 'other' }

export function sniffImageFormat(bytes: Uint8Array): 'jpeg' | 'png' | 'unknown' {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg'
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png'
  return 'unknown'
}

// SOF0–SOF15 carry the frame size; C4 (DHT), C8 (reserved) and CC (DAC) share the range but do not
const isFrameHeader = (marker: number) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc

/**
 * Walks the JPEG marker segments and entropy-coded scans up to the EOI marker, reading the frame size on the
 * way. Decoders quietly grey-fill a truncated file, so without the walk a half-uploaded frame would be
 * "detected". Returns the size, or a description of the problem.
 */
function walkJpeg(bytes: Uint8Array): ImageSize | string {
  const length = bytes.length
  if (length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return 'it does not start with a JPEG SOI marker'
  let at = 2
  let size: ImageSize | undefined
  let sawScan = false
  while (at < length) {
    if (bytes[at] !== 0xff) return `unexpected byte 0x${bytes[at]!.toString(16)} where a marker should be (offset ${at})`
    while (at < length && bytes[at] === 0xff) at++ // fill bytes
    if (at >= length) break
    const marker = bytes[at++]!
    if (marker === 0xd9) return sawScan && size ? size : 'it ends before any image data'
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue // no length field
    if (at + 2 > length) break
    const segmentLength = (bytes[at]! << 8) | bytes[at + 1]!
    if (segmentLength < 2) return `invalid segment length at offset ${at}`
    if (isFrameHeader(marker) && at + 7 <= length) {
      // length(2) precision(1) height(2) width(2); hierarchical files have several frames: the largest counts
      const height = (bytes[at + 3]! << 8) | bytes[at + 4]!
      const width = (bytes[at + 5]! << 8) | bytes[at + 6]!
      size = { width: Math.max(width, size?.width ?? 0), height: Math.max(height, size?.height ?? 0) }
    }
    at += segmentLength
    if (marker !== 0xda) continue
    if (!size) return 'no frame header (SOF) before the image data'
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

/** IHDR is the first chunk: length 13, then width and height as big-endian 32-bit numbers. */
function readPngSize(bytes: Uint8Array): ImageSize {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const isIhdr = bytes.length >= 24 && bytes[12] === 0x49 && bytes[13] === 0x48 && bytes[14] === 0x44 && bytes[15] === 0x52
  if (!isIhdr) throw new ImageInputError('the PNG image is damaged: it has no IHDR header')
  return { width: view.getUint32(16), height: view.getUint32(20) }
}

/**
 * The format and size of encoded bytes, from their header: JPEG (whose whole stream is also checked for
 * completeness) and PNG. Other formats come back as `other`, without a size. Throws ImageInputError.
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  const format = sniffImageFormat(bytes)
  if (format === 'unknown') return { format: 'other' }
  let size: ImageSize
  if (format === 'png') {
    size = readPngSize(bytes)
  } else {
    const walked = walkJpeg(bytes)
    if (typeof walked === 'string') throw new ImageInputError(`the JPEG image is damaged: ${walked}`)
    size = walked
  }
  if (size.width < 1 || size.height < 1) throw new ImageInputError(`the ${format.toUpperCase()} header gives an invalid size ${size.width}×${size.height}`)
  return { format, ...size }
}

/** Refuses an image of more than `maxPixels` pixels, naming its size and the budget (MAX_IMAGE_PIXELS). */
export function checkPixelBudget(size: ImageSize, maxPixels: number, what = 'the image'): void {
  const pixels = size.width * size.height
  if (pixels <= maxPixels) return
  throw new ImageInputError(`${what} is ${size.width}×${size.height} pixels (${(pixels / 1e6).toFixed(1)} MP), more than the pixel budget of ${maxPixels} (MAX_IMAGE_PIXELS)`)
}

/**
 * 1, 2, 4 or 8: the largest JPEG DCT scale-down (libjpeg's scaled IDCT) that leaves at least twice the
 * `target` size in each direction, so large images decode small (4000×3000 for a 640 network: 1/2; for a
 * 128 network: 1/8) while the bilinear resampling after it still shrinks by 2× or more. That margin keeps
 * what the network sees close to a full-size decode: DCT scaling averages areas where bilinear sampling
 * skips pixels, and without the margin the built-in face model scored the cat fixture 0.51 instead of 0.47
 * (its threshold is 0.5); with it, 0.47. 1 when the image is less than 4× the target in either direction.
 */
export function chooseJpegScale(size: ImageSize, target: ImageSize): 1 | 2 | 4 | 8 {
  for (const scale of [8, 4, 2] as const) {
    if (size.width >= 2 * scale * target.width && size.height >= 2 * scale * target.height) return scale
  }
  return 1
}
