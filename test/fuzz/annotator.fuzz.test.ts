/**
 * Fuzz suite of the annotator (issue 11): the Loop → annotator socket events of a real AnnotatorNode (box
 * segmentation in-process) connected to a real local loop, and the node's REST routes, fed the inputs of
 * fuzz-inputs.ts. Refusals are failed acks naming the problem; after each table the node answers /health, holds no
 * session for a refused input and its data folder holds the same files. A drag from one user interleaved with bad
 * input from others still gets its outline.
 *
 * Entry points (the tests at the end fail when the node serves one that is not listed here):
 *   socket (from the Loop)  handle_user_input(user_input) · user_logout(frontend_id) · restart (exits the node; no input)
 *   REST                    generic: GET /health · GET /ready · GET /metrics · PUT /debug_logging · PUT /socketio · GET /openapi.json · GET /docs
 *   what the Loop sends     the photo of an image (GET …/images/{id}/main), decoded by the tool
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { writeFile } from 'node:fs/promises'
import { setLogSink } from '../../src/foundation/log.ts'
import { annotatorSelector, COFFEE_PATH, ORG, PROJECT, startAnnotator, userInput, type AnnotatorFixture } from '../annotator/annotator-fixture.ts'
import { jpegClaimingSize, pngBomb } from '../support/image-bombs.ts'
import {
  API_DOCS_ENTRY_POINTS, apiDocsRows, describeTable, expectAnswer, expectHealthy, expectRefusal, folderSnapshot, handledEventsOf, refusalOf, request, routeList, rowName, type EventRow, type HttpRow,
} from './fuzz-harness.ts'
import { deepJsonObject, PROTOTYPE_NAMES, TRAVERSAL_NAMES, UNUSUAL_TEXT } from './fuzz-inputs.ts'

setDefaultTimeout(60_000)

const REST_ENTRY_POINTS = ['GET /health', 'GET /ready', 'GET /metrics', 'PUT /debug_logging', 'PUT /socketio', ...API_DOCS_ENTRY_POINTS]
const LOOP_EVENTS = ['handle_user_input', 'user_logout', 'restart']

let f: AnnotatorFixture
let restoreSink: ((line: string) => void) | undefined

beforeAll(async () => {
  restoreSink = setLogSink(() => undefined)
  f = await startAnnotator()
  // the photo is cached before the tables, so what they compare is what refused input would have added
  expect(await emit('handle_user_input', [userInput('warm-up', 'mouse_move', 10, 10)])).toMatchObject({ success: true })
  expect(await emit('handle_user_input', [userInput('warm-up', 'key_up', 0, 0, { key_up: 'Escape' })])).toMatchObject({ success: true })
})
afterAll(async () => {
  await f?.cleanup()
  if (restoreSink) setLogSink(restoreSink)
})

const emit = (event: string, args: unknown[]) => f.loop.emit(annotatorSelector, event, args, { timeoutMs: 20_000 })
const annotatorState = async () => ({ files: await folderSnapshot(f.dataFolder), sessions: f.node.sessions.size })
const checks = () => ({
  alive: async () => {
    await expectHealthy(f.node.runtime.url)
    expect(f.node.connection.connected).toBe(true)
  },
  state: annotatorState,
})

/** A user input with `data` fields replaced (a key set to undefined is left out). */
const input = (data: Record<string, unknown>, top: Record<string, unknown> = {}) => {
  const base = userInput('fuzz', 'left_mouse_down', 100, 100) as { frontend_id: string; data: Record<string, unknown> }
  return JSON.parse(JSON.stringify({ ...base, ...top, data: { ...base.data, ...data } }))
}

const eventRows: EventRow[] = [
  ...Object.entries({ 'no argument': [], null: [null], array: [[input({})]], number: [5], string: ['left_mouse_down'] }).map(([what, args]): EventRow => ({
    event: 'handle_user_input', input: what, args: () => args, says: /invalid UserInput: \(root\)/,
  })),
  { event: 'handle_user_input', input: 'JSON nested 10 000 deep', args: () => [JSON.parse(deepJsonObject())], says: /invalid UserInput: \/frontend_id: required field is missing/ },
  { event: 'handle_user_input', input: '{"__proto__": {frontend_id, data}}', args: () => [JSON.parse(`{"__proto__": ${JSON.stringify(input({}))}}`)], says: /\/frontend_id: required field is missing/ },
  { event: 'handle_user_input', input: 'frontend_id: 5', args: () => [input({}, { frontend_id: 5 })], says: /\/frontend_id: expected string/ },
  { event: 'handle_user_input', input: 'coordinate x: "10"', args: () => [input({ coordinate: { x: '10', y: 1 } })], says: /\/data\/coordinate\/x: expected number/ },
  { event: 'handle_user_input', input: 'coordinate: null', args: () => [input({ coordinate: null })], says: /\/data\/coordinate/ },
  { event: 'handle_user_input', input: 'a click at (1e300, -1e300)', args: () => [input({ coordinate: { x: 1e300, y: -1e300 } })], says: /lies outside the 600×400 image/ },
  ...[...PROTOTYPE_NAMES.slice(0, 3), 'double_click', UNUSUAL_TEXT.emoji, 'e'.repeat(10_000)].map((type): EventRow => ({
    event: 'handle_user_input', input: `event_type ${JSON.stringify(type.length > 20 ? `${type.slice(0, 10)}…` : type)}`, args: () => [input({ event_type: type })], says: /unknown event_type ".*"( \(\d+ characters\))?; expected one of left_mouse_down/,
  })),
  { event: 'handle_user_input', input: 'category: 5', args: () => [input({ category: 5 })], says: /\/data\/category: expected object/ },
  { event: 'handle_user_input', input: 'context: []', args: () => [input({ context: [] })], says: /\/data\/context/ },
  ...[...TRAVERSAL_NAMES, UNUSUAL_TEXT.rtl, UNUSUAL_TEXT.fourByte, 'p'.repeat(300)].map((organization): EventRow => ({
    event: 'handle_user_input', input: `organization ${JSON.stringify(organization.length > 20 ? `${organization.slice(0, 10)}…` : organization)}`,
    args: () => [input({ context: { organization, project: PROJECT } })], says: /organization ".*"( \(\d+ characters\))? is not a plain name/,
  })),
  ...['..', '../../loop', UNUSUAL_TEXT.nul].map((project): EventRow => ({
    event: 'handle_user_input', input: `project ${JSON.stringify(project)}`, args: () => [input({ context: { organization: ORG, project } })], says: /project ".*" is not a plain name/,
  })),
  ...['../../../loop/loop.sqlite', '__proto__', 'constructor', UNUSUAL_TEXT.emoji, 'no-such-image'].map((id): EventRow => ({
    event: 'handle_user_input', input: `image_uuid ${JSON.stringify(id)}`, args: () => [input({ image_uuid: id })], says: /image .* does not exist in zauberzeug\/pytest_nodelib_annotator/,
  })),
  { event: 'handle_user_input', input: 'a project of the Loop that does not exist', args: () => [input({ context: { organization: ORG, project: 'nope' } })], says: /does not exist in zauberzeug\/nope/ },
  ...Object.entries({ 'a number': 5, null: null, 'an object': { sid: 'x' }, 'no argument': undefined }).map(([what, sid]): EventRow => ({
    event: 'user_logout', input: what, args: () => (sid === undefined ? [] : [sid]), says: /user_logout expects the frontend id as a string/,
  })),
  ...[...PROTOTYPE_NAMES, UNUSUAL_TEXT.emoji, 'handle_User_input', 'h'.repeat(10_000)].map((event): EventRow => ({
    event, input: 'an unknown event', args: () => [input({})], says: /^unknown event ".*; this node handles /,
  })),
]
describeTable('Loop → annotator events: refusals are failed acks naming the problem', eventRows,
  (row) => `${row.event.length > 30 ? `${row.event.slice(0, 12)}…` : JSON.stringify(row.event)} ← ${row.input}`,
  async (row) => expectRefusal(await emit(row.event, row.args()), row), checks)

const restRows: HttpRow[] = [
  ...['/debug_logging', '/socketio'].flatMap((path): HttpRow[] => [
    ...['toString', '{"state":"on"}', ''].map((body): HttpRow => ({ route: `PUT ${path}`, input: JSON.stringify(body), send: request('PUT', path, { body }), status: 400, says: /Invalid state/ })),
    { route: `PUT ${path}`, input: '2 KiB', send: request('PUT', path, { body: 'o'.repeat(2048) }), status: 413, says: /request body larger than 1024 bytes/ },
  ]),
  { route: 'GET /health', input: 'headers of 17 KiB', send: request('GET', '/health', { headers: { 'x-padding': 'p'.repeat(17 * 1024) } }), status: 431, says: /request headers larger than 16384 bytes/ },
  { route: 'GET /ready', input: 'prototype names as query parameters', send: request('GET', `/ready?${PROTOTYPE_NAMES.map((n) => `${n}=1`).join('&')}`), status: 200, says: /"ready":true/ },
  { route: 'GET /metrics', input: 'prototype names as header names', send: request('GET', '/metrics', { headers: { constructor: '1' } }), status: 200, says: /lln_node_ready 1/ },
  ...apiDocsRows(PROTOTYPE_NAMES),
  { route: '(no route)', input: 'POST /handle_user_input', send: request('POST', '/handle_user_input', { body: '{}' }), status: 404, says: /no route POST "\/handle_user_input"/ },
]
describeTable('REST routes', restRows, rowName, async (row) => expectAnswer(await row.send(f.node.runtime.url), row), checks)

describe('unusual but valid input gets its right answer', () => {
  test('frontend ids named __proto__, constructor, with RTL marks and emoji each get a session of their own, and logout frees them', async () => {
    const ids = ['__proto__', 'constructor', 'hasOwnProperty', `${UNUSUAL_TEXT.rtl}${UNUSUAL_TEXT.family}`, UNUSUAL_TEXT.loneSurrogate]
    const before = f.node.sessions.size
    for (const id of ids) expect(await emit('handle_user_input', [userInput(id, 'left_mouse_down', 100, 100)])).toEqual({ success: true, error_msg: null, payload: expect.any(String) })
    expect(f.node.sessions.size).toBe(before + ids.length)
    for (const id of ids) expect(await emit('user_logout', [id])).toEqual({ success: true, error_msg: null, payload: null })
    expect(f.node.sessions.size).toBe(before)
  })

  test('user_logout of a frontend nobody knows (toString) is acknowledged and changes nothing', async () => {
    expect(await emit('user_logout', ['toString'])).toEqual({ success: true, error_msg: null, payload: null })
  })

  test('concurrency: a drag of one user interleaved with bad input of five others still ends in an outline', async () => {
    const drag = async () => {
      const acks = [await emit('handle_user_input', [userInput('dragger', 'left_mouse_down', 70, 10)])]
      for (let step = 1; step <= 3; step++) acks.push(await emit('handle_user_input', [userInput('dragger', 'mouse_move', 70 + 100 * step, 10 + 100 * step)]))
      acks.push(await emit('handle_user_input', [userInput('dragger', 'left_mouse_up', 485, 393)]))
      return acks
    }
    const bad = Array.from({ length: 5 }, (_, i) => Array.from({ length: 4 }, () => [
      input({ image_uuid: '__proto__' }, { frontend_id: `bad-${i}` }), input({ event_type: 'constructor' }, { frontend_id: `bad-${i}` }),
      input({ context: { organization: '..', project: PROJECT } }, { frontend_id: `bad-${i}` }), null,
    ]).flat())
    const [acks, ...refusals] = await Promise.all([drag(), ...bad.map((inputs) => Promise.all(inputs.map((value) => emit('handle_user_input', [value]))))])
    for (const ack of acks!) expect(ack).toMatchObject({ success: true, error_msg: null })
    expect((acks!.at(-1) as { payload: string }).payload).toContain('<polygon points="')
    for (const ack of refusals.flat()) expect(refusalOf(ack)).toBeString()
    expect(await emit('user_logout', ['dragger'])).toMatchObject({ success: true })
  })
})

describe('photos that are decompression bombs', () => {
  test('a JPEG claiming 40000×40000 and a PNG bomb as the Loop\'s photo: refused naming the pixel budget, no session left, the node keeps serving', async () => {
    const coffee = await Bun.file(COFFEE_PATH).bytes()
    for (const [id, bomb] of [['bomb-jpeg', jpegClaimingSize(40_000, 40_000)], ['bomb-png', pngBomb(20_000, 20_000)]] as const) {
      await f.loop.addImage(ORG, PROJECT, { id, jpeg: coffee })
      await writeFile(f.loop.store.images.path(f.loop.store.images.get(ORG, PROJECT, id)!), bomb)
      const sessions = f.node.sessions.size
      for (const type of ['left_mouse_down', 'left_mouse_up']) {
        const ack = await emit('handle_user_input', [userInput(`bomb-${id}`, type, 10, 10, {}, id)])
        expect(refusalOf(ack)).toMatch(/pixels \(\d+\.\d MP\), more than the pixel budget of 50000000/)
      }
      expect(f.node.sessions.size).toBe(sessions)
    }
    expect(await emit('handle_user_input', [userInput('after-bombs', 'left_mouse_down', 100, 100)])).toMatchObject({ success: true })
    await expectHealthy(f.node.runtime.url)
  })
})

describe('the table at the top covers every entry point', () => {
  test('the REST routes the annotator serves are the table\'s, and each has rows', () => {
    expect(routeList(f.node.runtime.app)).toEqual([...REST_ENTRY_POINTS].sort())
    const covered = new Set(restRows.map((row) => row.route))
    expect(REST_ENTRY_POINTS.filter((route) => !covered.has(route))).toEqual([])
  })
  test('the Loop events the annotator handles are the table\'s (an unknown event\'s answer lists them)', async () => {
    expect(handledEventsOf(refusalOf(await emit('no such event', []))!)).toEqual([...LOOP_EVENTS].sort())
  })
})
