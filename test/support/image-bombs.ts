/**
 * Small files whose headers claim huge images: what a careless or hostile client sends to make a decoder
 * allocate gigabytes. Both are well-formed, so only a size check keeps a decoder from trying.
 */
import jpeg from 'jpeg-js'
import { deflateSync } from 'node:zlib'

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

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  out.set(new TextEncoder().encode(type), 4)
  out.set(data, 8)
  view.setUint32(8 + data.length, Bun.hash.crc32(out.subarray(4, 8 + data.length)) >>> 0)
  return out
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
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header), pngChunk('IDAT', new Uint8Array(deflateSync(rows, { level: 9 }))), pngChunk('IEND', new Uint8Array(0)),
  ]
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const part of parts) { png.set(part, at); at += part.length }
  return png
}
