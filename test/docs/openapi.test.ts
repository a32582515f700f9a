/**
 * Issue 16, API docs: every node kind and the local loop, started for real, serve `/openapi.json` and `/docs`.
 * The document must hold every route of the app's real route table (so a route added without docs fails here)
 * with a 2xx answer schema, and a request body for every POST/PUT that reads one. The GET routes are called, and
 * each answer must match the schema documented for its status: the docs cannot drift from what is served.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { Type, type TSchema } from '@sinclair/typebox'
import { AnnotatorNode } from '../../src/annotator/annotator-node.ts'
import { BoxSegmentationTool } from '../../src/annotator/box-segmentation-tool.ts'
import { createInProcessSegmenter } from '../../src/annotator/segmenter.ts'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import { ConverterNode } from '../../src/converter/converter-node.ts'
import { YoloOnnxConverter } from '../../src/converter/yolo-onnx-converter.ts'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import { routeDocs, textContent } from '../../src/node/route-docs.ts'
import type { TrainerNode } from '../../src/trainer/trainer-node.ts'
import type { Child } from '../support/child-process.ts'
import { startNodeProcess } from '../support/node-process.ts'
import { makeTempDir } from '../support/temp.ts'
import { startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { startTrainer } from '../trainer/trainer-node-fixture.ts'

interface Route { method: string; path: string; hooks?: { detail?: unknown } }
interface Operation {
  operationId: string
  requestBody?: { content: Record<string, { schema: unknown }> }
  responses: Record<string, { content?: Record<string, { schema: TSchema }> }>
}
interface Document { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } }

/** POST/PUT routes that read no body: anything else with these methods must document one. */
const WITHOUT_BODY = new Set([
  'POST /api/logout', 'POST /admin/nodes/:node/stop-training', 'POST /admin/nodes/:node/abort-training', 'POST /admin/nodes/:node/restart',
  'POST /reset', 'POST /kill_training_process', 'POST /force_status_update',
  // socket.io: Engine.IO packets, not a schema
  'ALL /ws/socket.io/*',
])

const ORG = 'zauberzeug'
const PROJECT = 'docs_test'

/** Elysia's path as OpenAPI writes it, derived here independently of the generator. */
const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\/\*$/, '/{path}')
const methodsOf = (route: Route) => (route.method === 'ALL' ? ['get', 'post'] : [route.method.toLowerCase()])
const mediaType = (contentType: string | null) => (contentType ?? '').split(';')[0]!.trim()

async function fetchDocument(url: string): Promise<Document> {
  const response = await fetch(`${url}/openapi.json`)
  expect(response.status).toBe(200)
  expect(mediaType(response.headers.get('content-type'))).toBe('application/json')
  return await response.json() as Document
}

/** Structure of OpenAPI 3.x, every route of the table documented with a 2xx answer and its body, every $ref resolvable. */
function checkDocument(document: Document, routes: readonly Route[]): void {
  expect(document.openapi).toMatch(/^3\.\d+\.\d+$/)
  expect(typeof document.info.title).toBe('string')
  expect(typeof document.info.version).toBe('string')
  expect(typeof document.paths).toBe('object')
  const problems: string[] = []
  for (const route of routes) {
    for (const method of methodsOf(route)) {
      const name = `${route.method} ${route.path}`
      const operation = document.paths[openApiPath(route.path)]?.[method]
      if (!operation) {
        problems.push(`${name}: not in the document`)
        continue
      }
      for (const [status, response] of Object.entries(operation.responses)) {
        if (typeof (response as { description?: unknown }).description !== 'string') problems.push(`${name}: answer ${status} has no description (OpenAPI requires one)`)
      }
      const success = Object.entries(operation.responses).filter(([status]) => /^2\d\d$/.test(status))
      if (!success.some(([, response]) => Object.values(response.content ?? {}).some((c) => c.schema !== undefined))) problems.push(`${name}: no 2xx answer with a schema`)
      if ((method === 'post' || method === 'put' || method === 'patch') && !WITHOUT_BODY.has(name)) {
        const bodies = Object.values(operation.requestBody?.content ?? {})
        if (bodies.length === 0 || bodies.some((c) => c.schema === undefined)) problems.push(`${name}: no request body schema`)
      }
      const pathParameters = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1])
      for (const parameter of pathParameters) {
        if (!JSON.stringify(operation).includes(`"name":"${parameter}","in":"path"`)) problems.push(`${name}: path parameter ${parameter} not declared`)
      }
    }
  }
  for (const [, name] of JSON.stringify(document).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
    if (!(name! in document.components.schemas)) problems.push(`$ref ${name} does not resolve`)
  }
  const ids = Object.values(document.paths).flatMap((methods) => Object.values(methods).map((o) => o.operationId))
  if (new Set(ids).size !== ids.length) problems.push('operationIds are not unique')
  expect(problems).toEqual([])
}

/** What is wrong with `response` as an answer of `route`: undocumented status or media type, or a JSON body off its schema. */
async function answerProblem(route: Route, response: Response): Promise<string | undefined> {
  const responses = (route.hooks?.detail as { responses: Operation['responses'] }).responses
  const documented = responses[String(response.status)] ?? (response.status >= 400 ? responses.default : undefined)
  const type = mediaType(response.headers.get('content-type'))
  const content = documented?.content?.[type]
  const name = `${route.method} ${route.path}`
  if (content && type === 'text/event-stream') {
    // a live stream does not end: its media type is what can be checked
    await response.body?.cancel()
    return undefined
  }
  const text = await response.text()
  if (!content) return `${name}: answered ${response.status} ${type}, not documented (${text.slice(0, 200)})`
  if (type !== 'application/json') return undefined
  const body = JSON.parse(text)
  if (Value.Check(content.schema, body)) return undefined
  const errors = [...Value.Errors(content.schema, body)].slice(0, 3).map((e) => `${e.path}: ${e.message}`)
  return `${name} ${response.status}: answer does not match its schema: ${errors.join('; ')}`
}

const routeOf = (routes: readonly Route[], method: string, path: string) => {
  const route = routes.find((r) => r.method === method && r.path === path)
  if (!route) throw new Error(`no route ${method} ${path}`)
  return route
}

/** Sends `init` to the route (`path` with its parameters filled in) and checks the answer against the route's docs; returns the status. */
async function call(url: string, routes: readonly Route[], method: string, routePath: string, path: string, init: RequestInit = {}): Promise<number> {
  const response = await fetch(`${url}${path}`, { ...init, method })
  const status = response.status
  expect(await answerProblem(routeOf(routes, method, routePath), response)).toBeUndefined()
  return status
}

/**
 * Calls every GET route (path parameters from `values`, query from `queries`) and checks each answer against the
 * schema its route documents for that status (the route's own TypeBox objects, as the document is built from them).
 */
async function checkAnswers(url: string, routes: readonly Route[], values: Record<string, string> = {}, options: { cookie?: string; queries?: Record<string, string> } = {}): Promise<number> {
  const problems: string[] = []
  let checked = 0
  for (const route of routes.filter((r) => r.method === 'GET')) {
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => encodeURIComponent(values[name] ?? `missing-${name}`))
    const query = options.queries?.[route.path] ?? ''
    const response = await fetch(`${url}${path}${query}`, { headers: options.cookie ? { cookie: options.cookie } : {} })
    const problem = await answerProblem(route, response)
    if (problem) problems.push(problem)
    else checked++
  }
  expect(problems).toEqual([])
  return checked
}

async function checkDocsPage(url: string): Promise<void> {
  const page = await fetch(`${url}/docs`)
  expect(page.status).toBe(200)
  expect(mediaType(page.headers.get('content-type'))).toBe('text/html')
  const html = await page.text()
  expect(html).toContain('openapi.json')
  // offline: no script, style, font or link from another host
  expect(html.match(/https?:\/\/|(src|href)\s*=\s*["']?\/\//gi)).toBeNull()
}

async function login(url: string): Promise<string> {
  const response = await fetch(`${url}/api/login`, { method: 'POST', body: new URLSearchParams({ username: 'docs', password: 'docs' }) })
  expect(response.status).toBe(200)
  return response.headers.get('set-cookie')!.split(';')[0]!
}

describe('/openapi.json and /docs', () => {
  let testLoop: TestLoop
  let detector: DetectorNode
  let trainer: TrainerNode
  let converter: ConverterNode
  let annotator: AnnotatorNode

  beforeAll(async () => {
    testLoop = await startTestLoop()
    const { loop } = testLoop
    await loop.createProject(ORG, { project_name: PROJECT, complete: 2, box_categories: 1, box_annotations: 1, trainings: 1 })
    loop.setDeploymentTarget(ORG, PROJECT, '1.0')
    const env = { USE_BACKDOOR_CONTROLS: 'true' }
    detector = await startTestDetector(loop.url, join(testLoop.folder, 'detector'), env)
    trainer = (await startTrainer(loop, join(testLoop.folder, 'trainer'), env)).node
    const config = loadNodeConfig({ LOOP_HOST: loop.url, LOOP_ORGANIZATION: ORG, LOOP_PROJECT: PROJECT })
    converter = await ConverterNode.create({
      name: 'docs converter', uuid: crypto.randomUUID(), config, dataFolder: join(testLoop.folder, 'converter'), port: 0, hostname: '127.0.0.1',
      logic: new YoloOnnxConverter(), intervalMs: 60_000,
    })
    await converter.start()
    annotator = await AnnotatorNode.create({
      name: 'docs annotator', uuid: crypto.randomUUID(), config, dataFolder: join(testLoop.folder, 'annotator'), port: 0, hostname: '127.0.0.1',
      logic: new BoxSegmentationTool({ segmenter: createInProcessSegmenter() }), repeatIntervalMs: 60_000,
    })
    await annotator.start()
  }, 120_000)

  afterAll(async () => {
    await Promise.allSettled([detector?.stop(), trainer?.stop(), converter?.shutdown(), annotator?.shutdown()])
    await testLoop?.cleanup()
  })

  test('the local loop: every route documented, its GET answers match their schemas, /docs offline', async () => {
    const { loop } = testLoop
    const routes = loop.routes as Route[]
    const document = await fetchDocument(loop.url)
    expect(document.info.title).toContain('local loop')
    checkDocument(document, routes)
    const model = loop.models(ORG, PROJECT).models[0] as { id: string; formats: string[] }
    const image = loop.listImages(ORG, PROJECT)[0]!
    const values = { org: ORG, project: PROJECT, id: image.id, model: model.id, format: model.formats[0]!, number: '1' }
    const checked = await checkAnswers(loop.url, routes, values, {
      cookie: await login(loop.url),
      queries: { '/api/:org/projects/:project/images': `?ids=${image.id}`, '/api/:org/projects/:project/data': '?state=complete' },
    })
    expect(checked).toBe(routes.filter((r) => r.method === 'GET').length)
    await checkDocsPage(loop.url)
  })

  test('the local loop: answers to documented bodies match their schemas', async () => {
    const { loop } = testLoop
    const { routes, url } = loop
    const cookie = await login(url)
    const jsonBody = (body: unknown) => ({ headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    expect(await call(url, routes, 'POST', '/admin/projects', '/admin/projects', jsonBody({ organization: ORG, project_name: 'created', complete: 1, box_categories: 1, trainings: 1 }))).toBe(200)
    expect(await call(url, routes, 'POST', '/api/:org/projects/generator', `/api/${ORG}/projects/generator`, jsonBody({ project_name: 'generated' }))).toBe(200)
    expect(await call(url, routes, 'PUT', '/admin/projects/:org/:project/deployment-target', `/admin/projects/${ORG}/created/deployment-target`, jsonBody({ version: '1.0' }))).toBe(200)
    const status = { uuid: crypto.randomUUID(), name: 'docs', uptime: 1, model_format: 'onnx', current_model: null, target_model: '1.0', errors: {}, operation_mode: 'idle' }
    expect(await call(url, routes, 'POST', '/api/:org/projects/:project/detectors', `/api/${ORG}/projects/created/detectors`, jsonBody(status))).toBe(200)
    const image = loop.listImages(ORG, 'created')[0]!
    expect(await call(url, routes, 'POST', '/api/:org/projects/:project/detections', `/api/${ORG}/projects/created/detections`, jsonBody([{ image_id: image.id, box_detections: [] }]))).toBe(200)
    expect(await call(url, routes, 'PUT', '/admin/rate-limit', '/admin/rate-limit', jsonBody({ per_second: null }))).toBe(200)
    // a body off its schema is refused with the documented error answer
    expect(await call(url, routes, 'POST', '/admin/projects', '/admin/projects', jsonBody({ project_name: 7 }))).toBe(422)
    expect(await call(url, routes, 'POST', '/api/logout', '/api/logout', { headers: { cookie } })).toBe(200)
  })

  test('the detector, with its backdoor', async () => {
    const routes = detector.runtime.app.routes as Route[]
    expect(routes.some((r) => r.path === '/reset')).toBe(true)
    const document = await fetchDocument(detector.url)
    checkDocument(document, routes)
    expect(document.paths['/detect']!.post!.requestBody!.content['multipart/form-data']).toBeDefined()
    await checkAnswers(detector.url, routes)
    await checkDocsPage(detector.url)
    const { url } = detector
    const form = new FormData()
    form.append('file', new Blob([await Bun.file(join(import.meta.dir, '../fixtures/astronaut.jpg')).bytes()], { type: 'image/jpeg' }), 'astronaut.jpg')
    expect(await call(url, routes, 'POST', '/detect', '/detect?autoupload=disabled', { body: form })).toBe(200)
    for (const [path, body] of [['/operation_mode', 'idle'], ['/outbox_mode', '"stopped"'], ['/model_version', 'follow_loop'], ['/debug_logging', 'off']] as const) {
      expect(await call(url, routes, 'PUT', path, path, { body })).toBe(200)
    }
    expect(await call(url, routes, 'PUT', '/operation_mode', '/operation_mode', { body: 'sleeping' })).toBe(422)
    expect(await call(url, routes, 'POST', '/upload', '/upload', { body: 'not a form' })).toBe(422)
  })

  test('the trainer, with its backdoor', async () => {
    const routes = trainer.runtime.app.routes as Route[]
    expect(routes.some((r) => r.path === '/kill_training_process')).toBe(true)
    checkDocument(await fetchDocument(trainer.url), routes)
    await checkAnswers(trainer.url, routes)
    await checkDocsPage(trainer.url)
    expect(await call(trainer.url, routes, 'POST', '/kill_training_process', '/kill_training_process')).toBe(409)
    expect(await call(trainer.url, routes, 'POST', '/force_status_update', '/force_status_update')).toBe(200)
  })

  test('the converter and the annotator', async () => {
    for (const node of [converter, annotator]) {
      const url = node.runtime.url
      const routes = node.runtime.app.routes as Route[]
      checkDocument(await fetchDocument(url), routes)
      await checkAnswers(url, routes)
      await checkDocsPage(url)
    }
  })

  test('a route added after the document was first asked for is in it the next time', async () => {
    const url = annotator.runtime.url
    expect((await fetchDocument(url)).paths['/added-later']).toBeUndefined()
    annotator.runtime.app.get('/added-later', () => 'x', { detail: routeDocs({ summary: 'late', tags: ['test'], responses: { 200: textContent(Type.String()) } }) })
    expect((await fetchDocument(url)).paths['/added-later']?.get?.operationId).toBe('get_added_later')
  })

  test('a route without docs fails the check', async () => {
    const { loop } = testLoop
    const routes: Route[] = [...loop.routes, { method: 'GET', path: '/undocumented' }]
    expect(() => checkDocument({ openapi: '3.1.0', info: { title: 't', version: '1' }, paths: {}, components: { schemas: {} } }, routes)).toThrow()
    const document = await fetchDocument(loop.url)
    expect(() => checkDocument(document, routes)).toThrow()
  })
})

describe('under Deno', () => {
  let child: Child | undefined
  let temp: { path: string; cleanup(): Promise<void> } | undefined
  afterAll(async () => {
    await child?.kill('SIGKILL')
    await temp?.cleanup()
  })

  test('the local loop started as its deno task serves /openapi.json and /docs', async () => {
    temp = await makeTempDir('lln-docs-deno-')
    const started = await startNodeProcess(['loop', '--port', '0', '--data', temp.path], { runtime: 'deno', env: { LOG_LEVEL: 'warn' } })
    child = started.child
    const document = await fetchDocument(started.url)
    expect(Object.keys(document.paths)).toContain('/admin/projects/{org}/{project}/trainings')
    await checkDocsPage(started.url)
  }, 90_000)
})
