import { Elysia } from 'elysia'
import { Type } from '@sinclair/typebox'
import {
  DeploymentTarget, DetailAnswer, DetectionsStoredAnswer, DetectorStatus, DetectorStatusesAnswer, GeneratedProject, LOOP_IMAGE_STATES, LocalLoopModelsAnswer,
  LoginAnswer, LoginForm, LoopImageDataAnswer, LoopImageStateSchema, LoopProjectData, LoopProjectInfo, LoopStatusAnswer, ProjectDeletedAnswer,
  ProjectGeneratorRequest, ProjectsResponse, StoredModelAnswer, SuccessAnswer, TrainingsListing, UploadOutcome, decode, isOneOf, type LoopImageState,
} from '../contract/index.ts'
import { binaryString, bytesContent, docsTagged, jsonContent, multipartContent, type RouteDocsInput } from '../node/route-docs.ts'
import { quoteInput, type Logger } from '../foundation/log.ts'
import { json, readFileParts, readFormFields, readJson } from './http-body.ts'
import { LoopRequestError, notFound, unprocessable } from './loop-errors.ts'
import { DetectionsBatch, type LoopOperations } from './loop-operations.ts'
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

const docs = docsTagged('loop api')
/** Routes Elysia must not parse: they read their own body (size-capped, decoded with the documented schema) or none. */
const unparsed = (input: Omit<RouteDocsInput, 'tags'>) => ({ parse: 'none' as const, ...docs(input) })
const LOGIN = 'Needs the session cookie of POST /api/login.'
const StateQuery = Type.Object({ state: Type.Optional(LoopImageStateSchema) })
const KeepImagesQuery = Type.Object({ keep_images: Type.Optional(Type.String({ description: 'true: keep the image files on disk' })) })
const ModelFiles = multipartContent(Type.Object({ files: Type.Array(binaryString('a model file, and model.json'), { minItems: 1 }) }))

export function createApiRoutes(deps: ApiDependencies) {
  const { operations, store, sessions } = deps
  const login = (request: Request) => requireSession(sessions, request)

  return new Elysia({ prefix: '/api' })
    // #1
    .get('/status', () => json(200, { status: 'ok', loop: 'local', version: deps.version }), docs({ summary: 'The loop answers (§4 #1)', responses: { 200: jsonContent(LoopStatusAnswer) } }))
    // #2
    .post('/login', async ({ request }) => {
      const form = decode(LoginForm, await readFormFields(request, deps.maxJsonBytes))
      const session = sessions.login(form.username ?? '', form.password ?? '')
      if (!session) {
        deps.log.warn('login refused', { username: form.username })
        return json(401, { detail: 'invalid username or password' })
      }
      return json(200, { username: session.username }, { 'set-cookie': sessionCookie(session.token) })
    }, unparsed({
      summary: 'Log in (§4 #2): the session cookie comes back in set-cookie', body: ['application/x-www-form-urlencoded', 'multipart/form-data', 'application/json'].map((mediaType) => ({ mediaType, schema: LoginForm })),
      responses: { 200: jsonContent(LoginAnswer), 401: jsonContent(DetailAnswer, 'invalid username or password') },
    }))
    // #3
    .post('/logout', ({ request }) => {
      const session = login(request)
      sessions.logout(session.token)
      return json(200, { detail: 'logged out' }, { 'set-cookie': expiredSessionCookie() })
    }, unparsed({ summary: 'Log out (§4 #3)', description: LOGIN, responses: { 200: jsonContent(DetailAnswer) } }))
    // §9 converter: every project
    .get('/projects', ({ request }) => {
      login(request)
      return json(200, operations.projectsListing())
    }, docs({ summary: 'Every project (§9, for the converter)', description: LOGIN, responses: { 200: jsonContent(ProjectsResponse) } }))
    // T2
    .post('/:org/projects/generator', async ({ request, params }) => {
      login(request)
      return json(200, await operations.generateProject(params.org, await readJson(request, deps.maxJsonBytes)))
    }, unparsed({ summary: 'Generate a project with synthetic images, annotations and trainings (T2)', description: LOGIN, body: jsonContent(ProjectGeneratorRequest), responses: { 200: jsonContent(GeneratedProject) } }))
    // §9: project with categories
    .get('/:org/projects/:project', ({ request, params }) => {
      login(request)
      return json(200, operations.projectInfo(params.org, params.project))
    }, docs({ summary: 'A project with its categories (§9)', description: LOGIN, responses: { 200: jsonContent(LoopProjectInfo) } }))
    // T1
    .delete('/:org/projects/:project', async ({ request, params, query }) => {
      login(request)
      const keepImages = /^(true|1|yes)$/i.test(String(query.keep_images ?? ''))
      if (!(await store.deleteProject(params.org, params.project, keepImages))) throw notFound(`project ${params.org}/${params.project} does not exist`)
      return json(200, { detail: `project ${params.org}/${params.project} deleted`, keep_images: keepImages })
    }, unparsed({ summary: 'Delete a project (T1)', description: LOGIN, query: KeepImagesQuery, responses: { 200: jsonContent(ProjectDeletedAnswer) } }))
    // #4
    .get('/:org/projects/:project/data', ({ request, params, query }) => {
      login(request)
      return json(200, operations.projectData(params.org, params.project, stateQuery(query.state)))
    }, docs({ summary: 'The image ids of a project, optionally of one state (§4 #4)', description: LOGIN, query: StateQuery, responses: { 200: jsonContent(LoopProjectData) } }))
    // #5
    .get('/:org/projects/:project/images', ({ request, params, query }) => {
      login(request)
      store.requireProject(params.org, params.project)
      if (query.ids === undefined) throw unprocessable('query parameter ids is required (comma-separated image ids)')
      const ids = String(query.ids).split(',').map((id) => id.trim()).filter((id) => id !== '')
      if (ids.length > MAX_IDS_PER_REQUEST) throw unprocessable(`at most ${MAX_IDS_PER_REQUEST} ids per request, got ${ids.length}`)
      return json(200, { images: store.images.byIds(params.org, params.project, ids).map((image) => operations.imageData(image)) })
    }, docs({
      summary: `Image data of up to ${MAX_IDS_PER_REQUEST} images; unknown ids are left out (§4 #5)`, description: LOGIN,
      query: Type.Object({ ids: Type.String({ description: 'comma-separated image ids' }) }), responses: { 200: jsonContent(LoopImageDataAnswer) },
    }))
    // #13 (no login: the outbox sends no cookies)
    .post('/:org/projects/:project/images', async ({ request, params }) => {
      store.requireProject(params.org, params.project)
      const parts = await readFileParts(request, deps.maxUploadBytes)
      return json(200, await operations.uploadImages(params.org, params.project, parts))
    }, unparsed({
      summary: 'Upload images, all or none (§4 #13): parts image_<stem>.json (UploadImageMetadata) and image_<stem>.jpg; no login (the outbox sends no cookie)',
      body: multipartContent(Type.Object({ files: Type.Array(binaryString('image_<stem>.jpg, or image_<stem>.json holding UploadImageMetadata'), { minItems: 2 }) })),
      responses: { 200: jsonContent(UploadOutcome), 422: jsonContent(DetailAnswer, 'a broken item, named; nothing stored') },
    }))
    // #6
    .get('/:org/projects/:project/images/:id/main', async ({ request, params }) => {
      login(request)
      const bytes = await operations.imageBytes(params.org, params.project, params.id)
      return new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'image/jpeg', 'content-length': String(bytes.length) } })
    }, docs({ summary: 'The image as JPEG (§4 #6)', description: LOGIN, responses: { 200: bytesContent('image/jpeg') } }))
    // #11 (and §9)
    .get('/:org/projects/:project/models', ({ request, params }) => {
      login(request)
      return json(200, operations.modelsListing(params.org, params.project, hostOf(request)))
    }, docs({ summary: 'The models of a project, oldest version first (§4 #11)', description: LOGIN, responses: { 200: jsonContent(LocalLoopModelsAnswer) } }))
    // #7 (no login)
    .get('/:org/projects/:project/models/:model/:format/file', async ({ request, params }) => {
      const zip = await operations.modelZip(params.org, params.project, params.model, params.format, hostOf(request))
      return new Response(zip.bytes as Uint8Array<ArrayBuffer>, {
        headers: { 'content-type': 'application/zip', 'content-disposition': `attachment; filename=${zip.fileName}`, 'content-length': String(zip.bytes.length) },
      })
    }, docs({ summary: 'Download one format of a model as a zip with its model.json (§4 #7); no login', responses: { 200: bytesContent('application/zip') } }))
    // §9: the converter adds a format to an existing model
    .put('/:org/projects/:project/models/:model/:format/file', async ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      const parts = await readFileParts(request, deps.maxUploadBytes)
      const { model } = await operations.uploadModelFiles(params.org, params.project, { modelId: params.model }, params.format, parts, { requireModelJson: false })
      return json(200, { id: model.id, version: model.version, formats: model.formats })
    }, unparsed({ summary: 'Add a format to an existing model (§9, the converter)', description: LOGIN, body: ModelFiles, responses: { 200: jsonContent(StoredModelAnswer) } }))
    // #8
    .put('/:org/projects/:project/trainings/:number/models/latest/:format/file', async ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      const number = trainingNumber(params.number)
      const parts = await readFileParts(request, deps.maxUploadBytes)
      const { model } = await operations.uploadModelFiles(params.org, params.project, { trainingNumber: number }, params.format, parts, { requireModelJson: true })
      return json(200, { id: model.id, version: model.version, formats: model.formats })
    }, unparsed({ summary: 'Upload the model of a training: its files and model.json (§4 #8)', description: LOGIN, body: ModelFiles, responses: { 200: jsonContent(StoredModelAnswer) } }))
    // T3
    .get('/:org/projects/:project/trainings', ({ request, params }) => {
      login(request)
      return json(200, operations.trainingsListing(params.org, params.project))
    }, docs({ summary: 'The trainings of a project, newest first, and its models (T3)', description: LOGIN, responses: { 200: jsonContent(TrainingsListing) } }))
    // #9
    .post('/:org/projects/:project/detections', async ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      return json(200, operations.storeDetections(params.org, params.project, await readJson(request, deps.maxJsonBytes)))
    }, unparsed({ summary: 'Store a trainer\'s detections, each naming its image (§4 #9)', description: LOGIN, body: jsonContent(DetectionsBatch), responses: { 200: jsonContent(DetectionsStoredAnswer) } }))
    // #10
    .get('/:org/projects/:project/deployment/target', ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      const model = store.deploymentTarget(params.org, params.project)
      if (!model) throw notFound(`no deployment target is set for ${params.org}/${params.project}`)
      return json(200, { model_uuid: model.id, version: model.version })
    }, docs({ summary: 'The model detectors should serve (§4 #10)', description: LOGIN, responses: { 200: jsonContent(DeploymentTarget), 404: jsonContent(DetailAnswer, 'no target set') } }))
    // #12
    .post('/:org/projects/:project/detectors', async ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      operations.recordDetectorStatus(params.org, params.project, await readJson(request, deps.maxJsonBytes))
      return json(200, { success: true })
    }, unparsed({ summary: 'A detector reports its status (§4 #12)', description: LOGIN, body: jsonContent(DetectorStatus), responses: { 200: jsonContent(SuccessAnswer) } }))
    .get('/:org/projects/:project/detectors', ({ request, params }) => {
      login(request)
      store.requireProject(params.org, params.project)
      return json(200, { detectors: store.detectorStatuses(params.org, params.project) })
    }, docs({ summary: 'The latest status of each detector of a project', description: LOGIN, responses: { 200: jsonContent(DetectorStatusesAnswer) } }))
}
