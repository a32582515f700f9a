/**
 * Fuzz suite of the trainer (issue 11): the Loop → trainer socket events and the node's REST routes of a real
 * TrainerNode (testing trainer) beside a real local loop, fed the inputs of fuzz-inputs.ts; and training data that
 * is a decompression bomb. Refusals are failed acks / 4xx naming the problem; after each table the node answers
 * /health, stays idle, and its data folder holds the same files. A training named with odd ids stays inside the
 * data folder.
 *
 * Entry points (the tests at the end fail when the node serves one that is not listed here):
 *   socket (from the Loop)  begin_training(organization, project, details) · stop_training · abort_training
 *                           restart (exits the node; it takes no input)
 *   REST                    generic: GET /health · GET /ready · GET /metrics · PUT /debug_logging · PUT /socketio · GET /openapi.json · GET /docs
 *                           backdoor: POST /reset · POST /kill_training_process · POST /force_status_update
 *   what the Loop sends     the training images (the downloader's check, jpeg-check.ts)
 * Model zips a trainer downloads (base models) go through the same extractor as the converter's: see converter.fuzz.test.ts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import type { TrainerNode } from '../../src/trainer/trainer-node.ts'
import { jpegClaimingSize, pngBomb } from '../support/image-bombs.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { startTrainer } from '../trainer/trainer-node-fixture.ts'
import {
  API_DOCS_ENTRY_POINTS, apiDocsRows, describeTable, expectAnswer, expectHealthy, expectRefusal, folderSnapshot, handledEventsOf, refusalOf, request, routeList, rowName,
  type EventRow, type HttpRow,
} from './fuzz-harness.ts'
import { deepJsonArray, deepJsonObject, PROTOTYPE_NAMES, TRAVERSAL_NAMES, UNUSUAL_TEXT } from './fuzz-inputs.ts'

setDefaultTimeout(60_000)

const REST_ENTRY_POINTS = ['GET /health', 'GET /ready', 'GET /metrics', 'PUT /debug_logging', 'PUT /socketio', ...API_DOCS_ENTRY_POINTS, 'POST /reset', 'POST /kill_training_process', 'POST /force_status_update']
const LOOP_EVENTS = ['begin_training', 'stop_training', 'abort_training', 'restart']

let testLoop: TestLoop
let loop: LocalLoop
let node: TrainerNode
let dataFolder: string
let restoreSink: ((line: string) => void) | undefined

beforeAll(async () => {
  restoreSink = setLogSink(() => undefined)
  testLoop = await startTestLoop()
  loop = testLoop.loop
  await loop.createProject('local', { project_name: 'fuzz', complete: 2, box_categories: 1 })
  dataFolder = join(testLoop.folder, 'trainer')
  node = (await startTrainer(loop, dataFolder, { USE_BACKDOOR_CONTROLS: '1' })).node
})
afterAll(async () => {
  await node?.stop()
  await testLoop?.cleanup()
  if (restoreSink) setLogSink(restoreSink)
})

/** The trainer's files (its log rotates while it runs: left out) and where it stands; the Loop's trainings. */
const trainerState = async () => ({
  files: await folderSnapshot(testLoop.folder, (path) => path.startsWith('loop/') || path.endsWith('.log')),
  state: node.supervisor.status().state,
  trainings: loop.trainings('local', 'fuzz').length,
})
const checks = () => ({
  alive: async () => {
    await expectHealthy(node.url)
    expect(node.loop.connected).toBe(true)
  },
  state: trainerState,
})

const emit = (event: string, args: unknown[]) => loop.emit(node.uuid, event, args, { timeoutMs: 10_000 })
const category = { id: 'c1', name: 'thing', description: null, hotkey: null, color: '#ff0000', point_size: null, type: 'box' }
const details = { categories: [category], hyperparameters: { epochs: 1, epoch_ms: 10 }, training_number: 1, model_variant: 'small' }
const withDetails = (change: Record<string, unknown>) => ['local', 'fuzz', { ...details, ...change }]

const beginRows: EventRow[] = [
  { event: 'begin_training', input: 'no arguments', args: () => [], says: /organization missing or not a str/ },
  ...Object.entries({ number: 5, null: null, empty: '', array: ['local'] }).map(([what, organization]): EventRow => ({
    event: 'begin_training', input: `organization: ${what}`, args: () => [organization, 'fuzz', details], says: /organization missing or not a str/,
  })),
  ...[...TRAVERSAL_NAMES, UNUSUAL_TEXT.rtl, UNUSUAL_TEXT.emoji, UNUSUAL_TEXT.fourByte, '.hidden'].map((organization): EventRow => ({
    event: 'begin_training', input: `organization ${JSON.stringify(organization)}`, args: () => [organization, 'fuzz', details], says: /organization ".*" is not usable as a folder name/,
  })),
  ...['../escape', '/tmp/lln-fuzz-absolute', UNUSUAL_TEXT.nul].map((project): EventRow => ({
    event: 'begin_training', input: `project ${JSON.stringify(project)}`, args: () => ['local', project, details], says: /project ".*" is not usable as a folder name/,
  })),
  { event: 'begin_training', input: 'project: 5', args: () => ['local', 5, details], says: /project missing or not a str/ },
  ...Object.entries({ 'no details': undefined, null: null, 'an array': [details], 'a string': 'details', 'a number': 1 }).map(([what, value]): EventRow => ({
    event: 'begin_training', input: `details: ${what}`, args: () => (value === undefined ? ['local', 'fuzz'] : ['local', 'fuzz', value]), says: /details missing or not a dict/,
  })),
  { event: 'begin_training', input: 'details nested 10 000 deep', args: () => ['local', 'fuzz', JSON.parse(deepJsonObject())], says: /categories missing or not a list/ },
  { event: 'begin_training', input: 'categories: "x"', args: () => withDetails({ categories: 'x' }), says: /categories missing or not a list/ },
  { event: 'begin_training', input: 'categories nested 10 000 deep', args: () => withDetails({ categories: JSON.parse(deepJsonArray()) }), says: /\/categories\/0/ },
  { event: 'begin_training', input: 'a category of wrong types', args: () => withDetails({ categories: [{ id: 5 }] }), says: /\/categories\/0\/id: expected string/ },
  { event: 'begin_training', input: 'training_number "1"', args: () => withDetails({ training_number: '1' }), says: /training_number missing or not a int/ },
  { event: 'begin_training', input: 'training_number 1.5', args: () => withDetails({ training_number: 1.5 }), says: /training_number missing or not a int/ },
  { event: 'begin_training', input: 'training_number -1', args: () => withDetails({ training_number: -1 }), says: /training_number must be a non-negative integer, got -1/ },
  { event: 'begin_training', input: 'hyperparameters: []', args: () => withDetails({ hyperparameters: [] }), says: /hyperparameters missing or not a dict/ },
  { event: 'begin_training', input: 'hyperparameters: "epochs=1"', args: () => withDetails({ hyperparameters: 'epochs=1' }), says: /hyperparameters missing or not a dict/ },
  { event: 'begin_training', input: 'model_variant: 5', args: () => withDetails({ model_variant: 5 }), says: /model_variant missing or not a str/ },
  { event: 'begin_training', input: 'base_model_uuid: 5', args: () => withDetails({ base_model_uuid: 5 }), says: /base_model_uuid/ },
  ...[...PROTOTYPE_NAMES, UNUSUAL_TEXT.emoji, UNUSUAL_TEXT.nul, 'b'.repeat(10_000), 'Begin_Training'].map((event): EventRow => ({
    event, input: 'an unknown event', args: () => withDetails({}), says: /^unknown event ".*; this node handles /,
  })),
]
describeTable('Loop → trainer events: refusals are failed acks naming the problem; no training starts', beginRows,
  (row) => `${row.event.length > 30 ? `${row.event.slice(0, 12)}…` : JSON.stringify(row.event)} ← ${row.input}`,
  async (row) => expectRefusal(await emit(row.event, row.args()), row), checks)

const idleRows: EventRow[] = [
  ...['stop_training', 'abort_training'].flatMap((event) => Object.entries({ 'no arguments': [], 'junk arguments': [{ __proto__: 1 }, null, '../..'], 'a 1 MB string': ['s'.repeat(1_000_000)] })
    .map(([input, args]): EventRow => ({ event, input: `${input}, no training`, args: () => args, says: /^$/ }))),
]
describeTable('stop_training and abort_training without a training: acknowledged, nothing changes', idleRows, rowName,
  async (row) => expect(await emit(row.event, row.args())).toEqual({ success: true, error_msg: null, payload: null }), checks)

const restRows: HttpRow[] = [
  { route: 'POST /kill_training_process', input: 'no training, a JSON body with __proto__', send: request('POST', '/kill_training_process', { body: '{"__proto__": {"x": 1}}', headers: { 'content-type': 'application/json' } }), status: 409, says: /trainer is not running/ },
  { route: 'POST /force_status_update', input: 'a 10 KB body and prototype query names', send: request('POST', `/force_status_update?${PROTOTYPE_NAMES.map((n) => `${n}=1`).join('&')}`, { body: 'x'.repeat(10_000) }), status: 200, says: /"sent":true/ },
  { route: 'POST /reset', input: 'no training, a JSON body with __proto__', send: request('POST', '/reset?constructor=1', { body: '{"__proto__": {"x": 1}}', headers: { 'content-type': 'application/json' } }), status: 200, says: /"status":"reset"/ },
  { route: '(no route)', input: 'GET /reset', send: request('GET', '/reset'), status: 404, says: /no route GET "\/reset"/ },
  { route: '(no route)', input: 'POST /__proto__', send: request('POST', '/__proto__'), status: 404, says: /no route POST "\/__proto__"/ },
  ...['/debug_logging', '/socketio'].flatMap((path): HttpRow[] => [
    ...['toString', '["on"]', '', 'true'].map((body): HttpRow => ({ route: `PUT ${path}`, input: JSON.stringify(body), send: request('PUT', path, { body }), status: 400, says: /Invalid state/ })),
    { route: `PUT ${path}`, input: '2 KiB', send: request('PUT', path, { body: 'o'.repeat(2048) }), status: 413, says: /request body larger than 1024 bytes/ },
  ]),
  { route: 'GET /health', input: 'headers of 17 KiB', send: request('GET', '/health', { headers: { 'x-padding': 'p'.repeat(17 * 1024) } }), status: 431, says: /request headers larger than 16384 bytes/ },
  { route: 'GET /health', input: '200 header lines', send: request('GET', '/health', { headers: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-h${i}`, 'v'])) }), status: 431, limitation: 'Bun\'s HTTP parser holds at most 198 header lines and refuses more with a bare 431 before any JavaScript runs' },
  { route: 'GET /ready', input: 'prototype names as query parameters', send: request('GET', `/ready?${PROTOTYPE_NAMES.map((n) => `${n}=1`).join('&')}`), status: 200, says: /"ready":true/ },
  { route: 'GET /metrics', input: 'prototype names as header names', send: request('GET', '/metrics', { headers: { constructor: '1', tostring: '2' } }), status: 200, says: /lln_node_ready 1/ },
  ...apiDocsRows(PROTOTYPE_NAMES),
]
describeTable('REST routes (generic and backdoor)', restRows, rowName, async (row) => expectAnswer(await row.send(node.url), row), checks)

describe('odd but valid trainings stay inside the data folder', () => {
  /** Begins a training, checks where it lives, aborts it; returns the training's folder. */
  async function beginAndAbort(args: unknown[], check: (training: NonNullable<TrainerNode['supervisor']['runner']>['training']) => void): Promise<void> {
    expect(await emit('begin_training', args)).toEqual({ success: true, error_msg: null, payload: null })
    const training = node.supervisor.runner!.training
    check(training)
    expect(training.training_folder.startsWith(`${dataFolder}/`)).toBe(true)
    // a second begin while it runs is refused, naming the one that runs
    expect(refusalOf(await emit('begin_training', withDetails({})))).toMatch(/a training is already active/)
    expect(await emit('abort_training', [])).toEqual({ success: true, error_msg: null, payload: null })
    await waitFor(() => !node.supervisor.isActive, 10_000, 'the training aborted')
    const outside = Object.keys(await folderSnapshot(testLoop.folder)).filter((path) => !path.startsWith('loop/') && !path.startsWith('trainer/'))
    expect(outside).toEqual([])
  }

  test('the Loop\'s training id ../../../escape names a folder of its own under trainings/', async () => {
    await beginAndAbort(withDetails({ id: '../../../escape' }), (training) => {
      expect(training.id).toBe('../../../escape')
      expect(training.training_folder).toBe(join(dataFolder, 'local', 'fuzz', 'trainings', '%2E%2E%2F%2E%2E%2F%2E%2E%2Fescape'))
    })
  })

  test('hyperparameters {"__proto__": {"epochs": 1000}} are no hyperparameters, not an inherited epochs', async () => {
    await beginAndAbort(['local', 'fuzz', { ...details, hyperparameters: JSON.parse('{"__proto__": {"epochs": 1000}}') }], (training) => {
      expect(training.hyperparameters).toEqual({})
      expect((training.hyperparameters as Record<string, unknown>).epochs).toBeUndefined()
    })
  })

  test('organization __proto__ and project constructor are plain folder names', async () => {
    await beginAndAbort(['__proto__', 'constructor', details], (training) => {
      expect(training.project_folder).toBe(join(dataFolder, '__proto__', 'constructor'))
    })
  })

  test('after them the node is idle and answers', async () => {
    expect(node.supervisor.status().state).toBe('idle')
    await expectHealthy(node.url)
  })
})

describe('training images that are decompression bombs', () => {
  test('JPEGs claiming 40000×40000 and 9000×9000 and a PNG bomb are dropped as corrupt, never written; the training completes with the rest', async () => {
    const generated = await loop.createProject('local', { project_name: 'bombs', complete: 5, box_categories: 1 })
    const ids = generated.image_ids.complete
    const bombs: Record<string, Uint8Array> = { [ids[0]!]: jpegClaimingSize(40_000, 40_000), [ids[1]!]: jpegClaimingSize(9_000, 9_000), [ids[2]!]: pngBomb(20_000, 20_000) }
    for (const [id, bytes] of Object.entries(bombs)) await writeFile(loop.store.images.path(loop.store.images.get('local', 'bombs', id)!), bytes)
    const { ack } = await loop.startTraining('local', 'bombs', { node: node.uuid, modelVariant: 'small', hyperparameters: { epochs: 1, epoch_ms: 10 } })
    expect(ack).toEqual({ success: true, error_msg: null, payload: null })
    const result = await node.supervisor.waitUntilIdle()
    expect(result).toMatchObject({ outcome: 'completed', errors: {} })
    const cached = (await readdir(join(dataFolder, 'local', 'bombs', 'images'))).sort()
    expect(cached).toEqual([`${ids[3]}.jpg`, `${ids[4]}.jpg`].sort())
    const metrics = await (await fetch(`${node.url}/metrics`)).text()
    const count = (result: string) => Number(new RegExp(`trainer_downloaded_images_total\\{result="${result}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0)
    // the detecting step looks at the project's images once more and drops the bombs again
    expect({ downloaded: count('downloaded'), corrupt: count('corrupt') % 3 }).toEqual({ downloaded: 2, corrupt: 0 })
    expect(count('corrupt')).toBeGreaterThanOrEqual(3)
    const update = loop.trainingUpdates().filter((u) => u.project === 'bombs').at(-1)!
    expect((update.training.train_image_count ?? 0) + (update.training.test_image_count ?? 0)).toBe(2)
  })
})

describe('the table at the top covers every entry point', () => {
  test('the REST routes the trainer serves (backdoor on) are the table\'s, and each has rows', () => {
    expect(routeList(node.runtime.app)).toEqual([...REST_ENTRY_POINTS].sort())
    const covered = new Set(restRows.map((row) => row.route))
    expect(REST_ENTRY_POINTS.filter((route) => !covered.has(route))).toEqual([])
  })
  test('the Loop events the trainer handles are the table\'s (an unknown event\'s answer lists them)', async () => {
    expect(handledEventsOf(refusalOf(await emit('no such event', []))!)).toEqual([...LOOP_EVENTS].sort())
  })
})
