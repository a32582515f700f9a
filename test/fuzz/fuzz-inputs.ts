/**
 * The bad inputs the fuzz suite sends everywhere: names that are JavaScript object members, names that climb
 * out of a folder, unusual unicode, wrong JSON types, deep nesting, invalid UTF-8 and compression bombs
 * (images: test/support/image-bombs.ts; zips: here).
 */
import { zipSync } from 'fflate'

/** Names that reach Object.prototype when a plain object is indexed with them. */
export const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', '__defineGetter__', 'isPrototypeOf'] as const

/** Names that leave their folder when joined to a path (or are not file names at all). */
export const TRAVERSAL_NAMES = ['..', '../escape', '../../../../../tmp/lln-fuzz-escape', '/tmp/lln-fuzz-absolute', 'a/../../escape', '..\\escape', 'C:\\escape', 'a\u0000b'] as const

/** Text that is valid but unusual: direction marks, NUL, emoji, 4-byte characters, a lone surrogate. */
export const UNUSUAL_TEXT = {
  rtl: 'left\u202Eright',
  nul: 'a\u0000b',
  emoji: 'face 🙂',
  fourByte: '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  family: '👩‍👩‍👧',
  combining: 'e\u0301',
  bom: '\uFEFFbom',
  loneSurrogate: 'a\uD800b',
} as const

/** Values of the wrong JSON type for a field that wants a string or an object. */
export const WRONG_JSON_TYPES: Record<string, unknown> = { null: null, array: [], number: 42, float: 1.5, boolean: true, string: 'text', 'empty object': {} }

/** JSON text nested `depth` levels deep (10 000 by default: more than any recursive validator should walk). */
export const deepJsonArray = (depth = 10_000) => '['.repeat(depth) + ']'.repeat(depth)
export const deepJsonObject = (depth = 10_000) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)

/** Bytes that are not UTF-8: a lone continuation byte, 0xFF/0xFE and a broken two-byte sequence. */
export const INVALID_UTF8 = Uint8Array.from([0x61, 0xff, 0xfe, 0xc3, 0x28, 0x62])

const text = (value: string) => new TextEncoder().encode(value)

/** A zip of one entry of zeros that expands about a thousandfold (64 MiB from ~65 KB). */
export function zipBomb(entryName = 'weights.bin', bytes = 64 * 1024 * 1024, extra: Record<string, string> = {}): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 9 }]> = { [entryName]: [new Uint8Array(bytes), { level: 9 }] }
  for (const [name, content] of Object.entries(extra)) files[name] = [text(content), { level: 9 }]
  return zipSync(files)
}

/** A zip whose entries have the given names (anything the format allows: `../x`, `/abs`, deep folders). */
export function zipWithEntries(entries: Record<string, string>): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(entries).map(([name, content]) => [name, text(content)])))
}

/** A zip holding a symbolic link (unix mode 0120777) named `name` that points at `target`. */
export function zipWithSymlink(name: string, target: string, extra: Record<string, string> = {}): Uint8Array {
  const files: Record<string, [Uint8Array, { os: number; attrs: number; level: 0 }] | Uint8Array> = {
    [name]: [text(target), { os: 3, attrs: (0o120777 << 16) >>> 0, level: 0 }],
  }
  for (const [entry, content] of Object.entries(extra)) files[entry] = text(content)
  return zipSync(files)
}

/**
 * A small zip whose directory claims that its first entry unpacks to `claimed` bytes: what a decoder that trusts
 * the header would allocate.
 */
export function zipClaimingSize(claimed: number, extra: Record<string, string> = {}): Uint8Array {
  const zip = zipSync({ 'weights.bin': [new Uint8Array(1024), { level: 9 }], ...Object.fromEntries(Object.entries(extra).map(([n, c]) => [n, text(c)])) })
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength)
  // local header: uncompressed size at +22; central directory entry: at +24
  view.setUint32(22, claimed, true)
  for (let at = 0; at + 4 <= zip.length; at++) {
    if (view.getUint32(at, true) === 0x02014b50 && new TextDecoder().decode(zip.subarray(at + 46, at + 46 + 11)) === 'weights.bin') {
      view.setUint32(at + 24, claimed, true)
      break
    }
  }
  return zip
}
