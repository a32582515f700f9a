/**
 * Small files whose headers claim huge images: what a careless or hostile client sends to make a decoder
 * allocate gigabytes. Both are well-formed, so only a size check keeps a decoder from trying.
 */
import jpeg from 'jpeg-js'
import { deflateSync } from 'node:zlib'
import { pngFile } from '../inference/png-writer.ts'

/** A complete 16×16 baseline JPEG (~600 bytes) whose SOF0 header is patched to claim `width`×`height`. */
export function jpegClaimingSize(width: number, height: number): Uint8Array {
  const pixels = new Uint8Array(16 * 16 * 4).fill(200)
  const bytes = new Uint8Array(jpeg.encode({ data: pixels, width: 16, height: 16 }, 80).data)
  // jpeg-js writes no thumbnails, so the first FF C0 is the frame header: length(2) precision(1) height(2) width(2)
  const sof = bytes.findIndex((b, i) => b === 0xff && bytes[i + 1] === 0xc0)
  if (sof < 0) throw new Error('jpeg-js wrote no SOF0 marker')
  bytes.set([height >> 8, height & 0xff, width >> 8, width & 0xff], sof + 5)
  return bytes
}

/**
 * A real, valid all-black 1-bit grey PNG of `width`×`height`: a decompression bomb (20000×20000 is ~50 KB on
 * disk, 400 MB as 8-bit grey and 1.2 GB as RGB once decoded).
 */
export function pngBomb(width: number, height: number): Uint8Array {
  const header = new Uint8Array(13)
  const view = new DataView(header.buffer)
  view.setUint32(0, width)
  view.setUint32(4, height)
  header[8] = 1 // bit depth
  header[9] = 0 // grey
  const rows = new Uint8Array(height * (1 + Math.ceil(width / 8))) // filter byte 0 + zero bits per row
  return pngFile(header, new Uint8Array(deflateSync(rows, { level: 9 })))
}
