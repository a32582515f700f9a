/**
 * Fuzz suite of the local loop's web page API (issue 16; `web-routes.ts`, `web-page.ts`) on a real LocalLoop with
 * login: ids and project names that are prototype names or climb out of a folder, query values of the wrong type or
 * range, bodies that are not JSON, of the wrong shape or too deep, uploads that are not JPEGs, and every route without
 * the session. Refusals are 4xx with a `detail` naming the problem; after each table the loop answers and its files
 * and the image's annotations and state are as they were.
 *
 * Entry points (the table test fails when the loop serves one that is not listed here):
 *   GET /admin/session · GET …/gallery · POST …/images · GET …/images/:id/{view,thumbnail,file} · PUT …/images/:id/state
 *   POST …/images/:id/annotations · PUT|DELETE …/images/:id/annotations/:kind/:index · POST …/images/:id/annotate
 *   GET …/live (each under /admin/projects/:org/:project) · GET / · GET /web/:file
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setLogSink } from '../../src/foundation/log.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { createWebPage } from '../../src/local-loop/web-page.ts'
import { createWebRoutes, type WebRouteDependencies } from '../../src/local-loop/web-routes.ts'
import { describeTable, expectAnswer, folderSnapshot, formOf, request, routeList, rowName, type HttpRow } from './fuzz-harness.ts'
import { deepJsonObject, INVALID_UTF8, PROTOTYPE_NAMES, TRAVERSAL_NAMES, UNUSUAL_TEXT } from './fuzz-inputs.ts'

const USER = { username: 'fuzz', password: 'fuzz-secret' }
const ORG = 'local'
const PROJECT = 'demo'
const P = `/admin/projects/${ORG}/${PROJECT}`
const WEB_ENTRY_POINTS = [
  'GET /admin/session', 'GET /admin/projects/:org/:project/gallery', 'POST /admin/projects/:org/:project/images',
  'GET /admin/projects/:org/:project/images/:id/view', 'GET /admin/projects/:org/:project/images/:id/thumbnail',
  'GET /admin/projects/:org/:project/images/:id/file', 'PUT /admin/projects/:org/:project/images/:id/state',
  'POST /admin/projects/:org/:project/images/:id/annotations', 'PUT /admin/projects/:org/:project/images/:id/annotations/:kind/:index',
  'DELETE /admin/projects/:org/:project/images/:id/annotations/:kind/:index', 'POST /admin/projects/:org/:project/images/:id/annotate',
  'GET /admin/projects/:org/:project/live', 'GET /', 'GET /web/:file',
]

let t: TestLoop
let cookie = ''
/** the one image, added with this id so that the rows (built before the loop starts) can name it */
const imageId = '01900000-0000-7000-8000-00000000f022'
let restoreSink: ((line: string) => void) | undefined
const astronaut = new Uint8Array(await readFile(join(import.meta.dir, '../fixtures/astronaut.jpg')))

beforeAll(async () => {
  restoreSink = setLogSink(() => undefined)
  t = await startTestLoop(USER)
  t.loop.store.setCategories(ORG, PROJECT, [{ id: 'cat-box', name: 'thing', description: null, hotkey: null, color: '#ff0000', point_size: null, type: 'box' }])
  await t.loop.addImage(ORG, PROJECT, { jpeg: astronaut, id: imageId, state: 'inbox', tags: [], source: null })
  const login = await fetch(`${t.loop.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(USER) })
  cookie = login.headers.get('set-cookie')!.split(';')[0]!
})
afterAll(async () => {
  await t?.cleanup()
  if (restoreSink) setLogSink(restoreSink)
})

const checks = () => ({
  alive: async () => expect((await fetch(`${t.loop.url}/api/status`)).status).toBe(200),
  state: async () => ({
    files: await folderSnapshot(t.dataFolder, (path) => path.startsWith('loop.sqlite') || path.startsWith('thumbnails')),
    image: t.loop.imageData(ORG, PROJECT, imageId),
    images: t.loop.listImages(ORG, PROJECT).length,
  }),
})
const withLogin = (init: RequestInit = {}): RequestInit => ({ ...init, headers: { cookie, ...(init.headers as Record<string, string> | undefined) } })
/** The row's request with the session cookie, read when the row runs (the rows are built before the login). */
const call = (method: string, path: string, init: RequestInit = {}) => (baseUrl: string) => request(method, path, withLogin(init))(baseUrl)
const json = (method: string, path: string, body: unknown) => call(method, path, { headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })
const image = (id: string) => `${P}/images/${encodeURIComponent(id)}`
const BOX = { kind: 'box', category_id: 'cat-box', x: 10, y: 10, width: 20, height: 20 }

const queryRows: HttpRow[] = [
  ...['page=-1', 'page=abc', 'page=1e999', 'per_page=-5', 'state=__proto__', 'state=constructor', 'from=yesterday', `to=${encodeURIComponent('2026-01-01\u0000')}`]
    .map((query): HttpRow => ({ route: 'GET …/gallery', input: query, send: call('GET', `${P}/gallery?${query}`), status: 422, says: /invalid query: \/(page|per_page|state|from|to)/ })),
  ...[...PROTOTYPE_NAMES.slice(0, 3), TRAVERSAL_NAMES[1]!].map((name): HttpRow => ({
    route: 'GET …/gallery', input: `the project ${JSON.stringify(name)}`, send: call('GET', `/admin/projects/${ORG}/${encodeURIComponent(name)}/gallery`), status: 404, says: /project|does not exist/,
  })),
]

const imageRows: HttpRow[] = [
  ...[...PROTOTYPE_NAMES.slice(0, 3), ...TRAVERSAL_NAMES.slice(1, 4), UNUSUAL_TEXT.emoji].flatMap((id) => (['view', 'thumbnail', 'file'] as const).map((what): HttpRow => ({
    route: `GET …/images/:id/${what}`, input: `the image id ${JSON.stringify(id)}`, send: call('GET', `${image(id)}/${what}`), status: 404, says: /does not exist|no image/,
  }))),
  ...(['view', 'thumbnail', 'file'] as const).map((what): HttpRow => ({
    route: `GET …/images/:id/${what}`, input: 'an image id of 300 characters', send: call('GET', `${image('x'.repeat(300))}/${what}`), status: 422, says: /invalid params: \/id/,
  })),
  { route: 'PUT …/images/:id/state', input: 'state __proto__', send: json('PUT', `${image(imageId)}/state`, { state: '__proto__' }), status: 422, says: /\/state/ },
  { route: 'PUT …/images/:id/state', input: 'state 5', send: json('PUT', `${image(imageId)}/state`, { state: 5 }), status: 422, says: /\/state/ },
  { route: 'PUT …/images/:id/state', input: 'a body that is not JSON', send: json('PUT', `${image(imageId)}/state`, '{state:'), status: 400, says: /malformed|JSON/i },
  { route: 'PUT …/images/:id/state', input: 'bytes that are not UTF-8', send: call('PUT', `${image(imageId)}/state`, { headers: { 'content-type': 'application/json' }, body: INVALID_UTF8 }), status: 400, says: /malformed|JSON/i },
  { route: 'PUT …/images/:id/state', input: 'of an image that does not exist', send: json('PUT', `${image('nope')}/state`, { state: 'complete' }), status: 404, says: /does not exist/ },
  { route: 'POST …/images/:id/annotations', input: 'kind "circle"', send: json('POST', `${image(imageId)}/annotations`, { ...BOX, kind: 'circle' }), status: 422, says: /invalid body: \/kind/ },
  { route: 'POST …/images/:id/annotations', input: 'x: "10"', send: json('POST', `${image(imageId)}/annotations`, { ...BOX, x: '10' }), status: 422, says: /invalid body: \/x: Expected (number|integer)/ },
  { route: 'POST …/images/:id/annotations', input: 'width: -5', send: json('POST', `${image(imageId)}/annotations`, { ...BOX, width: -5 }), status: 422, says: /invalid body: \/width/ },
  { route: 'POST …/images/:id/annotations', input: 'x: 1e308', send: json('POST', `${image(imageId)}/annotations`, { ...BOX, x: 1e308 }), status: 422, says: /invalid body: \/x/ },
  { route: 'POST …/images/:id/annotations', input: 'a category the project does not have', send: json('POST', `${image(imageId)}/annotations`, { ...BOX, category_id: '__proto__' }), status: 422, says: /categor/ },
  { route: 'POST …/images/:id/annotations', input: 'JSON nested 10 000 deep', send: json('POST', `${image(imageId)}/annotations`, deepJsonObject()), status: 422, says: /./ },
  { route: 'POST …/images/:id/annotations', input: 'null', send: json('POST', `${image(imageId)}/annotations`, 'null'), status: 422, says: /./ },
  ...['-1', 'abc', '1e9', '9999999999', '__proto__'].map((index): HttpRow => ({
    route: 'PUT …/images/:id/annotations/:kind/:index', input: `index ${index}`, send: json('PUT', `${image(imageId)}/annotations/box/${index}`, BOX), status: 422, says: /invalid params: \/index/,
  })),
  { route: 'PUT …/images/:id/annotations/:kind/:index', input: 'a point body for a box path', send: json('PUT', `${image(imageId)}/annotations/box/0`, { kind: 'point', category_id: 'cat-box', x: 1, y: 1 }), status: 422, says: /kind|annotation/ },
  { route: 'DELETE …/images/:id/annotations/:kind/:index', input: 'kind __proto__', send: call('DELETE', `${image(imageId)}/annotations/__proto__/0`), status: 422, says: /kind/ },
  { route: 'DELETE …/images/:id/annotations/:kind/:index', input: 'an index past the end', send: call('DELETE', `${image(imageId)}/annotations/box/99`), status: 404, says: /annotation/ },
  { route: 'POST …/images/:id/annotate', input: 'x0: null', send: json('POST', `${image(imageId)}/annotate`, { category_id: 'cat-box', x0: null, y0: 1, x1: 2, y1: 3 }), status: 422, says: /x0/ },
  { route: 'POST …/images/:id/annotate', input: 'a category the project does not have', send: json('POST', `${image(imageId)}/annotate`, { category_id: 'nope', x0: 1, y0: 1, x1: 20, y1: 20 }), status: 422, says: /categor/ },
  { route: 'POST …/images/:id/annotate', input: 'no annotator connected', send: json('POST', `${image(imageId)}/annotate`, { category_id: 'cat-box', x0: 1, y0: 1, x1: 20, y1: 20 }), status: 404, says: /no connected node matches an annotation node \(start one: learning-loop-node annotator\)/ },
  { route: 'GET …/live', input: 'a project that does not exist', send: call('GET', `/admin/projects/${ORG}/__proto__/live`), status: 404, says: /project|does not exist/ },
]

const uploadRows: HttpRow[] = [
  { route: 'POST …/images', input: 'a JSON body', send: json('POST', `${P}/images`, { files: [] }), status: 415, says: /multipart\/form-data/ },
  { route: 'POST …/images', input: 'no files', send: call('POST', `${P}/images`, { body: formOf([['files', 'text']]) }), status: 422, says: /no images/ },
  { route: 'POST …/images', input: 'garbage named ../../escape.jpg', send: call('POST', `${P}/images`, { body: formOf([['files', new Uint8Array(64).fill(1), '../../escape.jpg']]) }), status: 422, says: /escape\.jpg.*nothing was stored/ },
  { route: 'POST …/images', input: 'a good JPEG and a cut one: all or none', send: call('POST', `${P}/images`, { body: formOf([['files', astronaut, 'a.jpg'], ['files', astronaut.slice(0, 3000), 'cut.jpg']]) }), status: 422, says: /cut\.jpg.*nothing was stored/ },
  { route: 'POST …/images', input: '101 files', send: call('POST', `${P}/images`, { body: formOf(Array.from({ length: 101 }, (_, i): [string, Uint8Array, string] => ['files', new Uint8Array(4), `${i}.jpg`])) }), status: 422, says: /at most 100 images/ },
  { route: 'POST …/images', input: 'multipart without its final boundary', send: call('POST', `${P}/images`, { headers: { 'content-type': 'multipart/form-data; boundary=zz' }, body: 'garbage' }), status: 400, says: /malformed multipart body/ },
]

const pageRows: HttpRow[] = [
  ...['..%2F..%2Fpackage.json', '__proto__', 'constructor', 'app.js%00.html', 'web-routes.ts'].map((file): HttpRow => ({
    route: 'GET /web/:file', input: JSON.stringify(decodeURIComponent(file)), send: call('GET', `/web/${file}`), status: 404, says: /the web page has no file|no route/,
  })),
]

/** Every web route without the session cookie: 401 before any input is looked at (so nothing is learned of it). */
const loggedOutRows: HttpRow[] = WEB_ENTRY_POINTS.filter((route) => route.startsWith('GET /admin/projects') || route.startsWith('POST') || route.startsWith('PUT') || route.startsWith('DELETE')).map((route) => {
  const [method, path] = route.split(' ') as [string, string]
  const filled = path.replace(':org', ORG).replace(':project', PROJECT).replace(':id', '__proto__').replace(':kind', 'box').replace(':index', 'x')
  // well-formed JSON of the wrong shape: a body that does not even parse is refused (400) before the login is looked at
  return { route, input: 'no session, a body of the wrong shape', send: request(method, filled, { headers: { 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{"__proto__": 1, "state": 5}' }), status: 401, says: /session cookie/ }
})

describeTable('the gallery refuses query values it cannot use', queryRows, rowName, async (row) => expectAnswer(await row.send(t.loop.url), row), checks)
describeTable('image routes refuse unknown images and bad bodies, naming the field', imageRows, rowName, async (row) => expectAnswer(await row.send(t.loop.url), row), checks)
describeTable('browser uploads are JPEGs, all or none', uploadRows, rowName, async (row) => expectAnswer(await row.send(t.loop.url), row), checks)
describeTable('the page serves its own files only', pageRows, rowName, async (row) => expectAnswer(await row.send(t.loop.url), row), checks)
describeTable('without login every route answers 401 before reading its input', loggedOutRows, rowName, async (row) => expectAnswer(await row.send(t.loop.url), row), checks)

test('page and per_page out of range are clamped, not refused: page 1, and 1 to 200 images a page', async () => {
  const page = async (query: string) => JSON.parse((await call('GET', `${P}/gallery?${query}`)(t.loop.url)).text) as { page: number; per_page: number }
  expect(await page('page=0')).toMatchObject({ page: 1 })
  expect(await page('per_page=0')).toMatchObject({ per_page: 1 })
  expect(await page('per_page=100000')).toMatchObject({ per_page: 200 })
})

describe('the table at the top covers every entry point', () => {
  // the node-facing /api and the admin API are local-loop.fuzz.test.ts's
  test('the routes of the page and its API are the table\'s', () => {
    const served = [...routeList(createWebRoutes({} as WebRouteDependencies)), ...routeList(createWebPage())]
    expect(served.sort()).toEqual([...WEB_ENTRY_POINTS].sort())
  })
})
