import { bodyTooLarge, readBodyBytes } from '../node/request-limits.ts'
import { quoteInput } from '../foundation/log.ts'
import { badRequest, LoopRequestError } from './loop-errors.ts'
import type { UploadPart } from './image-upload.ts'

/** Reading request bodies with a size cap; malformed bodies are 400, oversized ones 413. */
function tooLarge(limit: number): LoopRequestError {
  return new LoopRequestError(413, bodyTooLarge(limit).message)
}

/** Refuses a body whose declared length is over the cap before reading it. */
export function checkDeclaredLength(request: Request, limit: number): void {
  const declared = Number(request.headers.get('content-length') ?? '')
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit)
}

/** The body, never more than `limit` bytes of it held (a chunked body is cut off where it passes the limit). */
export async function readBytes(request: Request, limit: number): Promise<Uint8Array> {
  return readBodyBytes(request, limit)
}

/** The JSON body; an empty body is `undefined` so the schema can say which field is missing. */
export async function readJson(request: Request, limit: number): Promise<unknown> {
  const text = new TextDecoder().decode(await readBytes(request, limit))
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw badRequest(`malformed JSON body: ${(error as Error).message}`)
  }
}

/** Form fields of a urlencoded, multipart or JSON body (login accepts all three). */
export async function readFormFields(request: Request, limit: number): Promise<Record<string, unknown>> {
  const type = request.headers.get('content-type') ?? ''
  if (type.includes('application/json')) {
    const body = await readJson(request, limit)
    if (body === undefined) return {}
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new LoopRequestError(422, 'the JSON body must be an object')
    return body as Record<string, unknown>
  }
  if (type.includes('multipart/form-data')) {
    checkDeclaredLength(request, limit)
    const form = await request.formData().catch((error: Error) => { throw badRequest(`malformed multipart body: ${error.message}`) })
    return Object.fromEntries([...form.entries()].filter(([, v]) => typeof v === 'string'))
  }
  const text = new TextDecoder().decode(await readBytes(request, limit))
  return Object.fromEntries(new URLSearchParams(text))
}

/** A part's file name with RFC 7578 percent-encoding undone; a name that is not valid percent-encoding stays as sent. */
export function decodePartFileName(fileName: string): string {
  if (!/%[0-9A-Fa-f]{2}/.test(fileName)) return fileName
  try {
    return decodeURIComponent(fileName)
  } catch {
    return fileName
  }
}

/**
 * The file parts named `files` of a multipart body (§4 #8, #13), file names percent-decoded (aiohttp sends
 * `image_2026-12-04_17%3A04%3A58.477070.jpg`); other fields are ignored.
 */
export async function readFileParts(request: Request, limit: number): Promise<UploadPart[]> {
  const type = request.headers.get('content-type') ?? ''
  if (!type.includes('multipart/form-data')) throw new LoopRequestError(415, `expected a multipart/form-data body with parts named "files", got ${type ? quoteInput(type) : 'no content type'}`)
  checkDeclaredLength(request, limit)
  let form: FormData
  try {
    form = await request.formData()
  } catch (error) {
    throw badRequest(`malformed multipart body: ${(error as Error).message}`)
  }
  const parts: UploadPart[] = []
  let total = 0
  for (const value of form.getAll('files')) {
    if (typeof value === 'string') throw new LoopRequestError(422, 'a part named "files" is a text field, not a file')
    // Bun reads only filename=, not the RFC 5987 filename*= form
    if (!value.name) throw new LoopRequestError(422, 'a part named "files" has no file name: send it as filename="…" in its Content-Disposition')
    const bytes = new Uint8Array(await value.arrayBuffer())
    total += bytes.length
    if (total > limit) throw tooLarge(limit)
    parts.push({ fileName: decodePartFileName(value.name), bytes })
  }
  return parts
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
}
