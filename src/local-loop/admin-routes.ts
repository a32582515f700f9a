import { Elysia } from 'elysia'
import {
  AdminCreateProjectRequest, AdminDeploymentTargetRequest, AdminEmitRequest, AdminRateLimitRequest, AdminStartTrainingRequest,
  LOOP_IMAGE_STATES, decode, isOneOf,
} from '../contract/index.ts'
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

export function createAdminRoutes(deps: AdminDependencies) {
  const { sessions } = deps
  const loop = deps.getLoop
  const none = { parse: 'none' as const }
  return new Elysia({ prefix: '/admin' })
    .onBeforeHandle(({ request }) => requireAdmin(sessions, request))
    .get('/stats', () => json(200, loop().stats()))
    .put('/rate-limit', async ({ request }) => {
      const body = decode(AdminRateLimitRequest, await readJson(request, deps.maxJsonBytes))
      loop().setRateLimit(body.per_second === null ? null : { perSecond: body.per_second, burst: body.burst ?? undefined })
      return json(200, { rate_limit: loop().rateLimit() })
    }, none)
    .get('/nodes', () => json(200, { nodes: loop().connectedNodes() }))
    .get('/nodes/statuses', ({ query }) => json(200, { statuses: loop().statusHistory(query.node === undefined ? undefined : String(query.node)) }))
    .post('/nodes/:node/emit', async ({ request, params }) => {
      const body = decode(AdminEmitRequest, await readJson(request, deps.maxJsonBytes))
      const ack = await loop().emit(params.node, body.event, body.args ?? [], { timeoutMs: body.timeout_ms ?? undefined })
      return json(200, { ack: ack ?? null })
    }, none)
    .post('/nodes/:node/stop-training', async ({ params }) => json(200, { ack: await loop().stopTraining(params.node) }), none)
    .post('/nodes/:node/abort-training', async ({ params }) => json(200, { ack: await loop().abortTraining(params.node) }), none)
    .post('/nodes/:node/restart', async ({ params }) => {
      await loop().emit(params.node, 'restart', [], { expectAck: false })
      return json(200, { sent: true })
    }, none)
    .get('/projects', () => json(200, { projects: loop().listProjects() }))
    .post('/projects', async ({ request }) => {
      const body = decode(AdminCreateProjectRequest, await readJson(request, deps.maxJsonBytes))
      const { organization, seed, ...generator } = body
      return json(200, await loop().createProject(organization ?? 'local', generator, { seed }))
    }, none)
    .delete('/projects/:org/:project', async ({ params, query }) => {
      const keepImages = /^(true|1|yes)$/i.test(String(query.keep_images ?? ''))
      if (!(await loop().deleteProject(params.org, params.project, { keepImages }))) throw notFound(`project ${params.org}/${params.project} does not exist`)
      return json(200, { deleted: true, keep_images: keepImages })
    }, none)
    .get('/projects/:org/:project/images', ({ params, query }) => {
      const state = query.state === undefined || query.state === '' ? undefined : String(query.state)
      if (state !== undefined && !isOneOf(LOOP_IMAGE_STATES, state)) throw unprocessable(`query parameter state=${quoteInput(state)} is not one of ${LOOP_IMAGE_STATES.join(', ')}`)
      return json(200, { images: loop().listImages(params.org, params.project, state) })
    })
    .get('/projects/:org/:project/models', ({ params }) => json(200, loop().models(params.org, params.project)))
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
    }, none)
    .put('/projects/:org/:project/deployment-target', async ({ request, params }) => {
      const body = decode(AdminDeploymentTargetRequest, await readJson(request, deps.maxJsonBytes))
      const model = loop().setDeploymentTarget(params.org, params.project, { modelId: body.model_id, version: body.version })
      return json(200, { model_uuid: model.id, version: model.version })
    }, none)
    .delete('/projects/:org/:project/deployment-target', ({ params }) => {
      loop().clearDeploymentTarget(params.org, params.project)
      return json(200, { cleared: true })
    }, none)
    .get('/projects/:org/:project/trainings', ({ params }) => json(200, loop().operations.trainingsListing(params.org, params.project)))
    .post('/projects/:org/:project/trainings', async ({ request, params }) => {
      const body = decode(AdminStartTrainingRequest, await readJson(request, deps.maxJsonBytes))
      const started = await loop().startTraining(params.org, params.project, {
        node: body.node, modelVariant: body.model_variant, hyperparameters: body.hyperparameters,
        baseModelUuid: body.base_model_uuid, timeoutMs: body.timeout_ms ?? undefined,
      })
      return json(200, { training: loop().operations.trainingView(started.training), ack: started.ack ?? null })
    }, none)
    .get('/projects/:org/:project/detectors', ({ params }) => json(200, { detectors: loop().detectorStatuses(params.org, params.project) }))
}
