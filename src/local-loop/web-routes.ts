import { Elysia } from 'elysia'
import {
  AnnotateRequest, AnnotateResponse, AnnotationParams, AnnotationRequest, ErrorDetail, GalleryPage, GalleryQuery, ImageAnnotationsResponse,
  ImageParams, ImageStateRequest, ImageUploadResponse, ImageView, ProjectParams, SessionResponse,
} from '../contract/index.ts'
import { Type } from '@sinclair/typebox'
import { binaryString, bytesContent, jsonContent, multipartContent, routeDocs, type RouteDocsInput } from '../node/route-docs.ts'
import { requireAdmin } from './admin-routes.ts'
import { annotateWithNode } from './annotate-round-trip.ts'
import { categoryFor, withAnnotation, withoutAnnotation } from './annotation-edits.ts'
import { json } from './http-body.ts'
import { inspectJpeg } from './jpeg-inspection.ts'
import { liveEventStream, liveSnapshot } from './live-events.ts'
import type { LocalLoopAdmin } from './local-loop-admin.ts'
import { LoopRequestError, notFound, unprocessable } from './loop-errors.ts'
import type { LoopOperations } from './loop-operations.ts'
import type { LoopStore } from './loop-store.ts'
import type { SessionStore } from './session-store.ts'
import type { ThumbnailCache } from './thumbnails.ts'

/**
 * The API of the local Loop's web page, under /admin next to the admin API and behind the same login:
 *
 *   GET    /admin/session                                          whether the caller is logged in
 *   GET    /admin/projects/<org>/<project>/gallery?state&tag&source&camera&from&to&page&per_page
 *   POST   /admin/projects/<org>/<project>/images                  multipart JPEG parts named "files" (+ field "tags")
 *   GET    /admin/projects/<org>/<project>/images/<id>/view        image data with annotations, detections; categories
 *   GET    /admin/projects/<org>/<project>/images/<id>/thumbnail   JPEG, made once and cached
 *   GET    /admin/projects/<org>/<project>/images/<id>/file        the JPEG
 *   PUT    /admin/projects/<org>/<project>/images/<id>/state       {state}
 *   POST   /admin/projects/<org>/<project>/images/<id>/annotations {kind: box|point, category_id, x, y[, width, height]}
 *   PUT    /admin/projects/<org>/<project>/images/<id>/annotations/<kind>/<index>   same body: replaces it
 *   DELETE /admin/projects/<org>/<project>/images/<id>/annotations/<kind>/<index>
 *   POST   /admin/projects/<org>/<project>/images/<id>/annotate    {category_id, x0, y0, x1, y1[, node]}: an annotator's outline
 *   GET    /admin/projects/<org>/<project>/live                    server-sent events: `snapshot` when nodes or trainings change
 *
 * Every request is checked against the schemas of contract/loop-web-api.ts (422 naming the field otherwise); bodies
 * are capped by the loop's upload limit before they are read (loop-http-app.ts).
 */
export interface WebRouteDependencies {
  getLoop: () => LocalLoopAdmin
  store: LoopStore
  operations: LoopOperations
  sessions: SessionStore
  thumbnails: ThumbnailCache
}

const MAX_UPLOAD_FILES = 100
const refusals = { 401: ErrorDetail, 404: ErrorDetail, 422: ErrorDetail }
/** The route's docs for /openapi.json, from the same schemas Elysia validates the route with. */
const docs = (input: Omit<RouteDocsInput, 'tags'>) => routeDocs({ ...input, tags: ['web page'] })
const jpegAnswer = { 200: bytesContent('image/jpeg', 'the JPEG') }
const jpegResponse = (bytes: Uint8Array, cache: string) =>
  new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'image/jpeg', 'content-length': String(bytes.length), 'cache-control': cache } })

export function createWebRoutes(deps: WebRouteDependencies) {
  const { store, operations, sessions } = deps
  const imageOf = (org: string, project: string, id: string) => {
    store.requireProject(org, project)
    const image = store.images.get(org, project, id)
    if (!image) throw notFound(`image ${id} does not exist in ${org}/${project}`)
    return image
  }
  const imageAnswer = (org: string, project: string, id: string) => json(200, { image: operations.imageData(imageOf(org, project, id)) })

  return new Elysia({ prefix: '/admin' })
    // before validation, so a caller without login learns nothing about the input
    .onTransform(({ request }) => requireAdmin(sessions, request))
    .get('/session', ({ request }) => json(200, {
      logged_in: !sessions.requiresCredentials || sessions.fromCookieHeader(request.headers.get('cookie')) !== undefined || request.headers.has('authorization'),
      credentials_required: sessions.requiresCredentials,
    }), { response: { 200: SessionResponse, 401: ErrorDetail }, detail: docs({ summary: 'Whether the caller is logged in', responses: { 200: jsonContent(SessionResponse) } }) })
    .get('/projects/:org/:project/gallery', ({ params, query }) => {
      store.requireProject(params.org, params.project)
      return json(200, store.gallery.page(params.org, params.project, query))
    }, { params: ProjectParams, query: GalleryQuery, response: { 200: GalleryPage, ...refusals }, detail: docs({ summary: 'One page of images, newest first, filtered', query: GalleryQuery, responses: { 200: jsonContent(GalleryPage) } }) })
    .post('/projects/:org/:project/images', async ({ params, request }) => {
      store.requireProject(params.org, params.project)
      const type = request.headers.get('content-type') ?? ''
      if (!type.includes('multipart/form-data')) throw new LoopRequestError(415, 'send the images as multipart/form-data parts named "files"')
      const form = await request.formData().catch((error: Error) => { throw new LoopRequestError(400, `malformed multipart body: ${error.message}`) })
      const files = form.getAll('files').filter((value): value is File => typeof value !== 'string')
      if (files.length === 0) throw unprocessable('no images: send JPEG files as parts named "files"')
      if (files.length > MAX_UPLOAD_FILES) throw unprocessable(`at most ${MAX_UPLOAD_FILES} images per upload, got ${files.length}`)
      const tagText = form.get('tags')
      const imageTags = typeof tagText === 'string' ? tagText.split(',').map((t) => t.trim()).filter((t) => t !== '').slice(0, 20) : []
      const jpegs: Uint8Array[] = []
      for (const file of files) {
        const bytes = new Uint8Array(await file.arrayBuffer())
        try {
          inspectJpeg(bytes)
        } catch (error) {
          throw unprocessable(`${file.name || 'a file'}: ${(error as Error).message}; nothing was stored`)
        }
        jpegs.push(bytes)
      }
      const ids: string[] = []
      for (const jpeg of jpegs) ids.push(await operations.addImage(params.org, params.project, { jpeg, source: 'web upload', tags: imageTags }))
      return json(200, { ids })
    }, { parse: 'none', params: ProjectParams, response: { 200: ImageUploadResponse, ...refusals }, detail: docs({
      summary: 'Upload JPEG images (multipart parts "files", optional field "tags")',
      body: multipartContent(Type.Object({ files: Type.Array(binaryString('a JPEG')), tags: Type.Optional(Type.String({ description: 'comma-separated' })) })),
      responses: { 200: jsonContent(ImageUploadResponse) },
    }) })
    .get('/projects/:org/:project/images/:id/view', ({ params }) => json(200, {
      image: operations.imageData(imageOf(params.org, params.project, params.id)), categories: store.categories(params.org, params.project),
    }), { params: ImageParams, response: { 200: ImageView, ...refusals }, detail: docs({ summary: 'An image with its annotations and detections, and the categories', responses: { 200: jsonContent(ImageView) } }) })
    .get('/projects/:org/:project/images/:id/thumbnail', async ({ params }) => {
      const image = imageOf(params.org, params.project, params.id)
      const bytes = await deps.thumbnails.thumbnail({ ...image, path: store.images.path(image) })
      return jpegResponse(bytes, 'private, max-age=86400')
    }, { params: ImageParams, response: refusals, detail: docs({ summary: 'The image\'s thumbnail (JPEG, long side 320 px)', responses: jpegAnswer }) })
    .get('/projects/:org/:project/images/:id/file', async ({ params }) => {
      return jpegResponse(await operations.imageBytes(params.org, params.project, params.id), 'private, max-age=86400')
    }, { params: ImageParams, response: refusals, detail: docs({ summary: 'The image (JPEG)', responses: jpegAnswer }) })
    .put('/projects/:org/:project/images/:id/state', ({ params, body }) => {
      imageOf(params.org, params.project, params.id)
      store.images.setState(params.org, params.project, params.id, body.state)
      return imageAnswer(params.org, params.project, params.id)
    }, { params: ImageParams, body: ImageStateRequest, response: { 200: ImageAnnotationsResponse, ...refusals }, detail: docs({ summary: 'Move the image to another state', body: jsonContent(ImageStateRequest), responses: { 200: jsonContent(ImageAnnotationsResponse) } }) })
    .post('/projects/:org/:project/images/:id/annotations', ({ params, body }) => {
      imageOf(params.org, params.project, params.id)
      const category = categoryFor(store.categories(params.org, params.project), body.category_id)
      store.images.updateAnnotations(params.org, params.project, params.id, (current) => withAnnotation(current, body, category))
      return imageAnswer(params.org, params.project, params.id)
    }, { params: ImageParams, body: AnnotationRequest, response: { 200: ImageAnnotationsResponse, ...refusals }, detail: docs({ summary: 'Add a box or point annotation', body: jsonContent(AnnotationRequest), responses: { 200: jsonContent(ImageAnnotationsResponse) } }) })
    .put('/projects/:org/:project/images/:id/annotations/:kind/:index', ({ params, body }) => {
      imageOf(params.org, params.project, params.id)
      if (body.kind !== params.kind) throw unprocessable(`the body is a ${body.kind} annotation but the path names a ${params.kind} annotation`)
      const category = categoryFor(store.categories(params.org, params.project), body.category_id)
      store.images.updateAnnotations(params.org, params.project, params.id, (current) => withAnnotation(current, body, category, Number(params.index)))
      return imageAnswer(params.org, params.project, params.id)
    }, { params: AnnotationParams, body: AnnotationRequest, response: { 200: ImageAnnotationsResponse, ...refusals }, detail: docs({ summary: 'Replace a box or point annotation', body: jsonContent(AnnotationRequest), responses: { 200: jsonContent(ImageAnnotationsResponse) } }) })
    .delete('/projects/:org/:project/images/:id/annotations/:kind/:index', ({ params }) => {
      imageOf(params.org, params.project, params.id)
      store.images.updateAnnotations(params.org, params.project, params.id, (current) => withoutAnnotation(current, params.kind, Number(params.index)))
      return imageAnswer(params.org, params.project, params.id)
    }, { params: AnnotationParams, response: { 200: ImageAnnotationsResponse, ...refusals }, detail: docs({ summary: 'Delete an annotation', responses: { 200: jsonContent(ImageAnnotationsResponse) } }) })
    .post('/projects/:org/:project/images/:id/annotate', async ({ params, body }) => {
      const image = imageOf(params.org, params.project, params.id)
      const category = categoryFor(store.categories(params.org, params.project), body.category_id)
      const result = await annotateWithNode(deps.getLoop(), {
        organization: params.org, project: params.project, imageId: image.id, category,
        segmentationAnnotations: () => imageOf(params.org, params.project, params.id).segmentation_annotations,
      }, body)
      return json(200, result)
    }, { params: ImageParams, body: AnnotateRequest, response: { 200: AnnotateResponse, 502: ErrorDetail, 504: ErrorDetail, ...refusals }, detail: docs({ summary: 'Send a box to the annotator node; its outline and stored annotation', body: jsonContent(AnnotateRequest), responses: { 200: jsonContent(AnnotateResponse) } }) })
    .get('/projects/:org/:project/live', ({ params, request }) => {
      store.requireProject(params.org, params.project)
      const cookie = request.headers.get('cookie')
      const alive = () => !sessions.requiresCredentials || request.headers.has('authorization') || sessions.fromCookieHeader(cookie) !== undefined
      return liveEventStream(() => liveSnapshot(deps.getLoop(), store, params.org, params.project), alive)
    }, { params: ProjectParams, response: refusals, detail: docs({
      summary: 'Server-sent events: a LiveSnapshot whenever nodes, trainings or the deployment target change',
      responses: { 200: { mediaType: 'text/event-stream', schema: Type.String(), description: '`snapshot` events (data: a LiveSnapshot as JSON); `logout` when the session ends' } },
    }) })
}
