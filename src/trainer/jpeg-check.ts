import { Transformer } from '@napi-rs/image'
import { DEFAULT_MAX_IMAGE_PIXELS } from '../config/inference-settings.ts'
import { readImageHeader } from '../inference/image-header.ts'

export type JpegCheck = { ok: true; width: number; height: number } | { ok: false; reason: string }

const SOI_0 = 0xff
const SOI_1 = 0xd8
const MARKER = 0xff
const SOS = 0xda
const EOI = 0xd9

/** Position of the first start-of-scan marker, walking the header segments; -1 when there is none. */
function firstScanOffset(bytes: Uint8Array): number {
  let i = 2
  while (i + 3 < bytes.length) {
    if (bytes[i] !== MARKER) return -1
    const marker = bytes[i + 1]!
    if (marker === MARKER) {
      i++ // fill byte
      continue
    }
    if (marker === SOS) return i
    // markers without a length field
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      i += 2
      continue
    }
    const length = (bytes[i + 2]! << 8) | bytes[i + 3]!
    if (length < 2) return -1
    i += 2 + length
  }
  return -1
}

/**
 * Whether `bytes` hold a complete JPEG, checked in-process (no jpeginfo): the start-of-image marker, an
 * end-of-image marker after the first scan (inside entropy-coded data every 0xFF is stuffed, so FF D9 there can
 * only be the real end — this catches truncated downloads, which decoders silently fill with grey), and a header
 * that the native decoder reads, with a sane size within `maxPixels`. The header is read off the main thread.
 */
export async function checkJpeg(bytes: Uint8Array, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): Promise<JpegCheck> {
  if (bytes.length < 4) return { ok: false, reason: `only ${bytes.length} bytes` }
  if (bytes[0] !== SOI_0 || bytes[1] !== SOI_1) return { ok: false, reason: 'no start-of-image marker' }
  const scan = firstScanOffset(bytes)
  if (scan < 0) return { ok: false, reason: 'no start-of-scan marker' }
  let end = -1
  for (let i = bytes.length - 2; i > scan; i--) {
    if (bytes[i] === MARKER && bytes[i + 1] === EOI) {
      end = i
      break
    }
  }
  if (end < 0) return { ok: false, reason: 'truncated (no end-of-image marker)' }
  // a small file claiming a huge image is a decompression bomb for the training program that decodes it;
  // the size comes from the frame header, before the native decoder allocates anything for it
  const header = (() => {
    try {
      return readImageHeader(bytes)
    } catch {
      return undefined // the native decoder below says what is wrong
    }
  })()
  if (header?.format === 'jpeg' && header.width * header.height > maxPixels) {
    return { ok: false, reason: `${header.width}×${header.height} pixels, more than the pixel budget of ${maxPixels} (MAX_IMAGE_PIXELS)` }
  }
  try {
    const metadata = await new Transformer(bytes).metadata()
    if (metadata.format.toLowerCase() !== 'jpeg') return { ok: false, reason: `decodes as ${metadata.format}, not JPEG` }
    if (!(metadata.width > 0 && metadata.height > 0)) return { ok: false, reason: `header says ${metadata.width}x${metadata.height}` }
    return { ok: true, width: metadata.width, height: metadata.height }
  } catch (error) {
    return { ok: false, reason: `header does not decode: ${(error as Error).message.trim()}` }
  }
}

/** Cheap check for a cached file: non-empty and starts like a JPEG. */
export function looksLikeJpeg(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === SOI_0 && head[1] === SOI_1
}
