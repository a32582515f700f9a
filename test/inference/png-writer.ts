/** A minimal PNG encoder for tests: 8/16-bit gray, gray+alpha, RGB or RGBA, no filtering. */
import { deflateSync } from 'node:zlib'

const COLOR_TYPES: Record<number, number> = { 1: 0, 2: 4, 3: 2, 4: 6 }

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  out.set(new TextEncoder().encode(type), 4)
  out.set(data, 8)
  view.setUint32(8 + data.length, Bun.hash.crc32(out.subarray(4, 8 + data.length)) >>> 0)
  return out
}

/** `samples` are row-major interleaved, big-endian when `bitDepth` is 16. */
export function encodePng(width: number, height: number, channels: 1 | 2 | 3 | 4, samples: Uint8Array, bitDepth: 8 | 16 = 8): Uint8Array {
  const header = new Uint8Array(13)
  const view = new DataView(header.buffer)
  view.setUint32(0, width)
  view.setUint32(4, height)
  header[8] = bitDepth
  header[9] = COLOR_TYPES[channels]!
  const rowBytes = width * channels * (bitDepth / 8)
  const raw = new Uint8Array(height * (rowBytes + 1))
  for (let y = 0; y < height; y++) raw.set(samples.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1)
  return pngFile(header, new Uint8Array(deflateSync(raw)))
}

/** The signature, an IHDR chunk with `header` (13 bytes), one IDAT chunk with the compressed rows, and IEND. */
export function pngFile(header: Uint8Array, compressedRows: Uint8Array): Uint8Array {
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', compressedRows), chunk('IEND', new Uint8Array(0)),
  ]
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const part of parts) { png.set(part, at); at += part.length }
  return png
}
