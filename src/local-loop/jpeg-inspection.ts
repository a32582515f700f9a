import { Transformer } from '@napi-rs/image'
import { readImageHeader } from '../inference/image-header.ts'

export interface JpegFacts {
  width: number
  height: number
}

const SOI = [0xff, 0xd8]
const MAX_PIXELS = 40_000_000

/**
 * Checks that `bytes` are a complete, decodable JPEG and returns its size; throws an Error saying why not.
 * The header walk comes first: it finds a truncated stream (the native decoder fills the rest grey) and the
 * claimed size, so a small file claiming a huge image is refused before a decoder allocates for it.
 */
export function inspectJpeg(bytes: Uint8Array): JpegFacts {
  if (bytes.length < 4 || bytes[0] !== SOI[0] || bytes[1] !== SOI[1]) throw new Error('not a JPEG (no start-of-image marker)')
  try {
    const header = readImageHeader(bytes)
    if (header.format !== 'jpeg') throw new Error('not a JPEG')
    if (header.width * header.height > MAX_PIXELS) throw new Error(`image of ${header.width}×${header.height} pixels is larger than ${MAX_PIXELS} pixels`)
    const transformer = new Transformer(bytes)
    const metadata = transformer.metadataSync()
    if (metadata.format.toLowerCase() !== 'jpeg') throw new Error(`not a JPEG but ${metadata.format}`)
    transformer.rawPixelsSync()
    return { width: metadata.width, height: metadata.height }
  } catch (error) {
    throw new Error(`JPEG does not decode: ${(error as Error).message.trim()}`)
  }
}
