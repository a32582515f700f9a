import { Elysia } from 'elysia'
import { LOOP_IMAGE_STATES, LoginForm, decode, isOneOf, type LoopImageState } from '../contract/index.ts'
import { quoteInput, type Logger } from '../foundation/log.ts'
import { json, readFileParts, readFormFields, readJson } from './http-body.ts'
import { LoopRequestError, notFound, unprocessable } from './loop-errors.ts'
import type { LoopOperations } from './loop-operations.ts'
import type { LoopStore } from './loop-store.ts'
import { expiredSessionCookie, sessionCookie, type Session, type SessionStore } from './session-store.ts'

/**
 * The node-facing REST API of §4 (#1–#13, T1–T3) and the converter's endpoints of §9, under /api.
 * "Login" routes need the session cookie from POST /api/login (401 otherwise); the model download (#7)
 * and the image upload (#13) do not, as upstream nodes call them without cookies.
 */
export interface ApiDependencies {
  operations: LoopOperations
  store: LoopStore
  sessions: SessionStore
  log: Logger
  /** largest multipart upload (images, models) */
  maxUploadBytes: number
  /** largest JSON or form body */
  maxJsonBytes: number
  version: string
}

const MAX_IDS_PER_REQUEST = 1_000

function requireSession(sessions: SessionStore, request: Request): Session {
  const session = sessions.fromCookieHeader(request.headers.get('cookie'))
  if (!session) throw new LoopRequestError(401, 'not logged in: POST /api/login with username and password, then send the session cookie')
  return session
}

function stateQuery(value: string | undefined): LoopImageState | undefined {
  if (value === undefined || value === '') return undefined
  if (!isOneOf(LOOP_IMAGE_STATES, value)) throw unprocessable(`query parameter state=${quoteInput(value)} is not one of ${LOOP_IMAGE_STATES.join(', ')}`)
  return value
}

function trainingNumber(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw unprocessable(`training number ${quoteInput(text)} is not a non-negative integer`)
  return Number(text)
}

/** The host the caller used to reach us; model.json and the model list report it as the model's `host`. */
function hostOf(request: Request): string | null {
  return request.headers.get('host')
}

export function createApiRoutes(deps: ApiDependencies) {
  const { operations, store, sessions } = deps
  const login = (request: Request) => requireSession(sessions, request)
  const none = { parse: 'none' as const }

  return new Elysia({ prefix: '/api' })
    // #1
    .get('/status', () => json(200, { status: 'ok', loop: 'local', version: deps.version }))
    // #2
    .post('/login', async ({ request }) => {
      const form = decode(LoginForm, await readFormFields(request, deps.maxJsonBytes))
      const session = sessions.login(form.username ?? '', form.password ?? '')
      if (!session) {
        deps.log.warn('login refused', { username: form.username })
        return json(401, { detail: 'invalid username or password' })
      }
      return json(200, { username: session.username }, { 'set-cookie': sessionCookie(session.token) })
    }, none)
    // #3
    .post('/logout', ({ request }) => {
      const session = login(request)
      sessions.logout(session.token)
      return json(200, { detail: 'logged out' }, { 'set-cookie': expiredSessionCookie() })
    }, none)
    // §9 converter: every project
    .get('/projects', ({ request }) => {
      login(request)
      return json(200, operations.projectsListing())
    })
    // T2
    .post('/:org/projects/generator', async ({ request, params }) => {
      login(request)
      return json(200, await operations.generateProject(params.org, await readJson(request, deps.maxJsonBytes)))
    }, none)
    // §9: project with categories
    .get('/:org/projects/:project', ({ request, params }) => {
      login(request)
      return json(200, operations.projectInfo(params.org, params.project))
    })
    // T1
    .delete('/:org/projects/:project', async ({ request, params, query }) => {
      login(request)
      const keepImages = /^(true|1|yes)$/i.test(String(query.keep_images ?? ''))
      if (!(await store.deleteProject(params.org, params.project, keepImages))) throw notFound(`project ${params.org}/${params.project} does not exist`)
      return json(200, { detail: `project ${params.org}/${params.project} deleted`, keep_images: keepImages })
    }, none)
    // #4
    .get('/:org/projects/:project/data', ({ request, params, query }) => {
      login(request)
      return json(200, operations.projectData(params.org, params.project, stateQuery(query.state)))
    })
    // #5
    .get('/:org/projects/:project/images', ({ request, params, query }) => {
      login(request)
      store.requireProject(params.org, params.project)
      if (query.ids === undefined) throw unprocessable('query parameter ids is required (comma-separated image ids)')
      const ids = String(query.ids).split(',').map((id) => id.trim()).filter((id) => id !== '')
      if (ids.length > MAX_IDS_PER_REQUEST) throw unprocessable(`at most ${MAX_IDS_PER_REQUEST} ids per request, got ${ids.length}`)
      return json(200, { images: store.images.byIds(params.org, params.project, ids).map((image) => operations.imageData(image)) })
    })
    // #13 (no login: the outbox sends no cookies)
    .post('/:org/projects/:project/images', async ({ request, params }) => {
      store.requireProject(params.org, params.project)
      const parts = await readFileParts(request, deps.maxUploadBytes)
      return json(200, await operations.uploadImages(params.org, params.project, parts))
    }, none)
    // #6
    .get('/:org/projects/:project/images/:id/main', async ({ request, params }) => {
      login(request)
      const bytes = await operations.imageBytes(params.org, params.project, params.id)
      return new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'image/jpeg', 'content-length': String(bytes.length) } })
    })
    // #11 (and §9)
    .get('/:org/projects/:project/models', ({ request, params }) => {
      login(request)
      return json(200, operations.modelsListing(params.org, params.project, hostOf(request)))
    })
    // #7 (no login)
    .get('/:org/projects/:project/models/:model/:format/file', async ({ request, params }) => {
      const zip = await operations.modelZip(params.org, params.project, params.model, params.format, hostOf(request))
      return new Response(zip.bytes as Uint8Array<ArrayBuffer>, {
        headers: { 'content-type': 'application/zip', 'content-disposition': `attachment; filename=${zip.fileName}`, 'content-length': String(zip.bytes.length) },
      })
    })
    // §9: the converter adds a format to an existing model
    .put('/:org/projects/:project/models/:model/:format/file', async ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      const parts = await readFileParts(request, deps.maxUploadBytes)
      const { model } = await operations.uploadModelFiles(params.org, params.project, { modelId: params.model }, params.format, parts, { requireModelJson: false })
      return json(200, { id: model.id, version: model.version, formats: model.formats })
    }, none)
    // #8
    .put('/:org/projects/:project/trainings/:number/models/latest/:format/file', async ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      const number = trainingNumber(params.number)
      const parts = await readFileParts(request, deps.maxUploadBytes)
      const { model } = await operations.uploadModelFiles(params.org, params.project, { trainingNumber: number }, params.format, parts, { requireModelJson: true })
      return json(200, { id: model.id, version: model.version, formats: model.formats })
    }, none)
    // T3
    .get('/:org/projects/:project/trainings', ({ request, params }) => {
      login(request)
      return json(200, operations.trainingsListing(params.org, params.project))
    })
    // #9
    .post('/:org/projects/:project/detections', async ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      return json(200, operations.storeDetections(params.org, params.project, await readJson(request, deps.maxJsonBytes)))
    }, none)
    // #10
    .get('/:org/projects/:project/deployment/target', ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      const model = store.deploymentTarget(params.org, params.project)
      if (!model) throw notFound(`no deployment target is set for ${params.org}/${params.project}`)
      return json(200, { model_uuid: model.id, version: model.version })
    })
    // #12
    .post('/:org/projects/:project/detectors', async ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      operations.recordDetectorStatus(params.org, params.project, await readJson(request, deps.maxJsonBytes))
      return json(200, { success: true })
    }, none)
    .get('/:org/projects/:project/detectors', ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      return json(200, { detectors: store.detectorStatuses(params.org, params.project) })
    })
}
