import { ContractError, decodeJson, type UploadImageMetadata as UploadImageMetadataType, UploadImageMetadata } from '../contract/index.ts'
import { inspectJpeg } from './jpeg-inspection.ts'

/**
 * The image upload of §4 #13 as pure steps: pair the multipart parts (all named `files`) into items by
 * their `image_<stem>` file names, then check each item's JSON and JPEG. The stem is the uploader's name for
 * the item (the Python outbox uses its local time, colons included, percent-encoded in the part header as
 * RFC 7578 allows); it never becomes the image id, which the store assigns. The store recognises a repeated
 * upload by the JPEG's file name and bytes, so an outbox retry after a crash stores nothing twice.
 */
export interface UploadPart {
  /** percent-decoded (see readFileParts) */
  fileName: string
  bytes: Uint8Array
}

export interface PairedUploadItem {
  /** the file names' common stem without `image_` */
  stem: string
  /** the JPEG part's file name, percent-decoded */
  jpegFileName: string
  metadataBytes: Uint8Array
  jpeg: Uint8Array
}

export interface PairingOutcome {
  items: PairedUploadItem[]
  /** one sentence per broken part, naming the file */
  problems: string[]
}

export interface CheckedUploadItem {
  stem: string
  jpegFileName: string
  metadata: UploadImageMetadataType
  jpeg: Uint8Array
  width: number
  height: number
}

const MAX_FILE_NAME_LENGTH = 255

/** Why `fileName` cannot name an uploaded item (it is stored and shown as metadata), or undefined when it can. */
export function fileNameProblem(fileName: string): string | undefined {
  if (fileName.length > MAX_FILE_NAME_LENGTH) return `the file name is longer than ${MAX_FILE_NAME_LENGTH} characters`
  if (/[\u0000-\u001f\u007f]/.test(fileName)) return 'the file name contains a control character'
  return undefined
}

type PartKind = 'metadata' | 'image'

function classify(fileName: string): { stem: string; kind: PartKind } | undefined {
  const match = /^(.+)\.(json|jpe?g)$/i.exec(fileName)
  if (!match) return undefined
  const stem = match[1]!.startsWith('image_') ? match[1]!.slice('image_'.length) : match[1]!
  if (stem === '') return undefined
  return { stem, kind: match[2]!.toLowerCase() === 'json' ? 'metadata' : 'image' }
}

/** Pairs `image_<stem>.json` with `image_<stem>.jpg` (or `.jpeg`); keeps the order in which stems first appear. */
export function pairUploadParts(parts: UploadPart[]): PairingOutcome {
  const problems: string[] = []
  const byStem = new Map<string, { metadata?: UploadPart; image?: UploadPart }>()
  for (const part of parts) {
    const fileName = part.fileName
    const nameProblem = fileNameProblem(fileName)
    if (nameProblem) {
      problems.push(`file ${JSON.stringify(fileName.slice(0, 100))}: ${nameProblem}`)
      continue
    }
    const kind = classify(fileName)
    if (!kind) {
      problems.push(`file ${JSON.stringify(fileName)} is neither image_<stem>.json nor image_<stem>.jpg`)
      continue
    }
    const entry = byStem.get(kind.stem) ?? {}
    byStem.set(kind.stem, entry)
    const slot = kind.kind === 'metadata' ? 'metadata' : 'image'
    if (entry[slot]) {
      problems.push(`file ${JSON.stringify(fileName)} appears twice for image ${JSON.stringify(kind.stem)}`)
      continue
    }
    entry[slot] = part
  }
  const items: PairedUploadItem[] = []
  for (const [stem, entry] of byStem) {
    if (!entry.metadata) {
      problems.push(`${entry.image!.fileName} has no matching image_${stem}.json`)
    } else if (!entry.image) {
      problems.push(`${entry.metadata.fileName} has no matching image_${stem}.jpg`)
    } else {
      items.push({ stem, jpegFileName: entry.image.fileName, metadataBytes: entry.metadata.bytes, jpeg: entry.image.bytes })
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
    throw new Error(`image_${item.stem}.json: ${message}`)
  }
  try {
    const { width, height } = inspectJpeg(item.jpeg)
    return { stem: item.stem, jpegFileName: item.jpegFileName, metadata, jpeg: item.jpeg, width, height }
  } catch (error) {
    throw new Error(`${item.jpegFileName}: ${(error as Error).message}`)
  }
}
