import type { Elysia } from 'elysia'
import { Type, type TSchema } from '@sinclair/typebox'
import {
  AboutResponse, ContractError, DetectRequestOptions, ImageMetadata, ModelVersionResponse, OkText, OperationModeBody, OperationModeSchema, OutboxModeBody,
  OutboxModeSchema, UploadAnswer, UploadRequestOptions, VersionModeBody, decode, formatCreated,
} from '../contract/index.ts'
import { binaryString, jsonContent, multipartContent, routeDocs, textContent } from '../node/route-docs.ts'
import { ImageInputError, InferenceUnavailableError } from '../inference/inference-errors.ts'
import type { ImageInput } from '../inference/image-decoding.ts'
import { clipText, errorMessage, MAX_ERROR_ANSWER_CHARACTERS, quoteInput } from '../foundation/log.ts'
import { MAX_SETTING_BODY_BYTES, readBodyText, RequestTooLargeError } from '../node/request-limits.ts'
import { DetectorUnavailableError } from './active-detector.ts'
import { OutboxBusyError } from './detection-service.ts'
import type { DetectorApi, RouteHost } from './detector-api.ts'
import { VersionModeError } from './model-updater.ts'
import { RequestOptionError, creationDateFrom, detectOptionsFrom, requestValue, uploadPriorityFrom } from './request-options.ts'

/** A bad request answered with `{detail}` and a 4xx status. */
class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

/** Status of an error: bad input 4xx, no model 503, everything else 500; message always in `detail`. */
export function httpStatusOf(error: unknown): number {
  if (error instanceof HttpError || error instanceof RequestTooLargeError) return error.status
  if (error instanceof ImageInputError || error instanceof RequestOptionError || error instanceof ContractError) return 422
  if (error instanceof VersionModeError) return error.status
  if (error instanceof DetectorUnavailableError || error instanceof InferenceUnavailableError || error instanceof OutboxBusyError) return 503
  if (error instanceof RangeError) return 422
  return 500
}

async function filesOf(request: Request, field: string): Promise<File[]> {
  const type = request.headers.get('content-type') ?? ''
  if (!type.startsWith('multipart/form-data')) throw new HttpError(422, `expected multipart/form-data with a "${field}" field, got ${type ? quoteInput(type) : 'no content type'}`)
  let form: FormData
  try {
    form = await request.formData()
  } catch (error) {
    throw new HttpError(400, `malformed multipart body: ${errorMessage(error)}`)
  }
  const files = form.getAll(field).filter((v): v is File => typeof v !== 'string')
  if (files.length === 0) throw new HttpError(422, `field "${field}" is missing: send the image as a multipart file named "${field}"`)
  return files
}

const encoded = async (file: File): Promise<ImageInput> => ({ kind: 'encoded', bytes: new Uint8Array(await file.arrayBuffer()) })
const plain = (text: string) => new Response(text, { headers: { 'content-type': 'text/plain; charset=utf-8' } })

/** A setting route's docs: a raw text body (a JSON string works too), answered with "OK". */
const settingDocs = (summary: string, body: TSchema) => routeDocs({
  summary, tags: ['detector'], body: [textContent(body), jsonContent(body)], responses: { 200: textContent(OkText, 'set') },
})

/** The REST API of §7.3 on the node's Elysia app. */
export function registerDetectorRoutes(app: Elysia<any, any, any, any, any, any, any>, detector: DetectorApi, host: RouteHost, options: { backdoor: boolean }): void {
  const fail = (error: unknown, set: { status?: number | string }, route: string) => {
    const status = httpStatusOf(error)
    set.status = status
    const log = status >= 500 ? host.log.error : host.log.warn
    const detail = clipText(errorMessage(error), MAX_ERROR_ANSWER_CHARACTERS)
    log(`${route} failed`, { status, error: detail })
    return { detail }
  }
  const tracked = <T>(work: () => Promise<T>) => host.track(work())

  app
    .post('/detect', ({ request, set }) => tracked(async () => {
      try {
        const url = new URL(request.url)
        const options = detectOptionsFrom(request.headers, url.searchParams)
        const [file] = await filesOf(request, 'file')
        return await detector.detect(await encoded(file!), options, 'rest')
      } catch (error) {
        return fail(error, set, 'POST /detect')
      }
    }), { parse: 'none', detail: routeDocs({
      summary: 'Detect objects in an image (multipart field "file"); options as query parameters or headers', tags: ['detector'],
      query: DetectRequestOptions, headers: DetectRequestOptions,
      body: multipartContent(Type.Object({ file: binaryString('a JPEG, PNG or other image') })),
      responses: { 200: jsonContent(ImageMetadata, 'the detections') },
    }) })
    .post('/upload', ({ request, set }) => tracked(async () => {
      try {
        const url = new URL(request.url)
        const files = await filesOf(request, 'files')
        const source = requestValue('source', request.headers, url.searchParams) ?? null
        const created = creationDateFrom(request.headers, url.searchParams)
        const priority = uploadPriorityFrom(request.headers, url.searchParams)
        const items = await Promise.all(files.map(async (file) => ({ name: file.name, image: await encoded(file) })))
        // all or none: every file is checked before the first is queued
        await detector.upload(items, decode(ImageMetadata, { source, created: created ?? formatCreated() }), priority)
        return [200, 'OK']
      } catch (error) {
        return fail(error, set, 'POST /upload')
      }
    }), { parse: 'none', detail: routeDocs({
      summary: 'Queue images for upload to the Loop (multipart "files"; all or none: a bad file → 422 naming it, nothing queued)', tags: ['detector'],
      query: UploadRequestOptions, headers: UploadRequestOptions,
      body: multipartContent(Type.Object({ files: Type.Array(binaryString('an image'), { minItems: 1 }) })),
      responses: { 200: jsonContent(UploadAnswer, 'all images queued') },
    }) })
    .get('/about', () => detector.about(), { detail: routeDocs({ summary: 'Model, version control and operation mode', tags: ['detector'], responses: { 200: jsonContent(AboutResponse) } }) })
    .get('/model_version', () => detector.modelVersions(), { detail: routeDocs({ summary: 'Current, target, Loop and local model versions', tags: ['detector'], responses: { 200: jsonContent(ModelVersionResponse) } }) })
    .put('/model_version', async ({ request, set }) => {
      try {
        await detector.setVersionMode(await readBodyText(request, MAX_SETTING_BODY_BYTES))
        return 'OK'
      } catch (error) {
        return fail(error, set, 'PUT /model_version')
      }
    }, { parse: 'none', detail: settingDocs('Body: follow_loop | pause | a version such as 1.3', VersionModeBody) })
    .get('/outbox_mode', () => plain(detector.outboxMode()), { detail: routeDocs({ summary: 'continuous_upload | stopped', tags: ['detector'], responses: { 200: textContent(OutboxModeSchema) } }) })
    .put('/outbox_mode', async ({ request, set }) => {
      try {
        await detector.setOutboxMode((await readBodyText(request, MAX_SETTING_BODY_BYTES)).trim().replace(/^"|"$/g, ''))
        return 'OK'
      } catch (error) {
        if (error instanceof RequestTooLargeError) return fail(error, set, 'PUT /outbox_mode')
        set.status = 422
        return { detail: clipText(`Could not set outbox mode: ${errorMessage(error)}`, MAX_ERROR_ANSWER_CHARACTERS) }
      }
    }, { parse: 'none', detail: settingDocs('Body: continuous_upload | stopped (persists across restarts)', OutboxModeBody) })
    .get('/operation_mode', () => plain(detector.operationMode), { detail: routeDocs({ summary: 'startup | idle | detecting', tags: ['detector'], responses: { 200: textContent(OperationModeSchema) } }) })
    .put('/operation_mode', async ({ request, set }) => {
      try {
        await detector.setOperationMode(await readBodyText(request, MAX_SETTING_BODY_BYTES))
        return 'OK'
      } catch (error) {
        return fail(error, set, 'PUT /operation_mode')
      }
    }, { parse: 'none', detail: settingDocs('Body: startup | idle | detecting (detecting blocks model updates)', OperationModeBody) })
  if (options.backdoor) {
    app.post('/reset', () => detector.reset(), {
      detail: routeDocs({ summary: 'Test backdoor: wipe the data folder (USE_BACKDOOR_CONTROLS)', tags: ['backdoor'], responses: { 200: jsonContent(Type.Boolean(), 'false when wiping failed') } }),
    })
  }
}
