import { Type } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import {
  AckAnswer, AdminCreateProjectRequest, AdminDeploymentTargetRequest, AdminEmitRequest, AdminProjectDeletedAnswer, AdminRateLimitRequest,
  AdminStartTrainingRequest, AdminStoredModelAnswer, ClearedAnswer, ConnectedNodesAnswer, DeploymentTarget, DetectorStatusesAnswer, GeneratedProject,
  ImageSummariesAnswer, LOOP_IMAGE_STATES, LocalLoopModelsAnswer, LoopImageStateSchema, LoopStats, NodeStatusesAnswer, ProjectSummariesAnswer,
  RateLimitAnswer, SentAnswer, TrainingsListing, TrainingStartedAnswer, decode, isOneOf,
} from '../contract/index.ts'
import { bytesContent, docsTagged, jsonContent, type RouteDocsInput } from '../node/route-docs.ts'
import { quoteInput } from '../foundation/log.ts'
import { json, readBytes, readJson } from './http-body.ts'
import { LoopRequestError, notFound, unprocessable } from './loop-errors.ts'
import type { LocalLoopAdmin } from './local-loop-admin.ts'
import type { SessionStore } from './session-store.ts'

/**
 * The admin API of the local Loop: JSON over HTTP under /admin, for the `loop admin …` CLI and for people.
 * When a username/password is configured it needs that login (HTTP Basic, or the /api/login cookie);
 * without one it is open, like the rest of an unconfigured local Loop.
 *
 *   GET    /admin/stats                                   request counts, socket handshakes, sessions
 *   PUT    /admin/rate-limit                              {per_second: number|null, burst?}
 *   GET    /admin/nodes                                   connected nodes
 *   GET    /admin/nodes/statuses[?node=<id>]              statuses received (update_trainer, update_annotation_node)
 *   POST   /admin/nodes/<node>/emit                       {event, args?, timeout_ms?} → {ack}
 *   POST   /admin/nodes/<node>/stop-training              → {ack}   (stop_training)
 *   POST   /admin/nodes/<node>/abort-training             → {ack}   (abort_training)
 *   POST   /admin/nodes/<node>/restart                    → {sent}  (restart; the node exits, so no ack)
 *   GET    /admin/projects                                projects with image counts
 *   POST   /admin/projects                                generator request + {organization?, seed?}
 *   DELETE /admin/projects/<org>/<project>[?keep_images=true]
 *   GET    /admin/projects/<org>/<project>/images[?state=]  images with tags, annotations, detections
 *   GET    /admin/projects/<org>/<project>/models
 *   POST   /admin/projects/<org>/<project>/models?format=F[&training=N|&model_id=ID][&comment=]  body: the zip
 *   PUT    /admin/projects/<org>/<project>/deployment-target  {model_id | version}
 *   DELETE /admin/projects/<org>/<project>/deployment-target
 *   GET    /admin/projects/<org>/<project>/trainings
 *   POST   /admin/projects/<org>/<project>/trainings      {node, model_variant?, hyperparameters?, base_model_uuid?, timeout_ms?}
 *   GET    /admin/projects/<org>/<project>/detectors      latest detector status per uuid
 *
 * `<node>` is a socket id, a node uuid or a node name.
 */
export interface AdminDependencies {
  /** late-bound: the routes are built before the LocalLoop instance exists */
  getLoop: () => LocalLoopAdmin
  sessions: SessionStore
  maxUploadBytes: number
  maxJsonBytes: number
}

export function requireAdmin(sessions: SessionStore, request: Request): void {
  if (!sessions.requiresCredentials) return
  if (sessions.fromCookieHeader(request.headers.get('cookie'))) return
  const header = request.headers.get('authorization') ?? ''
  if (header.toLowerCase().startsWith('basic ')) {
    let decoded = ''
    try {
      decoded = atob(header.slice(6).trim())
    } catch {
      // falls through to the 401 below
    }
    const colon = decoded.indexOf(':')
    if (colon >= 0 && sessions.credentialsMatch(decoded.slice(0, colon), decoded.slice(colon + 1))) return
  }
  // a script of the web page gets no Basic challenge: the browser would answer it with its own login prompt
  const fromScript = (request.headers.get('sec-fetch-dest') ?? 'document') !== 'document'
  throw new LoopRequestError(401, 'the admin API needs the loop username/password (HTTP Basic) or a session cookie', fromScript ? {} : { 'www-authenticate': 'Basic realm="local loop admin"' })
}

function integerQuery(name: string, value: unknown): number | undefined {
  if (value === undefined || value === '') return undefined
  if (!/^\d{1,9}$/.test(String(value))) throw unprocessable(`query parameter ${name}=${quoteInput(value)} is not a non-negative integer`)
  return Number(value)
}

const docs = docsTagged('loop admin')
/** Routes Elysia must not parse: they read their own body (size-capped, decoded with the documented schema) or none. */
const unparsed = (input: Omit<RouteDocsInput, 'tags'>) => ({ parse: 'none' as const, ...docs(input) })
const ackDocs = (summary: string) => unparsed({ summary, responses: { 200: jsonContent(AckAnswer, "the node's ack") } })

export function createAdminRoutes(deps: AdminDependencies) {
  const { sessions } = deps
  const loop = deps.getLoop
  return new Elysia({ prefix: '/admin' })
    .onBeforeHandle(({ request }) => requireAdmin(sessions, request))
    .get('/stats', () => json(200, loop().stats()), docs({ summary: 'Request counts, socket handshakes, sessions, rate limit', responses: { 200: jsonContent(LoopStats) } }))
    .put('/rate-limit', async ({ request }) => {
      const body = decode(AdminRateLimitRequest, await readJson(request, deps.maxJsonBytes))
      loop().setRateLimit(body.per_second === null ? null : { perSecond: body.per_second, burst: body.burst ?? undefined })
      return json(200, { rate_limit: loop().rateLimit() })
    }, unparsed({ summary: 'Set the per-client rate limit of /api (null: off)', body: jsonContent(AdminRateLimitRequest), responses: { 200: jsonContent(RateLimitAnswer) } }))
    .get('/nodes', () => json(200, { nodes: loop().connectedNodes() }), docs({ summary: 'Connected nodes', responses: { 200: jsonContent(ConnectedNodesAnswer) } }))
    .get('/nodes/statuses', ({ query }) => json(200, { statuses: loop().statusHistory(query.node === undefined ? undefined : String(query.node)) }), docs({
      summary: 'Statuses received (update_trainer, update_annotation_node), oldest first', query: Type.Object({ node: Type.Optional(Type.String({ description: 'a node uuid' })) }),
      responses: { 200: jsonContent(NodeStatusesAnswer) },
    }))
    .post('/nodes/:node/emit', async ({ request, params }) => {
      const body = decode(AdminEmitRequest, await readJson(request, deps.maxJsonBytes))
      const ack = await loop().emit(params.node, body.event, body.args ?? [], { timeoutMs: body.timeout_ms ?? undefined })
      return json(200, { ack: ack ?? null })
    }, unparsed({ summary: 'Send any event to a node (socket id, uuid or name) and answer its ack', body: jsonContent(AdminEmitRequest), responses: { 200: jsonContent(AckAnswer) } }))
    .post('/nodes/:node/stop-training', async ({ params }) => json(200, { ack: await loop().stopTraining(params.node) }), ackDocs('stop_training: the trainer stops and uploads what it has'))
    .post('/nodes/:node/abort-training', async ({ params }) => json(200, { ack: await loop().abortTraining(params.node) }), ackDocs('abort_training: the trainer stops and discards the training'))
    .post('/nodes/:node/restart', async ({ params }) => {
      await loop().emit(params.node, 'restart', [], { expectAck: false })
      return json(200, { sent: true })
    }, unparsed({ summary: 'restart: the node exits (its supervisor starts it again), so there is no ack', responses: { 200: jsonContent(SentAnswer) } }))
    .get('/projects', () => json(200, { projects: loop().listProjects() }), docs({ summary: 'Projects with image counts', responses: { 200: jsonContent(ProjectSummariesAnswer) } }))
    .post('/projects', async ({ request }) => {
      const body = decode(AdminCreateProjectRequest, await readJson(request, deps.maxJsonBytes))
      const { organization, seed, ...generator } = body
      return json(200, await loop().createProject(organization ?? 'local', generator, { seed }))
    }, unparsed({ summary: 'Generate a project (the T2 generator, with an organization and a seed)', body: jsonContent(AdminCreateProjectRequest), responses: { 200: jsonContent(GeneratedProject) } }))
    .delete('/projects/:org/:project', async ({ params, query }) => {
      const keepImages = /^(true|1|yes)$/i.test(String(query.keep_images ?? ''))
      if (!(await loop().deleteProject(params.org, params.project, { keepImages }))) throw notFound(`project ${params.org}/${params.project} does not exist`)
      return json(200, { deleted: true, keep_images: keepImages })
    }, unparsed({
      summary: 'Delete a project', query: Type.Object({ keep_images: Type.Optional(Type.String({ description: 'true: keep the image files on disk' })) }),
      responses: { 200: jsonContent(AdminProjectDeletedAnswer) },
    }))
    .get('/projects/:org/:project/images', ({ params, query }) => {
      const state = query.state === undefined || query.state === '' ? undefined : String(query.state)
      if (state !== undefined && !isOneOf(LOOP_IMAGE_STATES, state)) throw unprocessable(`query parameter state=${quoteInput(state)} is not one of ${LOOP_IMAGE_STATES.join(', ')}`)
      return json(200, { images: loop().listImages(params.org, params.project, state) })
    }, docs({ summary: 'Images with tags and annotation and detection counts', query: Type.Object({ state: Type.Optional(LoopImageStateSchema) }), responses: { 200: jsonContent(ImageSummariesAnswer) } }))
    .get('/projects/:org/:project/models', ({ params }) => json(200, loop().models(params.org, params.project)), docs({ summary: 'The models of a project', responses: { 200: jsonContent(LocalLoopModelsAnswer) } }))
    .post('/projects/:org/:project/models', async ({ request, params, query }) => {
      const format = query.format === undefined ? '' : String(query.format)
      if (format === '') throw unprocessable('query parameter format is required')
      const trainingNumber = integerQuery('training', query.training)
      const modelId = query.model_id === undefined || query.model_id === '' ? undefined : String(query.model_id)
      const zip = await readBytes(request, deps.maxUploadBytes)
      const model = await loop().uploadModel(params.org, params.project, {
        format, zip, trainingNumber, modelId, comment: query.comment === undefined ? null : String(query.comment),
      })
      return json(200, { id: model.id, version: model.version, formats: model.formats, training_number: model.trainingNumber })
    }, unparsed({
      summary: 'Upload one format of a model as a zip of its files (and optionally model.json)',
      query: Type.Object({
        format: Type.String({ minLength: 1 }),
        training: Type.Optional(Type.String({ pattern: '^\\d{1,9}$', description: 'the training the model belongs to (default: the newest; training 1 is created when there is none)' })),
        model_id: Type.Optional(Type.String({ description: 'add the format to this model instead' })),
        comment: Type.Optional(Type.String()),
      }),
      body: bytesContent('application/zip'), responses: { 200: jsonContent(AdminStoredModelAnswer) },
    }))
    .put('/projects/:org/:project/deployment-target', async ({ request, params }) => {
      const body = decode(AdminDeploymentTargetRequest, await readJson(request, deps.maxJsonBytes))
      const model = loop().setDeploymentTarget(params.org, params.project, { modelId: body.model_id, version: body.version })
      return json(200, { model_uuid: model.id, version: model.version })
    }, unparsed({ summary: 'Set the deployment target: a model id or a version', body: jsonContent(AdminDeploymentTargetRequest), responses: { 200: jsonContent(DeploymentTarget) } }))
    .delete('/projects/:org/:project/deployment-target', ({ params }) => {
      loop().clearDeploymentTarget(params.org, params.project)
      return json(200, { cleared: true })
    }, unparsed({ summary: 'Clear the deployment target', responses: { 200: jsonContent(ClearedAnswer) } }))
    .get('/projects/:org/:project/trainings', ({ params }) => json(200, loop().operations.trainingsListing(params.org, params.project)), docs({
      summary: 'The trainings of a project, newest first', responses: { 200: jsonContent(TrainingsListing) },
    }))
    .post('/projects/:org/:project/trainings', async ({ request, params }) => {
      const body = decode(AdminStartTrainingRequest, await readJson(request, deps.maxJsonBytes))
      const started = await loop().startTraining(params.org, params.project, {
        node: body.node, modelVariant: body.model_variant, hyperparameters: body.hyperparameters,
        baseModelUuid: body.base_model_uuid, timeoutMs: body.timeout_ms ?? undefined,
      })
      return json(200, { training: loop().operations.trainingView(started.training), ack: started.ack ?? null })
    }, unparsed({ summary: 'Begin a training on a connected trainer (begin_training)', body: jsonContent(AdminStartTrainingRequest), responses: { 200: jsonContent(TrainingStartedAnswer) } }))
    .get('/projects/:org/:project/detectors', ({ params }) => json(200, { detectors: loop().detectorStatuses(params.org, params.project) }), docs({
      summary: 'The latest status of each detector', responses: { 200: jsonContent(DetectorStatusesAnswer) },
    }))
}
