import { openAsBlob } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { LoopError, type RequestContext } from './loop-error.ts'

/** One part of a multipart body: a file on disk, or bytes with a file name. The field defaults to `files`. */
export type MultipartFile =
  | { field?: string; path: string; fileName?: string }
  | { field?: string; fileName: string; data: Uint8Array | Blob | string; contentType?: string }

export type LoopBody =
  | { json: unknown }
  | { form: Record<string, string> }
  | { multipart: MultipartFile[] }
  | { bytes: Uint8Array | Blob; contentType: string }

/** Refuses a multipart upload before anything is sent when one of its files on disk is missing. */
export async function assertFilesExist(files: MultipartFile[], ctx: RequestContext): Promise<void> {
  for (const file of files) {
    if (!('path' in file)) continue
    if (!(await stat(file.path).then((found) => found.isFile(), () => false))) {
      throw new LoopError({ kind: 'missing_file', method: ctx.method, path: ctx.path, detail: `not sent: file ${file.path} does not exist` })
    }
  }
}

// Built per attempt: a retried request must send the whole body again. A file on disk is read as it is sent.
export async function buildBody(body: LoopBody | undefined, headers: Headers): Promise<BodyInit | undefined> {
  if (!body) return undefined
  if ('json' in body) {
    headers.set('content-type', 'application/json')
    return JSON.stringify(body.json)
  }
  if ('form' in body) {
    headers.set('content-type', 'application/x-www-form-urlencoded')
    return new URLSearchParams(body.form).toString()
  }
  if ('multipart' in body) {
    const form = new FormData()
    for (const file of body.multipart) {
      const field = file.field ?? 'files'
      if ('path' in file) form.append(field, await openAsBlob(file.path), file.fileName ?? basename(file.path))
      else {
        const blob = file.data instanceof Blob ? file.data : new Blob([file.data as BlobPart], file.contentType ? { type: file.contentType } : {})
        form.append(field, blob, file.fileName)
      }
    }
    return form
  }
  headers.set('content-type', body.contentType)
  return body.bytes as BodyInit
}
