import { createHash } from 'node:crypto'

/**
 * File names for ids that come from a Loop (images: §2 disk layout `<org>/<project>/images/<id>.jpg`; trainings:
 * `<org>/<project>/trainings/<id>/`). A Loop id is an opaque string: ids that are plain names (the Loop's UUIDs)
 * are used as they are, so folders shared with the Python node stay valid; any other id is percent-encoded byte by
 * byte (`/`, `.`, `:` … become `%2F`, `%2E`, `%3A`), so it cannot leave its folder or name a hidden file, and two
 * ids never share a name. An encoding too long for a file name is replaced by the id's SHA-256.
 */
const PLAIN_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/
const MAX_STEM_LENGTH = 200
const UNRESERVED = /[A-Za-z0-9_-]/

export function fileStemOf(id: string): string {
  if (PLAIN_ID.test(id) && id.length <= MAX_STEM_LENGTH) return id
  let encoded = ''
  for (const byte of new TextEncoder().encode(id)) {
    const char = String.fromCharCode(byte)
    encoded += byte < 0x80 && UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  // '%' never appears in a plain id, so neither form can collide with one; an empty id becomes '%'
  if (encoded === '') return '%'
  return encoded.length <= MAX_STEM_LENGTH ? encoded : `%sha256-${createHash('sha256').update(id).digest('hex')}`
}

export function imageFileName(id: string): string {
  return `${fileStemOf(id)}.jpg`
}
