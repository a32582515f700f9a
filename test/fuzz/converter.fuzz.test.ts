/**
 * Fuzz suite of the converter (issue 11): its input is what the Loop answers — the project list, a project's
 * models, the model zips — served here by a scripted Loop, plus the node's REST routes. Each bad answer must fail
 * the cycle or the model with an error naming the problem, write nothing outside the node's data folder and
 * nothing inside it but the ledger; models named with odd ids still convert, inside the data folder. The same
 * extractor unpacks the base models a trainer downloads (DataExchange.downloadModel).
 *
 * Entry points (the tests at the end fail when the node serves one that is not listed here):
 *   from the Loop  GET /api/projects · GET /api<resource> · GET /api<resource>/models · GET …/models/{id}/{format}/file
 *   REST           GET /status · generic: GET /health · GET /ready · GET /metrics · PUT /debug_logging · PUT /socketio · GET /openapi.json · GET /docs
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeTinyYoloModel } from '../../scripts/make-test-models.ts'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import { ConverterNode, type ConverterCycleReport } from '../../src/converter/converter-node.ts'
import { YoloOnnxConverter } from '../../src/converter/yolo-onnx-converter.ts'
import { createZip } from '../../src/foundation/zip-archive.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { startScriptedLoop, type ScriptedLoop } from '../loop/scripted-loop.ts'
import { makeTempDir } from '../support/temp.ts'
import { API_DOCS_ENTRY_POINTS, apiDocsRows, describeTable, expectAnswer, expectHealthy, folderSnapshot, request, routeList, rowName, type HttpRow } from './fuzz-harness.ts'
import { deepJsonArray, deepJsonObject, PROTOTYPE_NAMES, zipBomb, zipClaimingSize, zipWithEntries, zipWithSymlink } from './fuzz-inputs.ts'

setDefaultTimeout(60_000)

const REST_ENTRY_POINTS = ['GET /status', 'GET /health', 'GET /ready', 'GET /metrics', 'PUT /debug_logging', 'PUT /socketio', ...API_DOCS_ENTRY_POINTS]
const LEDGER = 'converter/yolo_onnx-to-onnx.json'

let temp: { path: string; cleanup(): Promise<void> }
let peer: ScriptedLoop
let node: ConverterNode
let dataFolder: string
let restoreSink: ((line: string) => void) | undefined
let sourceZip: Uint8Array

/** What the scripted Loop answers now: the project list, and per project resource its models; zips by model id. */
let projects: () => Response
let models: (resource: string) => Response
const zips = new Map<string, Uint8Array>()
const uploads: string[] = []

const project = (organization: string, name: string) => ({ organization_id: organization, project_id: name, resource: `/${encodeURIComponent(organization)}/projects/${encodeURIComponent(name)}` })
const model = (id: string, extra: Record<string, unknown> = {}) => ({ id, version: '1.0', formats: ['yolo_onnx'], created: null, comment: null, host: null, ...extra })
const json = (body: unknown) => () => new Response(typeof body === 'string' ? body : JSON.stringify(body), { headers: { 'content-type': 'application/json' } })

beforeAll(async () => {
  temp = await makeTempDir('lln-fuzz-converter-')
  restoreSink = setLogSink(() => undefined)
  await mkdir(join(temp.path, 'victim'))
  await writeFile(join(temp.path, 'victim', 'keep.txt'), 'precious')
  sourceZip = createZip({ 'best.onnx': makeTinyYoloModel({ layout: 'yolov8', classes: 2, metadata: { names: "{0: 'a', 1: 'b'}", imgsz: '[64, 64]', stride: '32' } }) })
  peer = startScriptedLoop()
  peer.route = async (req) => {
    const path = new URL(req.url).pathname
    if (req.method === 'PUT' && path.endsWith('/onnx/file')) {
      await req.formData()
      uploads.push(path)
      return Response.json({ id: 'x', version: '1.0', formats: ['yolo_onnx', 'onnx'] })
    }
    if (path === '/api/projects') return projects()
    const file = /\/models\/([^/]+)\/yolo_onnx\/file$/.exec(path)
    if (file) {
      const zip = zips.get(decodeURIComponent(file[1]!))
      return zip ? new Response(zip as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/zip' } }) : undefined
    }
    if (path.endsWith('/models')) return models(path.slice('/api'.length, -'/models'.length))
    if (path.startsWith('/api/')) return Response.json({ categories: [] })
    return undefined
  }
  dataFolder = join(temp.path, 'converter', 'data')
  const config = loadNodeConfig({ LOOP_HOST: peer.url, LOOP_USERNAME: 'alice', LOOP_PASSWORD: 'secret', SKIP_REPEAT_ON_START: 'true' })
  node = await ConverterNode.create({
    name: 'fuzz converter', uuid: crypto.randomUUID(), config, dataFolder, port: 0, hostname: '127.0.0.1', logic: new YoloOnnxConverter(),
    intervalMs: 3_600_000, retryPolicy: { maxAttempts: 3, initialBackoffMs: 0, maxBackoffMs: 0 },
  })
  await node.start()
})
afterAll(async () => {
  await node?.shutdown()
  await peer?.stop()
  if (restoreSink) setLogSink(restoreSink)
  await temp?.cleanup()
})

/** Every file under the temp folder but the ledger, which records each outcome. */
const everything = () => folderSnapshot(temp.path, (path) => path === `converter/data/${LEDGER}`)

/** One cycle; what its report says went wrong. */
async function cycle(): Promise<{ report: ConverterCycleReport; said: string }> {
  const report = await node.runCycle()
  return { report, said: JSON.stringify({ error: report.error, failed: report.failed }) }
}

interface AnswerRow {
  input: string
  /** sets what the scripted Loop answers */
  arrange: () => void
  says: RegExp
}

const oneModel = (id: string) => () => {
  projects = json({ projects: [project('local', 'fuzz')] })
  models = json({ models: [model(id)] })
}
const listRows: AnswerRow[] = [
  ...Object.entries({ null: 'null', 'an array': '[]', 'projects: 5': { projects: 5 }, 'organization_id: 5': { projects: [{ organization_id: 5, project_id: 'p', resource: '/x' }] }, 'nested 10 000 deep': deepJsonArray() })
    .map(([input, body]): AnswerRow => ({ input: `the project list: ${input}`, arrange: () => { projects = json(body) }, says: /"error":".*(ProjectsResponse|expected)/ })),
  { input: 'the project list: not JSON', arrange: () => { projects = () => new Response('<html>proxy error</html>') }, says: /"error":".+/ },
  { input: 'the project list: a 500', arrange: () => { projects = () => new Response('{"detail":"boom"}', { status: 500 }) }, says: /"error":".*500/ },
  ...Object.entries({ 'models: 5': { models: 5 }, 'a model with id 5': { models: [model('m', { id: 5 })] }, 'formats: "yolo_onnx"': { models: [model('m', { formats: 'yolo_onnx' })] }, 'nested 10 000 deep': deepJsonObject() })
    .map(([input, body]): AnswerRow => ({ input: `the models: ${input}`, arrange: () => { projects = json({ projects: [project('local', 'fuzz')] }); models = json(body) }, says: /"error":".*(LoopModelsResponse|expected)/ })),
]

const zipRows: (AnswerRow & { zip: () => Uint8Array })[] = [
  { input: 'a zip bomb (64 MiB of zeros in 65 KB)', zip: () => zipBomb('best.onnx'), arrange: () => undefined, says: /expands from \d+ to 67108864 bytes.*zip bomb/ },
  { input: 'an entry claiming 1.5 GiB', zip: () => zipClaimingSize(1.5 * 2 ** 30), arrange: () => undefined, says: /zip bomb|header says/ },
  { input: 'an entry named ../../../../victim/evil.onnx', zip: () => zipWithEntries({ '../../../../victim/evil.onnx': 'x' }), arrange: () => undefined, says: /escapes the target folder/ },
  { input: 'an absolute entry', zip: () => zipWithEntries({ '/tmp/lln-fuzz-absolute/evil.onnx': 'x' }), arrange: () => undefined, says: /has an absolute path/ },
  { input: 'a symbolic link to /etc/passwd', zip: () => zipWithSymlink('best.onnx', '/etc/passwd'), arrange: () => undefined, says: /is a symbolic link/ },
  { input: 'a folder 2000 levels deep', zip: () => zipWithEntries({ [`${'d/'.repeat(2000)}best.onnx`]: 'x' }), arrange: () => undefined, says: /lies 2000 folders deep, more than the limit of 32/ },
  { input: 'not a zip', zip: () => new TextEncoder().encode('PK not really'), arrange: () => undefined, says: /not a zip archive/ },
  { input: 'no .onnx in it', zip: () => zipWithEntries({ 'weights.pt': 'x' }), arrange: () => undefined, says: /holds no \.onnx file/ },
  { input: 'an .onnx that is not ONNX', zip: () => zipWithEntries({ 'best.onnx': 'not protobuf' }), arrange: () => undefined, says: /not a readable ONNX model/ },
]

describe('what the Loop lists', () => {
  test.each(listRows.map((row) => [row.input, row] as const))('%s: the cycle fails naming it; nothing written', async (_, row) => {
    const before = await everything()
    row.arrange()
    const { report, said } = await cycle()
    expect(said).toMatch(row.says)
    expect({ converted: report.converted, uploads: uploads.length }).toEqual({ converted: [], uploads: 0 })
    expect(await everything()).toEqual(before)
    await expectHealthy(node.runtime.url)
  })
})

describe('the model zip', () => {
  let n = 0
  test.each(zipRows.map((row) => [row.input, row] as const))('%s: the model fails naming it; nothing written outside the data folder, and nothing left inside', async (_, row) => {
    const id = `zip-${++n}`
    zips.set(id, row.zip())
    oneModel(id)()
    const before = await everything()
    const { report, said } = await cycle()
    expect(said).toMatch(row.says)
    expect(report.failed.map((f) => f.model)).toEqual([`local/fuzz/${id}`])
    expect(uploads).toEqual([])
    expect(await everything()).toEqual(before)
    expect(node.ledger.get(`local/fuzz/${id}`)?.last_error).toMatch(row.says)
  })
})

describe('odd names from the Loop convert inside the data folder', () => {
  const cases: [string, string, string][] = [
    ['local', 'fuzz', '../../../../victim'],
    ['local', 'fuzz', '/tmp/lln-fuzz-absolute'],
    ['__proto__', 'constructor', 'toString'],
    ['local', 'fuzz', 'a\u202Eb 🙂'],
  ]
  test.each(cases)('organization %p, project %p, model %p: converted and uploaded to its own (encoded) path', async (organization, name, id) => {
    zips.set(id, sourceZip)
    projects = json({ projects: [project(organization, name)] })
    models = json({ models: [model(id)] })
    uploads.length = 0
    const before = await everything()
    const { report, said } = await cycle()
    expect({ converted: report.converted, said }).toEqual({ converted: [`${organization}/${name}/${id}`], said: '{"error":null,"failed":[]}' })
    expect(uploads).toEqual([`/api/${encodeURIComponent(organization)}/projects/${encodeURIComponent(name)}/models/${encodeURIComponent(id)}/onnx/file`])
    // the work folder was removed after the upload; nothing else appeared
    expect(await everything()).toEqual(before)
  })

  test('a project named .. (its resource resolves to another path) fails alone: the project after it in the list still converts', async () => {
    zips.set('after-dots', sourceZip)
    projects = json({ projects: [project('..', '..'), project('local', 'after')] })
    models = (resource) => (resource === '/local/projects/after' ? json({ models: [model('after-dots')] })() : new Response('{"detail":"no such project"}', { status: 404 }))
    uploads.length = 0
    const { report } = await cycle()
    expect(report.converted).toEqual(['local/after/after-dots'])
    expect(report.error).toMatch(/1 of 2 projects could not be checked \(\.\.\/\.\.: GET \/api\/\.\.\/projects\/\.\. failed with 404/)
    expect(node.runtime.status.errors?.loop).toContain('1 of 2 projects could not be checked')
  })

  test('the victim beside the data folder is untouched', async () => {
    expect(await Bun.file(join(temp.path, 'victim', 'keep.txt')).text()).toBe('precious')
  })
})

const restRows: HttpRow[] = [
  { route: 'GET /status', input: 'prototype names as query parameters', send: request('GET', `/status?${PROTOTYPE_NAMES.map((p) => `${p}=1`).join('&')}`), status: 200, says: /"source_format":"yolo_onnx"/ },
  ...['/debug_logging', '/socketio'].flatMap((path): HttpRow[] => [
    ...['toString', '["off"]', ''].map((body): HttpRow => ({ route: `PUT ${path}`, input: JSON.stringify(body), send: request('PUT', path, { body }), status: 400, says: /Invalid state/ })),
    { route: `PUT ${path}`, input: '2 KiB', send: request('PUT', path, { body: 'o'.repeat(2048) }), status: 413, says: /request body larger than 1024 bytes/ },
  ]),
  { route: 'GET /health', input: 'headers of 17 KiB', send: request('GET', '/health', { headers: { 'x-padding': 'p'.repeat(17 * 1024) } }), status: 431, says: /request headers larger than 16384 bytes/ },
  { route: 'GET /ready', input: 'prototype names as header names', send: request('GET', '/ready', { headers: { constructor: '1', tostring: '2' } }), status: 200, says: /"ready":true/ },
  { route: 'GET /metrics', input: 'prototype names as query parameters', send: request('GET', `/metrics?${PROTOTYPE_NAMES.map((p) => `${p}=1`).join('&')}`), status: 200, says: /lln_node_ready 1/ },
  ...apiDocsRows(PROTOTYPE_NAMES),
  { route: '(no route)', input: 'POST /status', send: request('POST', '/status', { body: '{}' }), status: 404, says: /no route POST "\/status"/ },
]
describeTable('REST routes', restRows, rowName, async (row) => expectAnswer(await row.send(node.runtime.url), row), () => ({ alive: () => expectHealthy(node.runtime.url) }))

describe('the table at the top covers every entry point', () => {
  test('the REST routes the converter serves are the table\'s, and each has rows', () => {
    expect(routeList(node.runtime.app)).toEqual([...REST_ENTRY_POINTS].sort())
    const covered = new Set(restRows.map((row) => row.route))
    expect(REST_ENTRY_POINTS.filter((route) => !covered.has(route))).toEqual([])
  })
})
