import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '../foundation/atomic-file.ts'
import { ConcurrencyLimit } from '../foundation/concurrency-limit.ts'
import { errorMessage, type Logger } from '../foundation/log.ts'
import { loadNapiImage } from '../inference/image-decoding.ts'
import { notFound } from './loop-errors.ts'

/**
 * Gallery thumbnails: JPEGs at most 320 pixels on their long side, made once per image and kept in
 * `<data>/thumbnails/<org>/<project>/<id>.jpg`. Decoding, resizing and encoding run in @napi-rs/image's async
 * tasks on the libuv thread pool, two at a time, so a gallery of new images never stalls the event loop; requests
 * for a thumbnail being made wait for that one. Without the native module the full image is served instead.
 */
export const THUMBNAIL_SIDE = 320
const THUMBNAIL_QUALITY = 78
const PARALLEL_THUMBNAILS = 2

export interface ThumbnailSource {
  organization: string
  project: string
  id: string
  width: number
  height: number
  /** the image file */
  path: string
}

/** The thumbnail size of a `width`×`height` image: the long side THUMBNAIL_SIDE, never enlarged (pure). */
export function thumbnailSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, THUMBNAIL_SIDE / Math.max(width, height, 1))
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) }
}

export class ThumbnailCache {
  private readonly making = new Map<string, Promise<Uint8Array>>()
  private readonly limit = new ConcurrencyLimit(PARALLEL_THUMBNAILS)

  constructor(private readonly dataFolder: string, private readonly log: Logger) {}

  /** The thumbnail's JPEG bytes, made now if it does not exist yet. */
  async thumbnail(image: ThumbnailSource): Promise<Uint8Array> {
    const path = join(this.dataFolder, 'thumbnails', image.organization, image.project, `${encodeURIComponent(image.id)}.jpg`)
    const cached = await readFile(path).catch(() => undefined)
    if (cached) return new Uint8Array(cached)
    let pending = this.making.get(path)
    if (!pending) {
      pending = this.limit.run(() => this.make(image, path)).finally(() => this.making.delete(path))
      this.making.set(path, pending)
    }
    return pending
  }

  private async make(image: ThumbnailSource, path: string): Promise<Uint8Array> {
    const original = new Uint8Array(await readFile(image.path).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? notFound(`the file of image ${image.id} is missing`) : error
    }))
    const napi = await loadNapiImage()
    if (napi instanceof Error) return original
    const size = thumbnailSize(image.width, image.height)
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await new napi.Transformer(original).resize(size.width, size.height).jpeg(THUMBNAIL_QUALITY))
    } catch (error) {
      // a file the codec cannot read is still an image of the Loop; show it as it is
      this.log.warn('thumbnail could not be made; serving the image itself', { id: image.id, error: errorMessage(error) })
      return original
    }
    await mkdir(dirname(path), { recursive: true })
    await writeFileAtomic(path, bytes)
    return bytes
  }
}
