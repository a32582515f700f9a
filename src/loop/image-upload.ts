/**
 * #13 `POST …/{org}/projects/{project}/images`: images with their metadata for the Loop, as the detector's outbox
 * sends them. Each image is two parts named `files`, `image_<id>.json` (its ImageMetadata) and `image_<id>.jpg`;
 * the Loop pairs them by that stem, so every item's id must be unique within a batch.
 */

/** Sends one multipart batch of images; the outbox's injection point (tests and library users pass their own). */
export type UploadFunction = (form: FormData, signal: AbortSignal) => Promise<Response>

/** The part names of one image; the outbox keeps its items on disk under the same names. */
export const imageJsonFileName = (id: string) => `image_${id}.json`
export const imageJpegFileName = (id: string) => `image_${id}.jpg`

export interface UploadImage {
  id: string
  /** ImageMetadata as JSON */
  json: Uint8Array
  jpeg: Uint8Array
}

/** The multipart form of one batch: the json part, then the jpg part, for each image in order. */
export function imageUploadForm(images: readonly UploadImage[]): FormData {
  const form = new FormData()
  for (const { id, json, jpeg } of images) {
    form.append('files', new Blob([json as BlobPart], { type: 'application/json' }), imageJsonFileName(id))
    form.append('files', new Blob([jpeg as BlobPart], { type: 'image/jpeg' }), imageJpegFileName(id))
  }
  return form
}

export interface ImageUploadTarget {
  baseUrl: string
  organization: string
  project: string
  /** PEM CA bundle trusted for https (LOOP_SSL_CERT_PATH) */
  ca?: string
  /** the `Cookie` header to send, read at each upload; upstream sends none, a node that is logged in sends its session */
  cookie?: () => string
}

/** The upload to the Loop's image endpoint: one fetch per batch, with the CA bundle and the session cookie when given. */
export function createFetchUpload(target: ImageUploadTarget): UploadFunction {
  const url = `${target.baseUrl.replace(/\/+$/, '')}/api/${encodeURIComponent(target.organization)}/projects/${encodeURIComponent(target.project)}/images`
  return (form, signal) => {
    const cookie = target.cookie?.()
    return fetch(url, {
      method: 'POST', body: form, signal,
      ...(cookie ? { headers: { cookie } } : {}),
      ...(target.ca ? { tls: { ca: target.ca } } : {}),
    })
  }
}
