/**
 * Fuzz suite of the detector (issue 11): every REST route and socket.io event of a real detector (built-in face
 * model, CPU) beside a real local loop, fed the inputs of fuzz-inputs.ts. Each refusal must be a 4xx or an
 * `{error}` ack whose message names the problem; after each table the node answers /health, and its outbox and
 * data folder are as they were. Valid requests mixed with bad ones must all get their right answers.
 *
 * Entry points (the tests at the end fail when the node serves one that is not listed here):
 *   REST   GET / · GET /status.json · GET /last_detection.jpg · POST /detect · POST /upload · GET /about
 *          GET|PUT /model_version · GET|PUT /outbox_mode · GET|PUT /operation_mode · POST /reset (backdoor)
 *          generic (every node): GET /health · GET /ready · GET /metrics · PUT /debug_logging · PUT /socketio · GET /openapi.json · GET /docs
 *          ALL /ws/socket.io/* (Engine.IO)
 *   socket detect · batch_detect · upload · info · about · get_model_version · set_model_version_mode
 *          get_outbox_mode · set_outbox_mode
 *   cameras (REST /cameras… and their socket events: camera-entry-points.ts) are fuzzed in detector-cameras.fuzz.test.ts.
 * The model updater's view of the Loop (deployment target, model zips) is fuzzed in detector-loop-answers.fuzz.test.ts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { jpegClaimingSize, pngBomb } from '../support/image-bombs.ts'
import { waitFor } from '../support/temp.ts'
import { startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import {
  API_DOCS_ENTRY_POINTS, apiDocsRows, describeTable, detectorSocketCalls, expectAnswer, expectHealthy, expectRefusal, folderSnapshot, formOf, handledEventsOf, rawRequest, refusalOf, request, routeList, rowName,
  type EventRow, type HttpRow,
} from './fuzz-harness.ts'
import { CAMERA_REST_ENTRY_POINTS, CAMERA_SOCKET_EVENTS } from './camera-entry-points.ts'
import { deepJsonArray, deepJsonObject, INVALID_UTF8, PROTOTYPE_NAMES, UNUSUAL_TEXT } from './fuzz-inputs.ts'

setDefaultTimeout(60_000)

const REST_ENTRY_POINTS = [
  'GET /', 'GET /status.json', 'GET /last_detection.jpg', 'POST /detect', 'POST /upload', 'GET /about', 'GET /model_version', 'PUT /model_version',
  'GET /outbox_mode', 'PUT /outbox_mode', 'GET /operation_mode', 'PUT /operation_mode', 'POST /reset',
  'GET /health', 'GET /ready', 'GET /metrics', 'PUT /debug_logging', 'PUT /socketio', 'ALL /ws/socket.io/*', ...API_DOCS_ENTRY_POINTS,
  ...CAMERA_REST_ENTRY_POINTS,
]
const SOCKET_EVENTS = [
  'detect', 'batch_detect', 'upload', 'info', 'about', 'get_model_version', 'set_model_version_mode', 'get_outbox_mode', 'set_outbox_mode', ...CAMERA_SOCKET_EVENTS,
]

const astronaut = new Uint8Array(await readFile(join(import.meta.dir, '../fixtures/astronaut.jpg')))
const KIB = 1024

let testLoop: TestLoop
let loop: LocalLoop
let detector: DetectorNode
let dataFolder: string
let restoreSink: ((line: string) => void) | undefined

beforeAll(async () => {
  // the suite sends thousands of refused inputs; their warnings are checked elsewhere (wire-limits tests)
  restoreSink = setLogSink(() => undefined)
  testLoop = await startTestLoop()
  loop = testLoop.loop
  dataFolder = join(testLoop.folder, 'detector')
  detector = await startTestDetector(loop.url, dataFolder, { USE_BACKDOOR_CONTROLS: '1' })
  // queued items stay on disk, where a refused input must not have put anything
  expect((await fetch(`${detector.url}/outbox_mode`, { method: 'PUT', body: 'stopped' })).status).toBe(200)
})

afterAll(async () => {
  await detector?.stop()
  await testLoop?.cleanup()
  if (restoreSink) setLogSink(restoreSink)
})

/** The outbox (items and count) and every other file of the data folder. */
const detectorState = async () => ({
  files: await folderSnapshot(dataFolder),
  queued: detector.outbox.count('priority') + detector.outbox.count('normal'),
  mode: detector.outbox.getMode(),
  version_control: detector.updater.mode,
  operation_mode: detector.operationMode,
})
const checks = () => ({ alive: () => expectHealthy(detector.url), state: detectorState })

const file = (bytes: Uint8Array, name = 'image.jpg') => formOf([['file', bytes, name]])
const detect = (path: string, body: FormData | string | Uint8Array, headers: Record<string, string> = {}) =>
  request('POST', path, { body: body as BodyInit, headers })
const put = (path: string, body: string | Uint8Array) => request('PUT', path, { body: body as BodyInit })
/** A multipart request with raw header lines: the astronaut in the field `field`. */
const raw = (path: string, lines: (string | Uint8Array)[], field = 'file') => rawRequest('POST', path, [`Content-Type: multipart/form-data; boundary=b0`, ...lines], Buffer.concat([
  Buffer.from(`--b0\r\nContent-Disposition: form-data; name="${field}"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`), astronaut, Buffer.from('\r\n--b0--\r\n'),
]))
const bytesOf = (text: string) => Buffer.from(text, 'latin1')
const isFace = (text: string) => {
  const body = JSON.parse(text) as { box_detections?: { category_name: string }[] }
  return body.box_detections?.length === 1 && body.box_detections[0]!.category_name === 'face'
}

const detectRows: HttpRow[] = [
  { route: 'POST /detect', input: 'no body, no content type', send: detect('/detect', ''), status: 422, says: /expected multipart\/form-data with a "file" field, got no content type/ },
  { route: 'POST /detect', input: 'a JSON body', send: detect('/detect', '{"file":1}', { 'content-type': 'application/json' }), status: 422, says: /got "application\/json"/ },
  { route: 'POST /detect', input: 'multipart without its final boundary', send: detect('/detect', 'garbage', { 'content-type': 'multipart/form-data; boundary=zz' }), status: 400, says: /malformed multipart body/ },
  { route: 'POST /detect', input: 'multipart without a boundary', send: detect('/detect', 'garbage', { 'content-type': 'multipart/form-data' }), status: 400, says: /malformed multipart body/ },
  { route: 'POST /detect', input: '"file" as a text field', send: detect('/detect', formOf([['file', 'not a file']])), status: 422, says: /field "file" is missing/ },
  ...PROTOTYPE_NAMES.slice(0, 3).map((name): HttpRow => ({ route: 'POST /detect', input: `the image under the field "${name}"`, send: detect('/detect', formOf([[name, astronaut]])), status: 422, says: /field "file" is missing/ })),
  { route: 'POST /detect', input: 'an empty file', send: detect('/detect', file(new Uint8Array(0))), status: 422, says: /image is empty \(0 bytes\)/ },
  { route: 'POST /detect', input: '1000 bytes of garbage', send: detect('/detect', file(new Uint8Array(1000).fill(7))), status: 422, says: /could not decode the image/ },
  { route: 'POST /detect', input: 'a JPEG cut after 2000 bytes', send: detect('/detect', file(astronaut.slice(0, 2000))), status: 422, says: /truncated/ },
  { route: 'POST /detect', input: 'a JPEG claiming 40000×40000 (bomb)', send: detect('/detect', file(jpegClaimingSize(40_000, 40_000))), status: 422, says: /40000×40000 pixels.*pixel budget/ },
  { route: 'POST /detect', input: 'a JPEG claiming 65535×65535 (bomb)', send: detect('/detect', file(jpegClaimingSize(65_535, 65_535))), status: 422, says: /65535×65535 pixels.*pixel budget/ },
  { route: 'POST /detect', input: 'a PNG decoding to 20000×20000 (bomb)', send: detect('/detect', file(pngBomb(20_000, 20_000), 'bomb.png')), status: 422, says: /20000×20000 pixels.*pixel budget/ },
  { route: 'POST /detect', input: 'a JPEG claiming 0×0', send: detect('/detect', file(jpegClaimingSize(0, 0))), status: 422, says: /invalid size 0×0/ },
  { route: 'POST /detect', input: 'autoupload=__proto__ (query)', send: detect('/detect?autoupload=__proto__', file(astronaut)), status: 422, says: /autoupload must be one of filtered, all, disabled, got "__proto__"/ },
  { route: 'POST /detect', input: 'autoupload: constructor (header)', send: detect('/detect', file(astronaut), { autoupload: 'constructor' }), status: 422, says: /autoupload must be one of .*got "constructor"/ },
  { route: 'POST /detect', input: 'autoupload: an RTL mark', send: detect(`/detect?autoupload=${encodeURIComponent(UNUSUAL_TEXT.rtl)}`, file(astronaut)), status: 422, says: /autoupload must be one of/ },
  { route: 'POST /detect', input: 'creation_date=yesterday', send: detect('/detect?creation_date=yesterday', file(astronaut)), status: 422, says: /creation_date must be an ISO 8601 date/ },
  { route: 'POST /detect', input: 'creation_date with a NUL', send: detect(`/detect?creation_date=${encodeURIComponent('2026-01-01\u0000')}`, file(astronaut)), status: 422, says: /creation_date must be an ISO 8601 date/ },
  { route: 'POST /detect', input: 'creation_date 2026-02-30', send: detect('/detect', file(astronaut), { 'creation-date': '2026-02-30' }), status: 422, says: /creation_date must be an ISO 8601 date/ },
  { route: 'POST /detect', input: 'a source header that is not UTF-8', send: raw('/detect', [Buffer.concat([bytesOf('source: '), INVALID_UTF8])]), status: 422, says: /header "source" is not valid UTF-8/ },
  { route: 'POST /detect', input: 'a camera-id header that is not UTF-8', send: raw('/detect', [Buffer.concat([bytesOf('camera-id: '), INVALID_UTF8])]), status: 422, says: /header "camera-id" is not valid UTF-8/ },
  { route: 'POST /detect', input: 'headers of 17 KiB (over 16 KiB)', send: detect('/detect', file(astronaut), { 'x-padding': 'p'.repeat(17 * KIB) }), status: 431, says: /request headers larger than 16384 bytes/ },
  { route: 'POST /detect', input: 'headers of 63 KiB (under Bun\'s 64 KiB)', send: detect('/detect', file(astronaut), { 'x-padding': 'p'.repeat(63 * KIB) }), status: 431, says: /request headers larger than 16384 bytes/ },
  {
    route: 'POST /detect', input: 'headers of 65 KiB (over Bun\'s 64 KiB)', send: detect('/detect', file(astronaut), { 'x-padding': 'p'.repeat(65 * KIB) }), status: 431,
    limitation: 'Bun\'s HTTP parser refuses header blocks over 64 KiB (http.maxHeaderSize, raised to 64 KiB at start) with a bare 431 before any JavaScript runs',
  },
  {
    route: 'POST /detect', input: '200 header lines of 10 bytes', send: detect('/detect', file(astronaut), Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-h${i}`, 'v']))), status: 431,
    limitation: 'Bun\'s HTTP parser holds at most 198 header lines (a compile-time array) and refuses more with a bare 431 before any JavaScript runs',
  },
  { route: 'POST /detect', input: 'a declared body of 200 MiB that never comes', send: rawRequest('POST', '/detect', ['Content-Type: multipart/form-data; boundary=b0'], new Uint8Array(0), 200 * 1024 * 1024), status: 413, says: /request body larger than \d+ bytes/ },
]

const uploadRows: HttpRow[] = [
  { route: 'POST /upload', input: 'no files', send: detect('/upload', formOf([['files', 'text']])), status: 422, says: /field "files" is missing/ },
  { route: 'POST /upload', input: 'a JSON body', send: detect('/upload', '[]', { 'content-type': 'application/json' }), status: 422, says: /expected multipart\/form-data with a "files" field/ },
  { route: 'POST /upload', input: 'a good image and a PNG bomb', send: detect('/upload', formOf([['files', astronaut, 'good.jpg'], ['files', pngBomb(20_000, 20_000), 'bomb.png']])), status: 422, says: /bomb\.png.*20000×20000 pixels.*pixel budget/ },
  { route: 'POST /upload', input: 'garbage named ../../escape.jpg', send: detect('/upload', formOf([['files', new Uint8Array(64).fill(1), '../../escape.jpg']])), status: 422, says: /"\.\.\/\.\.\/escape\.jpg".*could not decode/ },
  { route: 'POST /upload', input: 'garbage named with an RTL mark and emoji', send: detect('/upload', formOf([['files', new Uint8Array(64).fill(1), `${UNUSUAL_TEXT.rtl}${UNUSUAL_TEXT.emoji}.jpg`]])), status: 422, says: /could not decode/ },
  { route: 'POST /upload', input: 'creation_date=__proto__', send: detect('/upload?creation_date=__proto__', formOf([['files', astronaut]])), status: 422, says: /creation_date must be an ISO 8601 date.*"__proto__"/ },
  { route: 'POST /upload', input: 'a source header that is not UTF-8', send: raw('/upload', [Buffer.concat([bytesOf('source: '), INVALID_UTF8])], 'files'), status: 422, says: /header "source" is not valid UTF-8/ },
]

const settingRows: HttpRow[] = [
  ...['../../1.0', '{"version":"1.0"}', '__proto__', 'constructor', '', '1.🙂', 'follow_loop\u0000', '1.0/../..'].map((body): HttpRow => ({
    route: 'PUT /model_version', input: JSON.stringify(body), send: put('/model_version', body), status: 400, says: /Invalid version number/,
  })),
  { route: 'PUT /model_version', input: 'bytes that are not UTF-8', send: put('/model_version', INVALID_UTF8), status: 400, says: /Invalid version number/ },
  { route: 'PUT /model_version', input: '"1.0", a version the Loop does not have', send: put('/model_version', '1.0'), status: 404, says: /No Model with version 1\.0/ },
  { route: 'PUT /model_version', input: '1025 bytes', send: put('/model_version', '1'.repeat(1025)), status: 413, says: /request body larger than 1024 bytes/ },
  ...['__proto__', 'constructor', 'toString', '', '{"mode":"stopped"}', UNUSUAL_TEXT.nul].map((body): HttpRow => ({
    route: 'PUT /outbox_mode', input: JSON.stringify(body), send: put('/outbox_mode', body), status: 422, says: /outbox mode must be one of continuous_upload, stopped/,
  })),
  { route: 'PUT /outbox_mode', input: 'bytes that are not UTF-8', send: put('/outbox_mode', INVALID_UTF8), status: 422, says: /outbox mode must be one of/ },
  { route: 'PUT /outbox_mode', input: '1025 bytes', send: put('/outbox_mode', 's'.repeat(1025)), status: 413, says: /request body larger than 1024 bytes/ },
  ...['constructor', 'toString', '', '["idle"]', UNUSUAL_TEXT.emoji].map((body): HttpRow => ({
    route: 'PUT /operation_mode', input: JSON.stringify(body), send: put('/operation_mode', body), status: 422, says: /operation mode must be one of startup, idle, detecting/,
  })),
  { route: 'PUT /operation_mode', input: 'bytes that are not UTF-8', send: put('/operation_mode', INVALID_UTF8), status: 422, says: /operation mode must be one of/ },
  { route: 'PUT /operation_mode', input: '1025 bytes', send: put('/operation_mode', 'i'.repeat(1025)), status: 413, says: /request body larger than 1024 bytes/ },
  ...['/debug_logging', '/socketio'].flatMap((path) => [
    ...['toString', '["on"]', '', 'ON', '__proto__'].map((body): HttpRow => ({ route: `PUT ${path}`, input: JSON.stringify(body), send: put(path, body), status: 400, says: /Invalid state/ })),
    { route: `PUT ${path}`, input: '2 KiB', send: put(path, 'o'.repeat(2 * KIB)), status: 413, says: /request body larger than 1024 bytes/ } satisfies HttpRow,
  ]),
]

const otherRows: HttpRow[] = [
  { route: '(no route)', input: 'GET /__proto__', send: request('GET', '/__proto__'), status: 404, says: /no route GET "\/__proto__"/ },
  { route: '(no route)', input: 'GET /constructor', send: request('GET', '/constructor'), status: 404, says: /no route GET "\/constructor"/ },
  { route: '(no route)', input: 'POST /about (wrong method)', send: request('POST', '/about'), status: 404, says: /no route POST "\/about"/ },
  { route: '(no route)', input: 'DELETE /outbox_mode', send: request('DELETE', '/outbox_mode'), status: 404, says: /no route DELETE "\/outbox_mode"/ },
  { route: 'ALL /ws/socket.io/*', input: 'Engine.IO protocol version 9', send: request('GET', '/ws/socket.io/?EIO=9&transport=polling'), status: 400, says: /Unsupported protocol version/ },
  { route: 'ALL /ws/socket.io/*', input: 'transport=__proto__', send: request('GET', '/ws/socket.io/?EIO=4&transport=__proto__'), status: 400, says: /Transport unknown/ },
  ...apiDocsRows(PROTOTYPE_NAMES),
  { route: 'ALL /ws/socket.io/*', input: 'a session id nobody has', send: request('POST', '/ws/socket.io/?EIO=4&transport=polling&sid=constructor', { body: '4hello' }), status: 400, says: /Session ID unknown/ },
]

describeTable('POST /detect refuses what it cannot use', detectRows, rowName, async (row) => expectAnswer(await row.send(detector.url), row), checks)
describeTable('POST /upload refuses all or none', uploadRows, rowName, async (row) => expectAnswer(await row.send(detector.url), row), checks)
describeTable('setting routes take one known word', settingRows, rowName, async (row) => expectAnswer(await row.send(detector.url), row), checks)
describeTable('unknown routes and the Engine.IO endpoint', otherRows, rowName, async (row) => expectAnswer(await row.send(detector.url), row), checks)

describe('unusual but valid input gets its right answer', () => {
  const junkQuery = PROTOTYPE_NAMES.map((name) => `${encodeURIComponent(name)}=1`).join('&')
  const readRows: HttpRow[] = [
    { route: 'GET /about', input: 'prototype names as query parameters', send: request('GET', `/about?${junkQuery}`), status: 200, says: /"state":"online"/ },
    { route: 'GET /model_version', input: 'prototype names as header names', send: request('GET', '/model_version', { headers: { constructor: 'x', tostring: 'y', __proto__: 'z' } as unknown as Record<string, string> }), status: 200, says: /"current_version"/ },
    { route: 'GET /outbox_mode', input: 'a 15 KiB header (under the limit)', send: request('GET', '/outbox_mode', { headers: { 'x-padding': 'p'.repeat(15 * KIB) } }), status: 200, says: /^stopped$/ },
    { route: 'GET /operation_mode', input: 'prototype names as query parameters', send: request('GET', `/operation_mode?${junkQuery}`), status: 200, says: /^idle$/ },
    { route: 'GET /status.json', input: 'prototype names as query parameters', send: request('GET', `/status.json?${junkQuery}`), status: 200, says: /"operation_mode":"idle"/ },
    { route: 'GET /', input: 'prototype names as query parameters', send: request('GET', `/?${junkQuery}`), status: 200, says: /<html/i },
    { route: 'GET /health', input: 'a body-less request with junk headers', send: request('GET', '/health', { headers: { 'x-a': UNUSUAL_TEXT.fourByte.length.toString(), 'content-type': 'application/json' } }), status: 200, says: /"status":"ok"/ },
    { route: 'GET /ready', input: 'prototype names as query parameters', send: request('GET', `/ready?${junkQuery}`), status: 200, says: /"ready":true/ },
    { route: 'GET /metrics', input: 'prototype names as query parameters', send: request('GET', `/metrics?${junkQuery}`), status: 200, says: /node_ready 1/ },
  ]
  for (const row of readRows) test(rowName(row), async () => expectAnswer(await row.send(detector.url), row))

  test('POST /detect ← prototype names as query parameters and header names, an 8 KiB camera id: 200 with the face', async () => {
    const answer = await detect(`/detect?${junkQuery}&autoupload=disabled&camera_id=${'c'.repeat(8 * KIB)}`, file(astronaut), { constructor: 'x', hasownproperty: 'y' })(detector.url)
    expect(answer.status).toBe(200)
    expect(isFace(answer.text)).toBe(true)
  })

  test('POST /detect ← tags in RTL, emoji, 4-byte and combining characters, NUL: 200 with the face; the outbox item keeps them exactly', async () => {
    const tags = [UNUSUAL_TEXT.rtl, UNUSUAL_TEXT.emoji, UNUSUAL_TEXT.fourByte, UNUSUAL_TEXT.family, UNUSUAL_TEXT.combining, UNUSUAL_TEXT.nul, '__proto__']
    const answer = await detect(`/detect?autoupload=all&tags=${encodeURIComponent(tags.join(','))}`, file(astronaut))(detector.url)
    expect(answer.status).toBe(200)
    expect(isFace(answer.text)).toBe(true)
    const stored = await waitFor(async () => (await outboxMetadata()).find((m) => (m.tags as string[] | undefined)?.includes('__proto__')), 10_000, 'the outbox item')
    expect(stored.tags).toEqual(tags)
  })

  test('GET /last_detection.jpg ← prototype names as query parameters: 200 with the JPEG of the last detection', async () => {
    const response = await fetch(`${detector.url}/last_detection.jpg?${junkQuery}`)
    expect(response.status).toBe(200)
    expect([...new Uint8Array(await response.arrayBuffer()).slice(0, 2)]).toEqual([0xff, 0xd8])
  })

  test('POST /upload ← a good image named ../../escape.jpg and priority=__proto__: queued inside the outbox under its own id', async () => {
    const before = await folderSnapshot(testLoop.folder)
    const answer = await detect('/upload?upload_priority=__proto__', formOf([['files', astronaut, '../../escape.jpg']]))(detector.url)
    expect({ status: answer.status, text: answer.text }).toEqual({ status: 200, text: '[200,"OK"]' })
    const after = await folderSnapshot(testLoop.folder)
    const added = Object.keys(after).filter((path) => !(path in before) && !path.startsWith('loop/'))
    expect(added).toHaveLength(2)
    for (const path of added) expect(path).toMatch(/^detector\/outbox\/normal\/[^/]+\/image_[^/]+\.(json|jpg)$/)
    expect(added.join()).not.toContain('escape')
  })
})

/** The metadata of every queued outbox item. */
async function outboxMetadata(): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = []
  for (const queue of ['priority', 'normal']) {
    const folder = join(dataFolder, 'outbox', queue)
    for (const id of await readdir(folder).catch(() => [] as string[])) {
      const json = (await readdir(join(folder, id))).find((name) => name.endsWith('.json'))
      if (json) items.push(JSON.parse(await readFile(join(folder, id, json), 'utf8')))
    }
  }
  return items
}

describe('socket.io events', () => {
  const call = detectorSocketCalls(() => detector.url)
  const raw = (bytes: number, dtype = 'uint8', shape: unknown = [10, 1, 3]) => ({ bytes: new Uint8Array(bytes), dtype, shape })

  const eventRows: EventRow[] = [
    ...Object.entries({ 'no argument': [], null: [null], array: [[astronaut]], number: [5], string: ['astronaut.jpg'], 'JSON nested 10 000 deep': [JSON.parse(deepJsonArray())] })
      .map(([input, args]): EventRow => ({ event: 'detect', input, args: () => args, says: /expected an object payload/ })),
    { event: 'detect', input: 'image: null', args: () => [{ image: null }], says: /could not parse image from data: expected \{bytes, dtype, shape\} or encoded JPEG\/PNG bytes/ },
    { event: 'detect', input: 'image: a string', args: () => [{ image: 'abc' }], says: /could not parse image from data/ },
    { event: 'detect', input: '{"__proto__": {"image": …}}', args: () => [JSON.parse('{"__proto__": {"image": 1}}')], says: /could not parse image from data/ },
    { event: 'detect', input: 'a raw frame shorter than its shape', args: () => [{ image: raw(10, 'uint8', [100, 100, 3]) }], says: /needs 30000 bytes, got 10/ },
    { event: 'detect', input: 'a raw frame of dtype __proto__', args: () => [{ image: raw(30, '__proto__') }], says: /unsupported dtype "__proto__"/ },
    { event: 'detect', input: 'a raw frame of 10⁹×10⁹ pixels (bomb)', args: () => [{ image: raw(30, 'uint8', [1e9, 1e9, 3]) }], says: /pixel budget/ },
    { event: 'detect', input: 'a raw frame of four dimensions', args: () => [{ image: raw(30, 'uint8', [1, 10, 1, 3]) }], says: /is not \[height, width\]/ },
    { event: 'detect', input: 'a raw frame with shape ["1","2"]', args: () => [{ image: raw(30, 'uint8', ['10', '1']) }], says: /could not parse image from data/ },
    { event: 'detect', input: 'a JPEG claiming 40000×40000 (bomb)', args: () => [{ image: jpegClaimingSize(40_000, 40_000) }], says: /40000×40000 pixels.*pixel budget/ },
    { event: 'detect', input: 'a PNG decoding to 20000×20000 (bomb)', args: () => [{ image: pngBomb(20_000, 20_000) }], says: /20000×20000 pixels.*pixel budget/ },
    { event: 'detect', input: 'autoupload: __proto__', args: () => [{ image: astronaut, autoupload: '__proto__' }], says: /autoupload must be one of filtered, all, disabled, got "__proto__"/ },
    { event: 'detect', input: 'tags: an object', args: () => [{ image: astronaut, tags: { 0: 'a' } }], says: /tags must be a list of strings/ },
    { event: 'detect', input: 'tags: [1, null]', args: () => [{ image: astronaut, tags: [1, null] }], says: /tags must be a list of strings/ },
    { event: 'detect', input: 'creation_date: yesterday', args: () => [{ image: astronaut, creation_date: 'yesterday', autoupload: 'all' }], says: /creation_date must be an ISO 8601 date.*"yesterday"/ },
    { event: 'batch_detect', input: 'images: []', args: () => [{ images: [] }], says: /expected a non-empty list "images"/ },
    { event: 'batch_detect', input: 'images: {length: 3}', args: () => [{ images: { length: 3 } }], says: /expected a non-empty list "images"/ },
    { event: 'batch_detect', input: 'a good image and a string', args: () => [{ images: [astronaut, 'x'] }], says: /could not parse image from data/ },
    { event: 'batch_detect', input: 'a good image and a JPEG bomb', args: () => [{ images: [astronaut, jpegClaimingSize(40_000, 40_000)], autoupload: 'all' }], says: /pixel budget/ },
    { event: 'batch_detect', input: 'null', args: () => [null], says: /expected an object payload/ },
    { event: 'upload', input: 'null', args: () => [null], says: /expected an object payload/ },
    { event: 'upload', input: 'metadata: [1]', args: () => [{ image: astronaut, metadata: [1] }], says: /expected an object payload/ },
    { event: 'upload', input: 'metadata.tags: a string', args: () => [{ image: astronaut, metadata: { tags: 'x' } }], says: /\/tags: expected array/ },
    { event: 'upload', input: 'metadata.creation_date: 5 o\'clock', args: () => [{ image: astronaut, metadata: { creation_date: "5 o'clock" } }], says: /creation_date must be an ISO 8601 date/ },
    { event: 'upload', input: 'metadata.created: not a date', args: () => [{ image: astronaut, metadata: { created: 'not a date' } }], says: /created must be an ISO 8601 date/ },
    { event: 'upload', input: 'a PNG bomb', args: () => [{ image: pngBomb(20_000, 20_000) }], says: /pixel budget/ },
    { event: 'set_model_version_mode', input: 'an object', args: () => [{ version: '1.0' }], says: /expected a string: follow_loop, pause or a version/ },
    { event: 'set_model_version_mode', input: 'null', args: () => [null], says: /expected a string/ },
    { event: 'set_model_version_mode', input: '"../../1.0"', args: () => ['../../1.0'], says: /Invalid version number "\.\.\/\.\.\/1\.0"/ },
    { event: 'set_model_version_mode', input: 'a 10 MB string', args: () => ['9'.repeat(10_000_000) + 'x'], says: /Invalid version number "9{99}/ },
    { event: 'set_outbox_mode', input: '__proto__', args: () => ['__proto__'], says: /outbox mode must be one of continuous_upload, stopped, got "__proto__"/ },
    { event: 'set_outbox_mode', input: '5', args: () => [5], says: /expected a string: continuous_upload or stopped/ },
    { event: 'set_outbox_mode', input: 'a lone surrogate', args: () => [UNUSUAL_TEXT.loneSurrogate], says: /outbox mode must be one of/ },
    ...[...PROTOTYPE_NAMES, UNUSUAL_TEXT.emoji, UNUSUAL_TEXT.nul, 'e'.repeat(10_000), 'Detect', ' detect'].map((event): EventRow => ({
      event, input: 'an unknown event', args: () => [{ image: astronaut }], says: /^unknown event ".*; this detector handles /,
    })),
  ]
  describeTable('refusals are {error} acks naming the problem', eventRows, (row) => `${row.event.length > 30 ? `${row.event.slice(0, 12)}… (${row.event.length} characters)` : JSON.stringify(row.event)} ← ${row.input}`,
    async (row) => expectRefusal(await call(row.event, row.args()), row), checks)

  describe('unusual but valid input gets its right answer', () => {
    test('info, about, get_model_version and get_outbox_mode ignore junk arguments', async () => {
      const junk = [JSON.parse('{"__proto__": {"x": 1}}'), null, [1, 2], UNUSUAL_TEXT.loneSurrogate]
      expect(await call('info', junk)).toMatchObject({ id: 'builtin-blazeface-1' })
      expect(await call('about', junk)).toMatchObject({ state: 'online', operation_mode: 'idle' })
      expect(await call('get_model_version', junk)).toMatchObject({ current_version: 'builtin-blazeface-1' })
      expect(await call('get_outbox_mode', junk)).toEqual({ outbox_mode: 'stopped' })
    })

    test('detect ← prototype keys beside the image, camera_id 5: the face; unicode tags kept exactly in the outbox', async () => {
      const payload = JSON.parse('{"__proto__": {"autoupload": "x"}, "constructor": 1, "toString": 2, "camera_id": 5}') as Record<string, unknown>
      const tags = [UNUSUAL_TEXT.loneSurrogate, UNUSUAL_TEXT.bom, UNUSUAL_TEXT.family, 'hasOwnProperty']
      const answer = (await call('detect', [{ ...payload, image: astronaut, autoupload: 'all', tags }])) as { box_detections: { category_name: string }[] }
      expect(answer.box_detections.map((d) => d.category_name)).toEqual(['face'])
      const stored = await waitFor(async () => (await outboxMetadata()).find((m) => (m.tags as string[] | undefined)?.includes('hasOwnProperty')), 10_000, 'the outbox item')
      expect(stored.tags).toEqual(tags)
    })

    test('batch_detect of three images with prototype-named extra keys: three answers with the face', async () => {
      const answer = (await call('batch_detect', [{ images: [astronaut, astronaut, astronaut], autoupload: 'disabled', __defineGetter__: 1 }])) as { items: { box_detections: unknown[] }[] }
      expect(answer.items.map((item) => item.box_detections.length)).toEqual([1, 1, 1])
    })
  })

  test('the events the detector handles are the table\'s (an unknown event\'s answer lists them)', async () => {
    const answer = refusalOf(await call('no such event', []))!
    expect(handledEventsOf(answer)).toEqual([...SOCKET_EVENTS].sort())
  })

  test('concurrency: 10 valid and 10 bad detect events interleaved on one socket all get their right answers', async () => {
    const bad = [{ image: 'x' }, { image: jpegClaimingSize(40_000, 40_000) }, { image: astronaut, autoupload: 'no' }, null, { image: new Uint8Array(0) }]
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => i % 2 === 0
      ? call('detect', [{ image: astronaut, autoupload: 'disabled' }]).then((a) => ({ valid: true, a }))
      : call('detect', [bad[(i >> 1) % bad.length]]).then((a) => ({ valid: false, a }))))
    for (const { valid, a } of answers) {
      if (valid) expect((a as { box_detections: { category_name: string }[] }).box_detections.map((d) => d.category_name)).toEqual(['face'])
      else expect(refusalOf(a)).toBeString()
    }
  })
})

test('concurrency: 20 valid and 20 bad /detect requests interleaved all get their right answers', async () => {
  const queuedBefore = detector.outbox.count('priority') + detector.outbox.count('normal')
  const bad: (() => Promise<{ status: number; text: string }>)[] = [
    () => detect('/detect', file(jpegClaimingSize(40_000, 40_000)))(detector.url),
    () => detect('/detect', file(new Uint8Array(500).fill(3)))(detector.url),
    () => detect('/detect?autoupload=constructor', file(astronaut))(detector.url),
    () => detect('/detect', file(pngBomb(20_000, 20_000), 'b.png'))(detector.url),
    () => detect('/detect', formOf([['__proto__', astronaut]]))(detector.url),
  ]
  const requests = Array.from({ length: 40 }, (_, i) => i % 2 === 0
    ? detect('/detect?autoupload=disabled', file(astronaut))(detector.url).then((a) => ({ valid: true, a }))
    : bad[(i >> 1) % bad.length]!().then((a) => ({ valid: false, a })))
  const answers = await Promise.all(requests)
  const valid = answers.filter((x) => x.valid)
  expect(valid.map((x) => x.a.status)).toEqual(Array(20).fill(200))
  for (const { a } of valid) expect(isFace(a.text)).toBe(true)
  expect(answers.filter((x) => !x.valid).map((x) => x.a.status)).toEqual(Array(20).fill(422))
  expect(detector.outbox.count('priority') + detector.outbox.count('normal')).toBe(queuedBefore)
  await expectHealthy(detector.url)
})

describe('the table at the top covers every entry point', () => {
  test('the REST routes the detector serves are the table\'s', () => {
    expect(routeList(detector.runtime.app)).toEqual([...REST_ENTRY_POINTS].sort())
  })
  test('every REST entry point but POST /reset has rows (the backdoor reset takes no input; see the last test)', () => {
    const covered = new Set([...detectRows, ...uploadRows, ...settingRows, ...otherRows].map((row) => row.route).concat(CAMERA_REST_ENTRY_POINTS))
    const read = ['GET /about', 'GET /model_version', 'GET /outbox_mode', 'GET /operation_mode', 'GET /status.json', 'GET /', 'GET /health', 'GET /ready', 'GET /metrics', 'GET /last_detection.jpg']
    for (const route of read) covered.add(route)
    expect(REST_ENTRY_POINTS.filter((route) => !covered.has(route))).toEqual(['POST /reset'])
  })
})

test('POST /reset (backdoor) ← a JSON body with __proto__ and junk query: it ignores them, wipes the outbox, and the node detects afterwards', async () => {
  const answer = await request('POST', '/reset?__proto__=1&constructor=2', { headers: { 'content-type': 'application/json' }, body: '{"__proto__": {"x": 1}}' })(detector.url)
  expect({ status: answer.status, text: answer.text }).toEqual({ status: 200, text: 'true' })
  expect(detector.outbox.count('priority') + detector.outbox.count('normal')).toBe(0)
  const after = await detect('/detect?autoupload=disabled', file(astronaut))(detector.url)
  expect(isFace(after.text)).toBe(true)
  await expectHealthy(detector.url)
})
