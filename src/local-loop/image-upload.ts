import { ContractError, decodeJson, type UploadImageMetadata as UploadImageMetadataType, UploadImageMetadata } from '../contract/index.ts'
import { inspectJpeg } from './jpeg-inspection.ts'

/**
 * The image upload of §4 #13 as pure steps: pair the multipart parts (all named `files`) into items by
 * their `image_<id>` stem, then check each item's JSON and JPEG. The item id is the stem without the
 * `image_` prefix; the store de-duplicates by it, so an outbox retry after a crash stores nothing twice.
 */
export interface UploadPart {
  fileName: string
  bytes: Uint8Array
}

export interface PairedUploadItem {
  id: string
  metadataBytes: Uint8Array
  jpeg: Uint8Array
}

export interface PairingOutcome {
  items: PairedUploadItem[]
  /** one sentence per broken part, naming the file */
  problems: string[]
}

export interface CheckedUploadItem {
  id: string
  metadata: UploadImageMetadataType
  jpeg: Uint8Array
  width: number
  height: number
}

const MAX_ID_LENGTH = 200

/** Why `id` cannot name an image (it travels in URL paths and file listings), or undefined when it can. */
export function imageIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'the image id is empty'
  if (id.length > MAX_ID_LENGTH) return `the image id is longer than ${MAX_ID_LENGTH} characters`
  if (id === '.' || id === '..') return `the image id ${JSON.stringify(id)} is reserved`
  if (/[\/\\?#%\u0000-\u001f\u007f]/.test(id)) return `the image id ${JSON.stringify(id)} contains a character that is not allowed (/ \\ ? # % or a control character)`
  return undefined
}

type PartKind = 'metadata' | 'image'

function classify(fileName: string): { id: string; kind: PartKind } | undefined {
  const match = /^(.*)\.(json|jpe?g)$/i.exec(fileName)
  if (!match) return undefined
  const stem = match[1]!
  const id = stem.startsWith('image_') ? stem.slice('image_'.length) : stem
  return { id, kind: match[2]!.toLowerCase() === 'json' ? 'metadata' : 'image' }
}

/** Pairs `image_<id>.json` with `image_<id>.jpg` (or `.jpeg`); keeps the order in which ids first appear. */
export function pairUploadParts(parts: UploadPart[]): PairingOutcome {
  const problems: string[] = []
  const byId = new Map<string, { metadata?: UploadPart; image?: UploadPart }>()
  for (const part of parts) {
    const kind = classify(part.fileName)
    if (!kind) {
      problems.push(`file ${JSON.stringify(part.fileName)} is neither image_<id>.json nor image_<id>.jpg`)
      continue
    }
    const idProblem = imageIdProblem(kind.id)
    if (idProblem) {
      problems.push(`file ${JSON.stringify(part.fileName)}: ${idProblem}`)
      continue
    }
    const entry = byId.get(kind.id) ?? {}
    byId.set(kind.id, entry)
    const slot = kind.kind === 'metadata' ? 'metadata' : 'image'
    if (entry[slot]) {
      problems.push(`file ${JSON.stringify(part.fileName)} appears twice for image ${JSON.stringify(kind.id)}`)
      continue
    }
    entry[slot] = part
  }
  const items: PairedUploadItem[] = []
  for (const [id, entry] of byId) {
    if (!entry.metadata) {
      problems.push(`${entry.image!.fileName} has no matching image_${id}.json`)
    } else if (!entry.image) {
      problems.push(`${entry.metadata.fileName} has no matching image_${id}.jpg`)
    } else {
      items.push({ id, metadataBytes: entry.metadata.bytes, jpeg: entry.image.bytes })
    }
  }
  return { items, problems }
}

/** Decodes the item's metadata with the contract and checks that its JPEG decodes; throws naming the file. */
export function checkUploadItem(item: PairedUploadItem): CheckedUploadItem {
  let metadata: UploadImageMetadataType
  try {
    metadata = decodeJson(UploadImageMetadata, new TextDecoder('utf-8', { fatal: false }).decode(item.metadataBytes))
  } catch (error) {
    const message = error instanceof ContractError ? error.issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ') : (error as Error).message
    throw new Error(`image_${item.id}.json: ${message}`)
  }
  try {
    const { width, height } = inspectJpeg(item.jpeg)
    return { id: item.id, metadata, jpeg: item.jpeg, width, height }
  } catch (error) {
    throw new Error(`image_${item.id}.jpg: ${(error as Error).message}`)
  }
}
