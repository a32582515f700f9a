/**
 * Fuzz suite of the local loop (issue 11): every node-facing REST route (/api), every admin route (/admin) and
 * every node → Loop socket event of a real LocalLoop, fed the inputs of fuzz-inputs.ts. Refusals are 4xx with a
 * `detail`, or a failed SocketResponse, naming the problem; after each table the loop answers, its images and
 * models folders hold the same files and its rows (projects, images, models, trainings, detector statuses) are
 * unchanged. Valid uploads mixed with bad ones must all get their right answers.
 *
 * Entry points (the table test fails when the loop serves one that is not listed here):
 *   /api     GET status · POST login · POST logout · GET projects · POST :org/projects/generator
 *            GET|DELETE :org/projects/:project · GET …/data · GET|POST …/images · GET …/images/:id/main
 *            GET …/models · GET|PUT …/models/:model/:format/file · PUT …/trainings/:number/models/latest/:format/file
 *            GET …/trainings · POST …/detections · GET …/deployment/target · GET|POST …/detectors
 *   /admin   GET stats · PUT rate-limit · GET nodes · GET nodes/statuses · POST nodes/:node/{emit,stop-training,
 *            abort-training,restart} · GET|POST projects · DELETE projects/:org/:project · GET …/images
 *            GET|POST …/models · PUT|DELETE …/deployment-target · GET|POST …/trainings · GET …/detectors
 *   GET /metrics · ALL /ws/socket.io/* (Engine.IO)
 *   socket   update_trainer · update_annotation_node · update_training · update_segmentation_annotation
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Socket } from 'socket.io-client'
import { createAdminRoutes } from '../../src/local-loop/admin-routes.ts'
import { createApiRoutes } from '../../src/local-loop/api-routes.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { connectNode, login, makeJpeg, multipart, uploadItem, type UploadFile } from '../local-loop/loop-test-peer.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { jpegClaimingSize, pngBomb } from '../support/image-bombs.ts'
import {
  describeTable, expectAnswer, expectRefusal, folderSnapshot, handledEventsOf, rawRequest, refusalOf, request, routeList, rowName, type EventRow, type HttpRow,
} from './fuzz-harness.ts'
import { deepJsonArray, deepJsonObject, INVALID_UTF8, PROTOTYPE_NAMES, TRAVERSAL_NAMES, UNUSUAL_TEXT, zipBomb, zipClaimingSize, zipWithEntries, zipWithSymlink } from './fuzz-inputs.ts'

const API_ENTRY_POINTS = [
  'GET /api/status', 'POST /api/login', 'POST /api/logout', 'GET /api/projects', 'POST /api/:org/projects/generator',
  'GET /api/:org/projects/:project', 'DELETE /api/:org/projects/:project', 'GET /api/:org/projects/:project/data',
  'GET /api/:org/projects/:project/images', 'POST /api/:org/projects/:project/images', 'GET /api/:org/projects/:project/images/:id/main',
  'GET /api/:org/projects/:project/models', 'GET /api/:org/projects/:project/models/:model/:format/file',
  'PUT /api/:org/projects/:project/models/:model/:format/file', 'PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file',
  'GET /api/:org/projects/:project/trainings', 'POST /api/:org/projects/:project/detections', 'GET /api/:org/projects/:project/deployment/target',
  'POST /api/:org/projects/:project/detectors', 'GET /api/:org/projects/:project/detectors',
]
const ADMIN_ENTRY_POINTS = [
  'GET /admin/stats', 'PUT /admin/rate-limit', 'GET /admin/nodes', 'GET /admin/nodes/statuses', 'POST /admin/nodes/:node/emit',
  'POST /admin/nodes/:node/stop-training', 'POST /admin/nodes/:node/abort-training', 'POST /admin/nodes/:node/restart',
  'GET /admin/projects', 'POST /admin/projects', 'DELETE /admin/projects/:org/:project', 'GET /admin/projects/:org/:project/images',
  'GET /admin/projects/:org/:project/models', 'POST /admin/projects/:org/:project/models', 'PUT /admin/projects/:org/:project/deployment-target',
  'DELETE /admin/projects/:org/:project/deployment-target', 'GET /admin/projects/:org/:project/trainings', 'POST /admin/projects/:org/:project/trainings',
  'GET /admin/projects/:org/:project/detectors',
]
const SOCKET_EVENTS = ['update_trainer', 'update_annotation_node', 'update_training', 'update_segmentation_annotation']
const MAX_UPLOAD_BYTES = 4 * 1024 * 1024
/** the training model uploads go to */
const TRAINING = 2

let fixture: TestLoop
let url: string
let cookie: string
let restoreSink: ((line: string) => void) | undefined

beforeAll(async () => {
  restoreSink = setLogSink(() => undefined)
  fixture = await startTestLoop({ maxUploadBytes: MAX_UPLOAD_BYTES })
  url = fixture.loop.url
  cookie = await login(url)
  await fixture.loop.createProject('local', { project_name: 'fuzz', complete: 2, box_categories: 1, trainings: 1 })
  // training 1 came with the generated project
  expect(fixture.loop.store.createTraining('local', 'fuzz').number).toBe(TRAINING)
})
afterAll(async () => {
  await fixture?.cleanup()
  if (restoreSink) setLogSink(restoreSink)
})

/** Files of the images and models folders, and the rows a refused input must not change. */
async function loopState() {
  const loop = fixture.loop
  const projects = loop.listProjects()
  return {
    files: await folderSnapshot(fixture.dataFolder, (path) => path.startsWith('loop.sqlite')),
    projects: projects.map((p) => ({
      name: `${p.organization}/${p.project}`, counts: p.counts, models: loop.models(p.organization, p.project).models.map((m) => [m.id, m.formats]),
      trainings: loop.trainings(p.organization, p.project).map((t) => [t.number, t.state]), detectors: loop.detectorStatuses(p.organization, p.project).length,
      target: loop.deploymentTarget(p.organization, p.project)?.id ?? null,
    })),
    rateLimit: loop.rateLimit(),
  }
}
const checks = () => ({
  alive: async () => {
    const response = await fetch(`${url}/api/status`)
    expect({ status: response.status, body: await response.json() }).toMatchObject({ status: 200, body: { status: 'ok' } })
  },
  state: loopState,
})

/** A request with the session cookie (read when the row runs: the rows are built before the login). */
const withLogin = (method: string, path: string, init: RequestInit = {}) => (baseUrl: string) =>
  request(method, path, { ...init, headers: { cookie, ...(init.headers as Record<string, string> | undefined) } })(baseUrl)
const get = (path: string, init: RequestInit = {}) => withLogin('GET', path, init)
const send = (method: string, path: string, body: BodyInit | null, headers: Record<string, string> = {}) => withLogin(method, path, { body, headers })
const json = (method: string, path: string, body: unknown) => send(method, path, typeof body === 'string' ? body : JSON.stringify(body), { 'content-type': 'application/json' })
const files = (list: UploadFile[]) => multipart(list)
const jpeg = makeJpeg()
const PROJECT = '/api/local/projects/fuzz'
const NAME_RULE = /must start with a letter or digit and contain only letters, digits/
const badNames = [...TRAVERSAL_NAMES, '__proto__', UNUSUAL_TEXT.rtl, UNUSUAL_TEXT.emoji, 'x'.repeat(101)]

const apiRows: HttpRow[] = [
  { route: 'GET /api/:org/projects/:project/data', input: 'no session cookie', send: request('GET', `${PROJECT}/data`), status: 401, says: /not logged in/ },
  { route: 'GET /api/:org/projects/:project/data', input: 'cookies named like prototype members', send: request('GET', `${PROJECT}/data`, { headers: { cookie: PROTOTYPE_NAMES.map((n) => `${n}=1`).join('; ') + '; session=toString' } }), status: 401, says: /not logged in/ },
  { route: 'POST /api/login', input: 'a JSON array', send: json('POST', '/api/login', [1]), status: 422, says: /the JSON body must be an object/ },
  { route: 'POST /api/login', input: 'JSON null', send: json('POST', '/api/login', 'null'), status: 422, says: /the JSON body must be an object/ },
  { route: 'POST /api/login', input: 'username 5, password []', send: json('POST', '/api/login', { username: 5, password: [] }), status: 422, says: /\/username: expected string; \/password: expected string/ },
  { route: 'POST /api/login', input: 'JSON nested 10 000 deep', send: json('POST', '/api/login', deepJsonArray()), status: 422, says: /the JSON body must be an object/ },
  { route: 'POST /api/login', input: 'malformed JSON', send: json('POST', '/api/login', '{"username":'), status: 400, says: /malformed JSON body/ },
  { route: 'POST /api/logout', input: 'no session cookie', send: request('POST', '/api/logout'), status: 401, says: /not logged in/ },
  ...badNames.map((name): HttpRow => ({ route: 'POST /api/:org/projects/generator', input: `project_name ${JSON.stringify(name)}`, send: json('POST', '/api/local/projects/generator', { project_name: name }), status: 422, says: NAME_RULE })),
  ...['..%2F..%2Fescape', '__proto__', encodeURIComponent(UNUSUAL_TEXT.nul)].map((org): HttpRow => ({ route: 'POST /api/:org/projects/generator', input: `organization ${decodeURIComponent(org)}`, send: json('POST', `/api/${org}/projects/generator`, { project_name: 'ok' }), status: 422, says: NAME_RULE })),
  ...Object.entries({ null: null, array: [], number: 42, string: 'p' }).map(([kind, body]): HttpRow => ({ route: 'POST /api/:org/projects/generator', input: `a JSON ${kind}`, send: json('POST', '/api/local/projects/generator', JSON.stringify(body)), status: 422, says: /invalid ProjectGeneratorRequest/ })),
  { route: 'POST /api/:org/projects/generator', input: 'project_name 5, inbox "3"', send: json('POST', '/api/local/projects/generator', { project_name: 5, inbox: '3' }), status: 422, says: /\/project_name: expected string; \/inbox: expected integer/ },
  { route: 'POST /api/:org/projects/generator', input: 'inbox -5', send: json('POST', '/api/local/projects/generator', { project_name: 'neg', inbox: -5 }), status: 422, says: /\/inbox: expected integer to be greater or equal to 0/ },
  { route: 'POST /api/:org/projects/generator', input: 'inbox 1e300', send: json('POST', '/api/local/projects/generator', { project_name: 'huge', inbox: 1e300 }), status: 422, says: /at most 5000 generated images/ },
  { route: 'POST /api/:org/projects/generator', input: 'the existing project again', send: json('POST', '/api/local/projects/generator', { project_name: 'fuzz' }), status: 409, says: /already exists/ },
  { route: 'POST /api/:org/projects/generator', input: 'JSON nested 10 000 deep', send: json('POST', '/api/local/projects/generator', deepJsonObject()), status: 422, says: /invalid ProjectGeneratorRequest/ },
  { route: 'POST /api/:org/projects/generator', input: 'bytes that are not UTF-8', send: send('POST', '/api/local/projects/generator', INVALID_UTF8, { 'content-type': 'application/json' }), status: 400, says: /malformed JSON body/ },
  ...PROTOTYPE_NAMES.slice(0, 4).map((name): HttpRow => ({ route: 'GET /api/:org/projects/:project', input: `project ${name}`, send: get(`/api/local/projects/${name}`), status: 404, says: /project local\/.* does not exist/ })),
  { route: 'DELETE /api/:org/projects/:project', input: 'project ..%2F..', send: send('DELETE', '/api/local/projects/..%2F..', null), status: 404, says: /does not exist/ },
  { route: 'DELETE /api/:org/projects/:project', input: 'organization __proto__', send: send('DELETE', '/api/__proto__/projects/constructor', null), status: 404, says: /project __proto__\/constructor does not exist/ },
  { route: 'GET /api/:org/projects/:project/data', input: 'state=__proto__', send: get(`${PROJECT}/data?state=__proto__`), status: 422, says: /query parameter state="__proto__" is not one of inbox, annotate/ },
  { route: 'GET /api/:org/projects/:project/data', input: 'project constructor', send: get('/api/local/projects/constructor/data'), status: 404, says: /project local\/constructor does not exist/ },
  { route: 'GET /api/:org/projects/:project/images', input: 'no ids', send: get(`${PROJECT}/images`), status: 422, says: /query parameter ids is required/ },
  { route: 'GET /api/:org/projects/:project/images', input: '1001 ids', send: get(`${PROJECT}/images?ids=${Array.from({ length: 1001 }, (_, i) => i).join(',')}`), status: 422, says: /at most 1000 ids per request, got 1001/ },
  { route: 'GET /api/:org/projects/:project/images/:id/main', input: 'id ..%2F..%2Floop.sqlite', send: get(`${PROJECT}/images/..%2F..%2Floop.sqlite/main`), status: 404, says: /image \.\.\/\.\.\/loop\.sqlite does not exist/ },
  { route: 'GET /api/:org/projects/:project/images/:id/main', input: 'id __proto__', send: get(`${PROJECT}/images/__proto__/main`), status: 404, says: /image __proto__ does not exist/ },
  { route: 'GET /api/:org/projects/:project/models', input: 'project hasOwnProperty', send: get('/api/local/projects/hasOwnProperty/models'), status: 404, says: /does not exist/ },
  { route: 'GET /api/:org/projects/:project/models/:model/:format/file', input: 'model ..%2F..%2Floop.sqlite', send: request('GET', `${PROJECT}/models/..%2F..%2Floop.sqlite/mocked/file`), status: 404, says: /model \.\.\/\.\.\/loop\.sqlite does not exist/ },
  { route: 'GET /api/:org/projects/:project/models/:model/:format/file', input: 'model constructor', send: request('GET', `${PROJECT}/models/constructor/mocked/file`), status: 404, says: /model constructor does not exist/ },
  { route: 'GET /api/:org/projects/:project/trainings', input: 'project __proto__', send: get('/api/local/projects/__proto__/trainings'), status: 404, says: /does not exist/ },
  { route: 'GET /api/:org/projects/:project/deployment/target', input: 'no target set', send: get(`${PROJECT}/deployment/target`), status: 404, says: /no deployment target is set for local\/fuzz/ },
  { route: 'GET /api/:org/projects/:project/detectors', input: 'project valueOf', send: get('/api/local/projects/valueOf/detectors'), status: 404, says: /does not exist/ },
  { route: 'GET /api/status', input: 'headers of 17 KiB', send: request('GET', '/api/status', { headers: { 'x-padding': 'p'.repeat(17 * 1024) } }), status: 431, says: /request headers larger than 16384 bytes/ },
  { route: 'GET /api/status', input: 'headers of 65 KiB', send: request('GET', '/api/status', { headers: { 'x-padding': 'p'.repeat(65 * 1024) } }), status: 431, limitation: 'Bun refuses header blocks over 64 KiB with a bare 431 before any JavaScript runs' },
  { route: '(no route)', input: 'GET /api/__proto__', send: get('/api/__proto__'), status: 404, says: /no route GET \/api\/__proto__/ },
]

const uploadRows: HttpRow[] = [
  { route: 'POST /api/:org/projects/:project/images', input: 'a JSON body', send: request('POST', `${PROJECT}/images`, { body: '{}', headers: { 'content-type': 'application/json' } }), status: 415, says: /expected a multipart\/form-data body with parts named "files"/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'multipart without its final boundary', send: request('POST', `${PROJECT}/images`, { body: 'garbage', headers: { 'content-type': 'multipart/form-data; boundary=zz' } }), status: 400, says: /malformed multipart body/ },
  { route: 'POST /api/:org/projects/:project/images', input: '"files" as a text field', send: request('POST', `${PROJECT}/images`, { body: (() => { const f = new FormData(); f.append('files', 'x'); return f })() }), status: 422, says: /a part named "files" is a text field/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'no parts', send: request('POST', `${PROJECT}/images`, { body: new FormData() }), status: 422, says: /no files: send parts named "files"/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'a JSON without its JPEG', send: request('POST', `${PROJECT}/images`, { body: files([{ name: 'image_a.json', content: '{}' }]) }), status: 422, says: /image_a\.json has no matching image_a\.jpg/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'a JPEG claiming 40000×40000 (bomb)', send: request('POST', `${PROJECT}/images`, { body: files(uploadItem('bomb', {}, jpegClaimingSize(40_000, 40_000))) }), status: 422, says: /image_bomb\.jpg: .*40000×40000 pixels is larger than 40000000 pixels/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'a PNG bomb named .jpg', send: request('POST', `${PROJECT}/images`, { body: files(uploadItem('png', {}, pngBomb(20_000, 20_000))) }), status: 422, says: /image_png\.jpg: not a JPEG/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'a good item and a truncated JPEG (all or none)', send: request('POST', `${PROJECT}/images`, { body: files([...uploadItem('good'), ...uploadItem('cut', {}, jpeg.slice(0, jpeg.length - 40))]) }), status: 422, says: /image_cut\.jpg/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'metadata of wrong types', send: request('POST', `${PROJECT}/images`, { body: files(uploadItem('wrong', { tags: 'x', state: '__proto__', creation_date: 5 })) }), status: 422, says: /image_wrong\.json: \/tags: expected array/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'metadata nested 10 000 deep', send: request('POST', `${PROJECT}/images`, { body: files(uploadItem('deep', deepJsonArray())) }), status: 422, says: /image_deep\.json: \(root\): expected object/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'metadata that is not JSON', send: request('POST', `${PROJECT}/images`, { body: files(uploadItem('nojson', '{"tags": [')) }), status: 422, says: /image_nojson\.json/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'file names with a NUL', send: request('POST', `${PROJECT}/images`, { body: files(uploadItem(`a${UNUSUAL_TEXT.nul}b`)) }), status: 422, says: /contains a control character/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'file names of 300 characters', send: request('POST', `${PROJECT}/images`, { body: files(uploadItem('n'.repeat(300))) }), status: 422, says: /longer than 255 characters/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'a file named __proto__', send: request('POST', `${PROJECT}/images`, { body: files([{ name: '__proto__', content: jpeg }]) }), status: 422, says: /"__proto__" is neither image_<stem>\.json nor image_<stem>\.jpg/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'project __proto__', send: request('POST', '/api/local/projects/__proto__/images', { body: files(uploadItem('p')) }), status: 404, says: /project local\/__proto__ does not exist/ },
  { route: 'POST /api/:org/projects/:project/images', input: 'a declared body of 5 MiB (over the 4 MiB limit)', send: rawRequest('POST', `${PROJECT}/images`, ['Content-Type: multipart/form-data; boundary=b0'], new Uint8Array(0), 5 * 1024 * 1024), status: 413, says: /request body larger than \d+ bytes/ },
]

const modelRows: HttpRow[] = [
  ...['-1', '1e3', '99999999999999999999', '__proto__', '1.5'].map((number): HttpRow => ({
    route: 'PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file', input: `training number ${number}`,
    send: send('PUT', `${PROJECT}/trainings/${number}/models/latest/onnx/file`, files([{ name: 'w.bin', content: 'x' }, { name: 'model.json', content: '{}' }])), status: 422, says: /training number .* is not a non-negative integer/,
  })),
  ...['../../evil', 'a/b', '..', 'a\\b', '__proto__', 'x\u0001b'].map((name): HttpRow => ({
    route: 'PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file', input: `a file named ${JSON.stringify(name)}`,
    send: send('PUT', `${PROJECT}/trainings/${TRAINING}/models/latest/onnx/file`, files([{ name, content: 'x' }, { name: 'model.json', content: '{}' }])), status: 422, says: /is not a plain file name|is reserved|control character/,
  })),
  ...['__proto__', '.hidden', UNUSUAL_TEXT.emoji, 'a/b'].map((format): HttpRow => ({
    route: 'PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file', input: `format ${JSON.stringify(format)}`,
    send: send('PUT', `${PROJECT}/trainings/${TRAINING}/models/latest/${encodeURIComponent(format)}/file`, files([{ name: 'w.bin', content: 'x' }, { name: 'model.json', content: '{}' }])), status: 422, says: /model format .* must be letters, digits/,
  })),
  ...Object.entries({ 'an array': '[1]', 'a string': '"x"', 'not JSON': '{', 'categories as a string': '{"categories":"x"}' }).map(([what, text]): HttpRow => ({
    route: 'PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file', input: `model.json: ${what}`,
    send: send('PUT', `${PROJECT}/trainings/${TRAINING}/models/latest/onnx/file`, files([{ name: 'w.bin', content: 'x' }, { name: 'model.json', content: text }])), status: 422, says: /model\.json:/,
  })),
  { route: 'PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file', input: 'format ".." (the URL resolves it away)', send: send('PUT', `${PROJECT}/trainings/${TRAINING}/models/latest/%2E%2E/file`, files([{ name: 'w.bin', content: 'x' }])), status: 404, says: /no route PUT/ },
  { route: 'PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file', input: 'no model.json', send: send('PUT', `${PROJECT}/trainings/${TRAINING}/models/latest/onnx/file`, files([{ name: 'w.bin', content: 'x' }])), status: 422, says: /model\.json is missing/ },
  { route: 'PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file', input: 'a training that does not exist', send: send('PUT', `${PROJECT}/trainings/999/models/latest/onnx/file`, files([{ name: 'w.bin', content: 'x' }, { name: 'model.json', content: '{}' }])), status: 404, says: /training 999 does not exist/ },
  { route: 'PUT /api/:org/projects/:project/models/:model/:format/file', input: 'model ..%2F..%2Fescape', send: send('PUT', `${PROJECT}/models/..%2F..%2Fescape/onnx/file`, files([{ name: 'w.bin', content: 'x' }])), status: 404, says: /model \.\.\/\.\.\/escape does not exist/ },
  { route: 'PUT /api/:org/projects/:project/models/:model/:format/file', input: 'model __proto__', send: send('PUT', `${PROJECT}/models/__proto__/onnx/file`, files([{ name: 'w.bin', content: 'x' }])), status: 404, says: /model __proto__ does not exist/ },
  { route: 'PUT /api/:org/projects/:project/models/:model/:format/file', input: 'no session', send: request('PUT', `${PROJECT}/models/x/onnx/file`, { body: files([{ name: 'w.bin', content: 'x' }]) }), status: 401, says: /not logged in/ },
]

const exchangeRows: HttpRow[] = [
  ...Object.entries({ 'an object': { a: 1 }, 'a number': 5, null: null, 'nested 10 000 deep': deepJsonArray() }).map(([what, body]): HttpRow => ({
    route: 'POST /api/:org/projects/:project/detections', input: what, send: json('POST', `${PROJECT}/detections`, typeof body === 'string' ? body : JSON.stringify(body)), status: 422, says: /invalid DetectionsBatch/,
  })),
  { route: 'POST /api/:org/projects/:project/detections', input: '101 items', send: json('POST', `${PROJECT}/detections`, Array.from({ length: 101 }, () => ({}))), status: 422, says: /at most 100 Detections per request, got 101/ },
  { route: 'POST /api/:org/projects/:project/detections', input: 'an item without image_id', send: json('POST', `${PROJECT}/detections`, [{ box_detections: [] }]), status: 422, says: /image_id/ },
  { route: 'POST /api/:org/projects/:project/detections', input: 'malformed JSON', send: json('POST', `${PROJECT}/detections`, '[{'), status: 400, says: /malformed JSON body/ },
  { route: 'POST /api/:org/projects/:project/detections', input: 'bytes that are not UTF-8', send: send('POST', `${PROJECT}/detections`, INVALID_UTF8, { 'content-type': 'application/json' }), status: 400, says: /malformed JSON body/ },
  { route: 'POST /api/:org/projects/:project/detectors', input: '{uuid: 5}', send: json('POST', `${PROJECT}/detectors`, { uuid: 5 }), status: 422, says: /invalid DetectorStatus: \/name: required field is missing/ },
  { route: 'POST /api/:org/projects/:project/detectors', input: '{"__proto__": {"uuid": …}}', send: json('POST', `${PROJECT}/detectors`, '{"__proto__":{"uuid":"x","name":"n"}}'), status: 422, says: /\/uuid: required field is missing/ },
  { route: 'POST /api/:org/projects/:project/detectors', input: 'an array', send: json('POST', `${PROJECT}/detectors`, []), status: 422, says: /invalid DetectorStatus/ },
]

/** An admin model upload; the zip is built when the row runs. */
const modelZip = (zip: () => Uint8Array, query = 'format=onnx') => (baseUrl: string) => send('POST', `/admin/projects/local/fuzz/models?${query}`, zip() as Uint8Array<ArrayBuffer>)(baseUrl)
const adminRows: HttpRow[] = [
  ...Object.entries({ '-1': -1, '0': 0, '"x"': 'x', '[]': [], 'burst 0': { per_second: 1, burst: 0 } }).map(([what, value]): HttpRow => ({
    route: 'PUT /admin/rate-limit', input: `per_second ${what}`, send: json('PUT', '/admin/rate-limit', typeof value === 'object' && value !== null && !Array.isArray(value) ? value : { per_second: value }), status: 422, says: /invalid AdminRateLimitRequest/,
  })),
  { route: 'PUT /admin/rate-limit', input: 'per_second 1e400 (Infinity)', send: json('PUT', '/admin/rate-limit', '{"per_second":1e400}'), status: 422, says: /invalid AdminRateLimitRequest/ },
  ...['connect', 'disconnect', 'newListener', 'removeListener'].map((event): HttpRow => ({ route: 'POST /admin/nodes/:node/emit', input: `the reserved event ${event}`, send: json('POST', '/admin/nodes/x/emit', { event }), status: 422, says: /is reserved by socket\.io/ })),
  { route: 'POST /admin/nodes/:node/emit', input: 'node __proto__', send: json('POST', '/admin/nodes/__proto__/emit', { event: 'ping' }), status: 404, says: /no connected node matches "__proto__"/ },
  { route: 'POST /admin/nodes/:node/emit', input: 'args 5', send: json('POST', '/admin/nodes/x/emit', { event: 'a', args: 5 }), status: 422, says: /\/args: expected array/ },
  { route: 'POST /admin/nodes/:node/emit', input: 'no event', send: json('POST', '/admin/nodes/x/emit', {}), status: 422, says: /\/event: required field is missing/ },
  { route: 'POST /admin/nodes/:node/emit', input: 'timeout_ms 1e12 (past the longest timer)', send: json('POST', '/admin/nodes/x/emit', { event: 'a', timeout_ms: 1e12 }), status: 422, says: /\/timeout_ms: expected/ },
  ...['stop-training', 'abort-training', 'restart'].map((action): HttpRow => ({ route: `POST /admin/nodes/:node/${action}`, input: 'node constructor', send: send('POST', `/admin/nodes/constructor/${action}`, null), status: 404, says: /no connected node matches "constructor"/ })),
  ...badNames.slice(0, 6).map((name): HttpRow => ({ route: 'POST /admin/projects', input: `organization ${JSON.stringify(name)}`, send: json('POST', '/admin/projects', { organization: name, project_name: 'p' }), status: 422, says: NAME_RULE })),
  { route: 'POST /admin/projects', input: 'seed "x"', send: json('POST', '/admin/projects', { project_name: 'seeded', seed: 'x' }), status: 422, says: /\/seed: expected union value/ },
  { route: 'POST /admin/projects', input: 'a JSON array', send: json('POST', '/admin/projects', [{ project_name: 'p' }]), status: 422, says: /invalid AdminCreateProjectRequest/ },
  { route: 'DELETE /admin/projects/:org/:project', input: '__proto__/constructor', send: send('DELETE', '/admin/projects/__proto__/constructor', null), status: 404, says: /project __proto__\/constructor does not exist/ },
  { route: 'GET /admin/projects/:org/:project/images', input: 'state=constructor', send: get('/admin/projects/local/fuzz/images?state=constructor'), status: 422, says: /query parameter state="constructor" is not one of/ },
  { route: 'GET /admin/projects/:org/:project/images', input: 'project toString', send: get('/admin/projects/local/toString/images'), status: 404, says: /does not exist/ },
  { route: 'GET /admin/projects/:org/:project/models', input: 'project __proto__', send: get('/admin/projects/local/__proto__/models'), status: 404, says: /does not exist/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'no format', send: modelZip(() => zipWithEntries({ 'w.bin': 'x' }), ''), status: 422, says: /query parameter format is required/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'format ../escape', send: modelZip(() => zipWithEntries({ 'w.bin': 'x' }), 'format=..%2Fescape'), status: 422, says: /model format "\.\.\/escape" must be/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'training=__proto__', send: modelZip(() => zipWithEntries({ 'w.bin': 'x' }), 'format=onnx&training=__proto__'), status: 422, says: /query parameter training="__proto__" is not a non-negative integer/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'model_id constructor', send: modelZip(() => zipWithEntries({ 'w.bin': 'x' }), 'format=onnx&model_id=constructor'), status: 404, says: /model constructor does not exist/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'a zip bomb (64 MiB of zeros in 65 KB)', send: modelZip(() => zipBomb()), status: 422, says: /model zip: zip entry "weights\.bin" expands from \d+ to 67108864 bytes.*zip bomb/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'an entry claiming 1.5 GiB', send: modelZip(() => zipClaimingSize(1.5 * 2 ** 30)), status: 422, says: /model zip: .*(zip bomb|header says)/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'an entry named ../evil.txt', send: modelZip(() => zipWithEntries({ '../evil.txt': 'x' })), status: 422, says: /escapes the target folder/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'an absolute entry', send: modelZip(() => zipWithEntries({ '/etc/evil': 'x' })), status: 422, says: /has an absolute path/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'a symbolic link', send: modelZip(() => zipWithSymlink('w.bin', '/etc/passwd')), status: 422, says: /is a symbolic link/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'an entry in a folder', send: modelZip(() => zipWithEntries({ 'a/b/c.txt': 'x' })), status: 422, says: /file name "a\/b\/c\.txt" is not a plain file name/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'not a zip', send: modelZip(() => new TextEncoder().encode('PK not really')), status: 422, says: /not a zip archive/ },
  { route: 'POST /admin/projects/:org/:project/models', input: 'no body', send: send('POST', '/admin/projects/local/fuzz/models?format=onnx', null), status: 422, says: /not a zip archive/ },
  { route: 'PUT /admin/projects/:org/:project/deployment-target', input: 'a JSON array', send: json('PUT', '/admin/projects/local/fuzz/deployment-target', [1]), status: 422, says: /invalid AdminDeploymentTargetRequest/ },
  { route: 'PUT /admin/projects/:org/:project/deployment-target', input: '{}', send: json('PUT', '/admin/projects/local/fuzz/deployment-target', {}), status: 422, says: /name the model by model_id or version/ },
  { route: 'PUT /admin/projects/:org/:project/deployment-target', input: 'version __proto__', send: json('PUT', '/admin/projects/local/fuzz/deployment-target', { version: '__proto__' }), status: 404, says: /no model with version __proto__/ },
  { route: 'PUT /admin/projects/:org/:project/deployment-target', input: 'model_id ../..', send: json('PUT', '/admin/projects/local/fuzz/deployment-target', { model_id: '../..' }), status: 404, says: /model \.\.\/\.\. does not exist/ },
  { route: 'DELETE /admin/projects/:org/:project/deployment-target', input: 'project constructor', send: send('DELETE', '/admin/projects/local/constructor/deployment-target', null), status: 404, says: /does not exist/ },
  { route: 'GET /admin/projects/:org/:project/trainings', input: 'project __proto__', send: get('/admin/projects/local/__proto__/trainings'), status: 404, says: /does not exist/ },
  { route: 'POST /admin/projects/:org/:project/trainings', input: 'node 5', send: json('POST', '/admin/projects/local/fuzz/trainings', { node: 5 }), status: 422, says: /\/node: expected string/ },
  { route: 'POST /admin/projects/:org/:project/trainings', input: 'a node nobody is', send: json('POST', '/admin/projects/local/fuzz/trainings', { node: 'hasOwnProperty' }), status: 404, says: /no connected node matches "hasOwnProperty"/ },
  { route: 'POST /admin/projects/:org/:project/trainings', input: 'hyperparameters []', send: json('POST', '/admin/projects/local/fuzz/trainings', { node: 'n', hyperparameters: [] }), status: 422, says: /\/hyperparameters: expected object/ },
  { route: 'POST /admin/projects/:org/:project/trainings', input: 'timeout_ms 1e12 (past the longest timer)', send: json('POST', '/admin/projects/local/fuzz/trainings', { node: 'n', timeout_ms: 1e12 }), status: 422, says: /\/timeout_ms: expected/ },
  { route: 'GET /admin/projects/:org/:project/detectors', input: 'project valueOf', send: get('/admin/projects/local/valueOf/detectors'), status: 404, says: /does not exist/ },
  { route: '(no route)', input: 'GET /admin/__proto__', send: get('/admin/__proto__'), status: 404, says: /no route GET \/admin\/__proto__/ },
  { route: 'ALL /ws/socket.io/*', input: 'Engine.IO protocol version 9', send: request('GET', '/ws/socket.io/?EIO=9&transport=polling'), status: 400, says: /Unsupported protocol version/ },
]

for (const [title, rows] of [['/api refuses what it cannot use', apiRows], ['image uploads (#13) refuse all or none', uploadRows], ['model uploads (#8, §9) keep file names flat', modelRows],
  ['detections and detector statuses', exchangeRows], ['/admin refuses what it cannot use', adminRows]] as const) {
  describeTable(title, rows as HttpRow[], rowName, async (row) => expectAnswer(await row.send(url), row), checks)
}

describe('unusual but valid input gets its right answer', () => {
  test('GET routes ignore prototype names in the query', async () => {
    const junk = PROTOTYPE_NAMES.map((n) => `${n}=1`).join('&')
    for (const path of ['/api/status', '/api/projects', `${PROJECT}/data`, `${PROJECT}/models`, `${PROJECT}/trainings`, `${PROJECT}/detectors`, '/admin/stats', '/admin/nodes', '/admin/projects', '/metrics']) {
      const answer = await get(`${path}?${junk}`)(url)
      expect({ path, status: answer.status }).toEqual({ path, status: 200 })
    }
    const statuses = await get('/admin/nodes/statuses?node=__proto__')(url)
    expect(JSON.parse(statuses.text)).toEqual({ statuses: [] })
    const images = await get(`${PROJECT}/images?ids=__proto__,constructor,toString`)(url)
    expect(JSON.parse(images.text)).toEqual({ images: [] })
  })

  test('an organization and project named toString / hasOwnProperty are plain names: created, listed, deleted', async () => {
    const created = await json('POST', '/api/toString/projects/generator', { project_name: 'hasOwnProperty', inbox: 1 })(url)
    expect(created.status).toBe(200)
    expect(fixture.loop.listProjects().map((p) => `${p.organization}/${p.project}`)).toContain('toString/hasOwnProperty')
    expect(fixture.loop.listImages('toString', 'hasOwnProperty')).toHaveLength(1)
    expect((await send('DELETE', '/api/toString/projects/hasOwnProperty', null)(url)).status).toBe(200)
    expect(fixture.loop.listProjects().map((p) => `${p.organization}/${p.project}`)).not.toContain('toString/hasOwnProperty')
  })

  test('an upload named ../../escape with unicode tags and prototype keys is stored under its own id, inside the images folder, tags kept exactly', async () => {
    const before = await folderSnapshot(fixture.dataFolder, (path) => path.startsWith('loop.sqlite'))
    const tags = [UNUSUAL_TEXT.rtl, UNUSUAL_TEXT.emoji, UNUSUAL_TEXT.fourByte, UNUSUAL_TEXT.family, UNUSUAL_TEXT.nul, '__proto__']
    const metadata = `{"__proto__": {"state": "complete"}, "constructor": 1, "tags": ${JSON.stringify(tags)}}`
    const answer = await request('POST', `${PROJECT}/images`, { body: files(uploadItem('../../escape', metadata)) })(url)
    expect(answer.status).toBe(200)
    const { stored } = JSON.parse(answer.text) as { stored: string[] }
    expect(stored).toHaveLength(1)
    const image = fixture.loop.listImages('local', 'fuzz').find((i) => i.id === stored[0])!
    expect({ tags: image.tags, state: image.state, file_name: image.file_name }).toEqual({ tags, state: 'inbox', file_name: 'image_../../escape.jpg' })
    const added = Object.keys(await folderSnapshot(fixture.dataFolder, (path) => path.startsWith('loop.sqlite'))).filter((path) => !(path in before))
    expect(added).toHaveLength(1)
    expect(added[0]).toMatch(/^images\/local\/fuzz\/[^/]+\.jpg$/)
    expect(added[0]).not.toContain('escape')
  })

  test('model files named constructor, toString, with emoji and RTL marks are stored and come back in the zip', async () => {
    const names = ['constructor', 'toString', `w ${UNUSUAL_TEXT.emoji}.bin`, `${UNUSUAL_TEXT.rtl}.bin`]
    const upload = await send('PUT', `${PROJECT}/trainings/${TRAINING}/models/latest/onnx/file`, files([...names.map((name) => ({ name, content: name })), { name: 'model.json', content: '{}' }]))(url)
    expect(upload.status).toBe(200)
    const { id } = JSON.parse(upload.text) as { id: string }
    const zip = new Uint8Array(await (await fetch(`${url}${PROJECT}/models/${id}/onnx/file`)).arrayBuffer())
    const { listZipEntries } = await import('../../src/foundation/zip-archive.ts')
    expect(listZipEntries(zip).map((e) => e.name).sort()).toEqual([...names, 'model.json'].sort())
  })
})

describe('node → Loop socket events', () => {
  let node: Socket
  beforeAll(async () => {
    node = await connectNode(url, { cookie })
    node.on('ping_me', (ack: (answer: unknown) => void) => ack('pong'))
  })
  afterAll(() => {
    node?.close()
  })
  const call = (event: string, args: unknown[]) => node.timeout(10_000).emitWithAck(event, ...args)
  const status = { id: 'fuzz-node', name: 'fuzz', state: 'idle', uptime: 1, errors: {}, capabilities: [] }
  const rows: EventRow[] = [
    ...Object.entries({ 'no argument': [], null: [null], array: [[status]], number: [5], 'nested 10 000 deep': [JSON.parse(deepJsonObject())] }).flatMap(([input, args]): EventRow[] => [
      { event: 'update_trainer', input, args: () => args, says: /invalid TrainingStatus/ },
      { event: 'update_annotation_node', input, args: () => args, says: /invalid AnnotationNodeStatus/ },
    ]),
    { event: 'update_trainer', input: '{"__proto__": {id, name}}', args: () => [JSON.parse('{"__proto__": {"id": "x", "name": "y"}}')], says: /\/id: required field is missing/ },
    { event: 'update_trainer', input: 'id 5', args: () => [{ ...status, id: 5 }], says: /\/id: expected string/ },
    { event: 'update_trainer', input: 'errors a list (not a dict)', args: () => [{ ...status, errors: ['x', 'y'] }], says: /\/errors: expected/ },
    { event: 'update_annotation_node', input: 'errors a list (not a dict)', args: () => [{ ...status, errors: ['x'] }], says: /\/errors: expected object/ },
    { event: 'update_training', input: '(5, 6, 7)', args: () => [5, 6, 7], says: /update_training expects \(organization: string, project: string, training: TrainingOut\)/ },
    { event: 'update_training', input: 'project __proto__/constructor', args: () => ['__proto__', 'constructor', {}], says: /project __proto__\/constructor does not exist/ },
    { event: 'update_training', input: 'project ../..', args: () => ['..', '..', {}], says: /project \.\.\/\.\. does not exist/ },
    { event: 'update_training', input: 'training null', args: () => ['local', 'fuzz', null], says: /invalid TrainingOut/ },
    { event: 'update_segmentation_annotation', input: '(1, 2)', args: () => [1, 2], says: /update_segmentation_annotation expects/ },
    { event: 'update_segmentation_annotation', input: 'an annotation of wrong types', args: () => ['local', 'fuzz', { id: 5 }], says: /invalid SegmentationAnnotation/ },
    { event: 'update_segmentation_annotation', input: 'project ../../escape', args: () => ['..', '../escape', { id: 'a', image_id: 'i', category_id: 'c', shape: { points: [] } }], says: /does not exist/ },
    { event: 'update_segmentation_annotation', input: 'an image nobody has', args: () => ['local', 'fuzz', { id: 'a', image_id: '__proto__', category_id: 'c', shape: { points: [] } }], says: /image __proto__ does not exist/ },
    ...[...PROTOTYPE_NAMES, UNUSUAL_TEXT.emoji, UNUSUAL_TEXT.nul, 'u'.repeat(10_000)].map((event): EventRow => ({ event, input: 'an unknown event', args: () => [status], says: /^unknown event ".*; the Loop handles / })),
  ]
  describeTable('refusals are failed SocketResponses naming the problem', rows, (row) => `${row.event.length > 30 ? `${row.event.slice(0, 12)}…` : JSON.stringify(row.event)} ← ${row.input}`,
    async (row) => expectRefusal(await call(row.event, row.args()), row), checks)

  test('a status named with prototype names, RTL marks and emoji is accepted and kept exactly', async () => {
    const named = { ...status, id: '__proto__', name: `${UNUSUAL_TEXT.rtl} ${UNUSUAL_TEXT.family} constructor` }
    expect(await call('update_trainer', [named])).toEqual({ success: true, error_msg: null, payload: null })
    expect(fixture.loop.statusHistory('__proto__').at(-1)?.status).toMatchObject({ name: named.name })
  })

  test('admin emit reaches the node with a timeout of 2147483647 ms (the longest timer)', async () => {
    const answer = await json('POST', `/admin/nodes/__proto__/emit`, { event: 'ping_me', timeout_ms: 2_147_483_647 })(url)
    expect({ status: answer.status, body: JSON.parse(answer.text) }).toEqual({ status: 200, body: { ack: 'pong' } })
  })

  test('a socket without the session cookie is refused at the handshake, naming the login', async () => {
    const error = await connectNode(url, {}).then(() => undefined, (e: Error) => e)
    expect(error?.message).toMatch(/unauthorized: log in with POST \/api\/login/)
  })

  test('the events the Loop handles are the table\'s (an unknown event\'s answer lists them)', async () => {
    expect(handledEventsOf(refusalOf(await call('no such event', []))!)).toEqual([...SOCKET_EVENTS].sort())
  })
})

test('concurrency: 10 valid and 10 bad uploads interleaved all get their right answers; exactly the valid ones are stored', async () => {
  const before = fixture.loop.listImages('local', 'fuzz').length
  const bad = [
    () => uploadItem('bad-bomb', {}, jpegClaimingSize(40_000, 40_000)),
    () => uploadItem('bad-meta', { tags: 5 }),
    () => uploadItem('bad-cut', {}, jpeg.slice(0, 100)),
    () => [{ name: 'image_lonely.json', content: '{}' }],
    () => uploadItem('bad-png', {}, pngBomb(100, 100)),
  ]
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => i % 2 === 0
    ? request('POST', `${PROJECT}/images`, { body: files(uploadItem(`valid-${i}`, { tags: [`n${i}`] }, makeJpeg(32, 24, [i * 10, 40, 40]))) })(url).then((a) => ({ valid: true, a }))
    : request('POST', `${PROJECT}/images`, { body: files(bad[(i >> 1) % bad.length]!()) })(url).then((a) => ({ valid: false, a }))))
  expect(answers.filter((x) => x.valid).map((x) => x.a.status)).toEqual(Array(10).fill(200))
  expect(answers.filter((x) => !x.valid).map((x) => x.a.status)).toEqual(Array(10).fill(422))
  const after = fixture.loop.listImages('local', 'fuzz')
  expect(after.length - before).toBe(10)
  expect(after.flatMap((i) => i.tags).filter((t) => /^n\d+$/.test(t)).sort()).toEqual(Array.from({ length: 10 }, (_, k) => `n${k * 2}`).sort())
})

describe('the table at the top covers every entry point', () => {
  const api = createApiRoutes({} as never)
  const admin = createAdminRoutes({ sessions: {} } as never)
  test('the /api and /admin routes the loop serves are the table\'s', () => {
    expect(routeList(api)).toEqual([...API_ENTRY_POINTS].sort())
    expect(routeList(admin)).toEqual([...ADMIN_ENTRY_POINTS].sort())
  })
  test('every route has rows', () => {
    const covered = new Set([...apiRows, ...uploadRows, ...modelRows, ...exchangeRows, ...adminRows].map((row) => row.route))
    // read-only routes without a refusal of their own are in "unusual but valid input"
    for (const route of ['GET /api/projects', 'GET /api/:org/projects/:project/models', 'GET /admin/stats', 'GET /admin/nodes', 'GET /admin/nodes/statuses', 'GET /admin/projects']) covered.add(route)
    expect([...API_ENTRY_POINTS, ...ADMIN_ENTRY_POINTS].filter((route) => !covered.has(route))).toEqual([])
  })
})
