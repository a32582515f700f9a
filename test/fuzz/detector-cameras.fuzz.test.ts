/**
 * Fuzz suite of the detector's cameras (issue 13, entry points in camera-entry-points.ts): every camera route and
 * socket.io event of a real detector fed camera entries that are wrong in each field, ids that are JavaScript object
 * members or climb out of a folder, bodies that are not JSON or too large. Each refusal is a 4xx or an `{error}` ack
 * naming the field; after each table the node answers /health, no camera was added and nothing was written to its
 * data folder. No row starts ffmpeg: every entry is refused before a camera starts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { CAMERA_REST_ENTRY_POINTS } from './camera-entry-points.ts'
import { describeTable, detectorSocketCalls, expectAnswer, expectHealthy, expectRefusal, folderSnapshot, request, rowName, type EventRow, type HttpRow } from './fuzz-harness.ts'
import { deepJsonObject, INVALID_UTF8, PROTOTYPE_NAMES, TRAVERSAL_NAMES, UNUSUAL_TEXT } from './fuzz-inputs.ts'

setDefaultTimeout(60_000)

const KIB = 1024
const GOOD = { url: 'rtsp://127.0.0.1:9/never', fps: 5 }

let testLoop: TestLoop
let detector: DetectorNode
let dataFolder: string
let restoreSink: ((line: string) => void) | undefined

beforeAll(async () => {
  restoreSink = setLogSink(() => undefined)
  testLoop = await startTestLoop()
  dataFolder = join(testLoop.folder, 'detector')
  detector = await startTestDetector(testLoop.loop.url, dataFolder)
})

afterAll(async () => {
  await detector?.stop()
  await testLoop?.cleanup()
  if (restoreSink) setLogSink(restoreSink)
})

const checks = () => ({
  alive: () => expectHealthy(detector.url),
  state: async () => ({ files: await folderSnapshot(dataFolder, (path) => path.startsWith('outbox')), cameras: detector.cameras.list().length }),
})
const putCamera = (id: string, body: string | Uint8Array) => request('PUT', `/cameras/${encodeURIComponent(id)}`, { body: body as BodyInit })
const putJson = (id: string, entry: unknown) => putCamera(id, JSON.stringify(entry))

const fieldRows: HttpRow[] = [
  { route: 'PUT /cameras/:id', input: 'a body that is not JSON', send: putCamera('cam', '{url:'), status: 422, says: /the body is not JSON/ },
  { route: 'PUT /cameras/:id', input: 'bytes that are not UTF-8', send: putCamera('cam', INVALID_UTF8), status: 422, says: /not JSON|expected a JSON object/ },
  { route: 'PUT /cameras/:id', input: 'a JSON array', send: putJson('cam', [GOOD]), status: 422, says: /expected a JSON object/ },
  { route: 'PUT /cameras/:id', input: 'null', send: putJson('cam', null), status: 422, says: /expected a JSON object/ },
  { route: 'PUT /cameras/:id', input: 'no url', send: putJson('cam', { fps: 5 }), status: 422, says: /url/ },
  { route: 'PUT /cameras/:id', input: 'url: 5', send: putJson('cam', { url: 5 }), status: 422, says: /url/ },
  { route: 'PUT /cameras/:id', input: 'url: ftp://', send: putJson('cam', { url: 'ftp://127.0.0.1/x' }), status: 422, says: /url: scheme "ftp" is not supported/ },
  { route: 'PUT /cameras/:id', input: 'url: javascript:', send: putJson('cam', { url: 'javascript:alert(1)' }), status: 422, says: /url/ },
  { route: 'PUT /cameras/:id', input: 'url with a NUL', send: putJson('cam', { url: `rtsp://127.0.0.1/${UNUSUAL_TEXT.nul}` }), status: 422, says: /url/ },
  { route: 'PUT /cameras/:id', input: 'url /dev/sda', send: putJson('cam', { url: '/dev/sda' }), status: 422, says: /url: "\/dev\/sda" is not a V4L2 device/ },
  { route: 'PUT /cameras/:id', input: 'a relative video file', send: putJson('cam', { url: '../../etc/passwd' }), status: 422, says: /url: a video file must be an absolute path/ },
  { route: 'PUT /cameras/:id', input: 'url of 3000 characters', send: putJson('cam', { url: `rtsp://h/${'a'.repeat(3000)}` }), status: 422, says: /url/ },
  { route: 'PUT /cameras/:id', input: 'fps: "fast"', send: putJson('cam', { ...GOOD, fps: 'fast' }), status: 422, says: /fps/ },
  { route: 'PUT /cameras/:id', input: 'fps: 0', send: putJson('cam', { ...GOOD, fps: 0 }), status: 422, says: /fps/ },
  { route: 'PUT /cameras/:id', input: 'fps: 1e9', send: putJson('cam', { ...GOOD, fps: 1e9 }), status: 422, says: /fps/ },
  { route: 'PUT /cameras/:id', input: 'width: 1e9', send: putJson('cam', { ...GOOD, width: 1e9 }), status: 422, says: /width/ },
  { route: 'PUT /cameras/:id', input: 'height: 2.5', send: putJson('cam', { ...GOOD, height: 2.5 }), status: 422, says: /height/ },
  { route: 'PUT /cameras/:id', input: 'tags: a string', send: putJson('cam', { ...GOOD, tags: 'a,b' }), status: 422, says: /tags/ },
  { route: 'PUT /cameras/:id', input: 'autoupload: __proto__', send: putJson('cam', { ...GOOD, autoupload: '__proto__' }), status: 422, says: /autoupload/ },
  { route: 'PUT /cameras/:id', input: 'enabled: "yes"', send: putJson('cam', { ...GOOD, enabled: 'yes' }), status: 422, says: /enabled/ },
  { route: 'PUT /cameras/:id', input: 'loop: true on an RTSP camera', send: putJson('cam', { ...GOOD, loop: true }), status: 422, says: /loop: only a video file can be looped/ },
  { route: 'PUT /cameras/:id', input: 'an unknown field', send: putJson('cam', { ...GOOD, colour: 'red' }), status: 422, says: /colour/ },
  { route: 'PUT /cameras/:id', input: 'an id in the body that differs from the path', send: putJson('cam', { ...GOOD, id: 'other' }), status: 422, says: /id: "other" differs from the camera's path id "cam"/ },
  { route: 'PUT /cameras/:id', input: 'JSON nested 2 000 deep', send: putCamera('cam', deepJsonObject(2_000)), status: 422, says: /camera "cam": url: required field is missing; a: unexpected property/ },
  { route: 'PUT /cameras/:id', input: 'JSON nested 10 000 deep (over the body limit)', send: putCamera('cam', deepJsonObject()), status: 413, says: /request body larger than 16384 bytes/ },
  { route: 'PUT /cameras/:id', input: 'a body of 17 KiB', send: putCamera('cam', JSON.stringify({ ...GOOD, tags: ['t'.repeat(17 * KIB)] })), status: 413, says: /request body larger than 16384 bytes/ },
  // ".." itself never reaches the route: the URL is normalised to PUT / (404)
  ...['__proto__', '_hidden', '.dotfile', ...TRAVERSAL_NAMES.slice(1, 3), UNUSUAL_TEXT.emoji, UNUSUAL_TEXT.nul, 'c'.repeat(65)].map((id): HttpRow => ({
    route: 'PUT /cameras/:id', input: `the id ${JSON.stringify(id.length > 20 ? `${id.slice(0, 8)}… (${id.length})` : id)}`, send: putJson(id, GOOD), status: 422, says: /id/,
  })),
]

const unknownCameraRows: HttpRow[] = [...PROTOTYPE_NAMES.slice(0, 3), 'nope', TRAVERSAL_NAMES[1]!].flatMap((id) => [
  { route: 'GET /cameras/:id', input: `unknown camera ${JSON.stringify(id)}`, send: request('GET', `/cameras/${encodeURIComponent(id)}`), status: 404, says: /no camera/ },
  { route: 'DELETE /cameras/:id', input: `unknown camera ${JSON.stringify(id)}`, send: request('DELETE', `/cameras/${encodeURIComponent(id)}`), status: 404, says: /no camera/ },
  { route: 'GET /cameras/:id/frame.jpg', input: `unknown camera ${JSON.stringify(id)}`, send: request('GET', `/cameras/${encodeURIComponent(id)}/frame.jpg`), status: 404, says: /no camera|no detected frame/ },
  { route: 'GET /cameras/:id/last', input: `unknown camera ${JSON.stringify(id)}`, send: request('GET', `/cameras/${encodeURIComponent(id)}/last`), status: 404, says: /no camera|no detected frame/ },
  { route: 'GET /cameras/:id/events', input: `unknown camera ${JSON.stringify(id)}`, send: request('GET', `/cameras/${encodeURIComponent(id)}/events`), status: 404, says: /no camera/ },
] satisfies HttpRow[])

describeTable('PUT /cameras/<id> refuses an entry naming the bad field', fieldRows, rowName, async (row) => expectAnswer(await row.send(detector.url), row), checks)
describeTable('camera routes answer 404 for a camera that does not exist', unknownCameraRows, rowName, async (row) => expectAnswer(await row.send(detector.url), row), checks)

describe('unusual but valid input gets its right answer', () => {
  test('cameras named constructor and toString are ordinary cameras: added, read, listed and removed', async () => {
    for (const id of ['constructor', 'toString']) {
      expect((await putJson(id, GOOD)(detector.url)).status).toBe(201)
      expect(JSON.parse((await request('GET', `/cameras/${id}`)(detector.url)).text)).toMatchObject({ id, config: { url: GOOD.url } })
    }
    expect(detector.cameras.list().map((camera) => camera.id).sort()).toEqual(['constructor', 'toString'])
    for (const id of ['constructor', 'toString']) expect((await request('DELETE', `/cameras/${id}`)(detector.url)).status).toBe(200)
    expect(detector.cameras.list()).toEqual([])
  })

  test('a "__proto__" key beside the entry is ignored: it sets nothing on the camera or on Object.prototype', async () => {
    const answer = await putCamera('proto', '{"url":"rtsp://127.0.0.1:9/x","__proto__":{"fps":1,"polluted":true}}')(detector.url)
    expect(answer.status).toBe(201)
    expect(JSON.parse(answer.text).config).toEqual({ id: 'proto', url: 'rtsp://127.0.0.1:9/x', fps: 5, tags: [], enabled: true, loop: false })
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined()
    expect((await request('DELETE', '/cameras/proto')(detector.url)).status).toBe(200)
  })
})

test('GET /cameras ← prototype names as query parameters: the (empty) list', async () => {
  const answer = await request('GET', `/cameras?${PROTOTYPE_NAMES.map((n) => `${n}=1`).join('&')}`)(detector.url)
  expect({ status: answer.status, body: JSON.parse(answer.text) }).toEqual({ status: 200, body: [] })
})

describe('socket.io camera events', () => {
  const call = detectorSocketCalls(() => detector.url)
  const idEvents = ['get_camera', 'put_camera', 'delete_camera', 'join_camera', 'leave_camera']
  const eventRows: EventRow[] = [
    ...idEvents.flatMap((event) => Object.entries({ 'no argument': [], null: [null], number: [5], 'an empty id': [''], 'camera_id: 5': [{ camera_id: 5 }], array: [['cam']] })
      .map(([input, args]): EventRow => ({ event, input, args: () => args, says: new RegExp(`${event}: expected \\{"camera_id": "<id>"\\} or the id as a string`) }))),
    ...['get_camera', 'delete_camera', 'join_camera'].flatMap((event) => [...PROTOTYPE_NAMES.slice(0, 3), 'nope'].map((id): EventRow => ({
      event, input: `unknown camera ${JSON.stringify(id)}`, args: () => [{ camera_id: id }], says: /no camera/,
    }))),
    { event: 'put_camera', input: 'no config', args: () => [{ camera_id: 'cam' }], says: /expected a JSON object/ },
    { event: 'put_camera', input: 'config: a string', args: () => [{ camera_id: 'cam', config: 'rtsp://h/x' }], says: /expected a JSON object/ },
    { event: 'put_camera', input: 'config.url: ftp://', args: () => [{ camera_id: 'cam', config: { url: 'ftp://h/x' } }], says: /url: scheme "ftp" is not supported/ },
    { event: 'put_camera', input: 'config.fps: -1', args: () => [{ camera_id: 'cam', config: { ...GOOD, fps: -1 } }], says: /fps/ },
    { event: 'put_camera', input: 'the id "../escape"', args: () => [{ camera_id: '../escape', config: GOOD }], says: /id/ },
    { event: 'put_camera', input: 'the id "__proto__"', args: () => [{ camera_id: '__proto__', config: GOOD }], says: /id/ },
  ]
  describeTable('refusals are {error} acks naming the problem', eventRows, rowName, async (row) => expectRefusal(await call(row.event, row.args()), row), checks)

  test('cameras ← junk arguments: the (empty) list', async () => {
    expect(await call('cameras', [JSON.parse('{"__proto__": {"x": 1}}'), null, UNUSUAL_TEXT.loneSurrogate])).toEqual({ cameras: [] })
  })
})

test('the camera routes the detector serves are the table\'s', () => {
  const served = detector.runtime.app.routes.map((r) => `${r.method} ${r.path}`).filter((route) => route.includes('/cameras'))
  expect(served.sort()).toEqual([...CAMERA_REST_ENTRY_POINTS].sort())
})
