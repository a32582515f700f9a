import { Transformer } from '@napi-rs/image'

export interface JpegFacts {
  width: number
  height: number
}

const SOI = [0xff, 0xd8]
const MAX_PIXELS = 40_000_000

/**
 * Checks that `bytes` are a complete, decodable JPEG and returns its size; throws an Error saying why not.
 * The native decoder tolerates truncated scans (it fills the rest grey), so completeness is checked
 * separately: in entropy-coded data every 0xFF is stuffed, so an end-of-image marker (FF D9) after the
 * first start-of-scan marker can only be the real one.
 */
export function inspectJpeg(bytes: Uint8Array): JpegFacts {
  if (bytes.length < 4 || bytes[0] !== SOI[0] || bytes[1] !== SOI[1]) throw new Error('not a JPEG (no start-of-image marker)')
  let facts: JpegFacts
  try {
    const transformer = new Transformer(bytes)
    const metadata = transformer.metadataSync()
    if (metadata.format.toLowerCase() !== 'jpeg') throw new Error(`not a JPEG but ${metadata.format}`)
    if (metadata.width * metadata.height > MAX_PIXELS) throw new Error(`image of ${metadata.width}x${metadata.height} pixels is larger than ${MAX_PIXELS} pixels`)
    transformer.rawPixelsSync()
    facts = { width: metadata.width, height: metadata.height }
  } catch (error) {
    throw new Error(`JPEG does not decode: ${(error as Error).message.trim()}`)
  }
  const scanStart = findMarker(bytes, 0xda, 2)
  if (scanStart < 0) throw new Error('JPEG does not decode: no start-of-scan marker')
  if (findMarker(bytes, 0xd9, scanStart + 2) < 0) throw new Error('JPEG does not decode: it is truncated (no end-of-image marker)')
  return facts
}

function findMarker(bytes: Uint8Array, marker: number, from: number): number {
  for (let i = from; i < bytes.length - 1; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === marker) return i
  }
  return -1
}
