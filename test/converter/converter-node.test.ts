/**
 * The converter node against a real local loop: a YOLO ONNX export uploaded as `yolo_onnx` gets the
 * `onnx` package format added within two cycles, and that package loads in the inference engine and
 * detects exactly what the source model detects. Broken models are skipped and reported; the ledger
 * keeps a restart from redoing work.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeTinyYoloModel, type PlantedBox } from '../../scripts/make-test-models.ts'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import { ConverterNode } from '../../src/converter/converter-node.ts'
import { YoloOnnxConverter } from '../../src/converter/yolo-onnx-converter.ts'
import type { ConverterLogic } from '../../src/converter/converter-logic.ts'
import { createInferenceEngine } from '../../src/inference/inference-engine.ts'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { DataExchange } from '../../src/loop/data-exchange.ts'
import { LoopRestClient } from '../../src/loop/loop-rest-client.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

const ORG = 'zauberzeug'
const PROJECT = 'converter_test'
const USER = { username: 'converter-user', password: 'converter-secret' }
const NAMES = "{0: 'person', 1: 'bicycle', 2: \"it's a car\"}"
const PLANTED: PlantedBox[] = [
  { anchor: 5, cx: 20, cy: 24, w: 16, h: 12, classIndex: 0, score: 0.9 },
  { anchor: 20, cx: 44, cy: 40, w: 10, h: 20, classIndex: 2, score: 0.8 },
  { anchor: 40, cx: 30, cy: 50, w: 12, h: 8, classIndex: 1, score: 0.7 },
]
const category = (id: string, name: string) => ({ id, name, description: null, hotkey: null, color: null, point_size: null, type: 'box' })

let testLoop: TestLoop
let loop: LocalLoop
let sourceOnnx: Uint8Array

async function startConverter(dataFolder: string, options: { logic?: ConverterLogic; intervalMs?: number } = {}): Promise<ConverterNode> {
  const config = loadNodeConfig({ LOOP_HOST: loop.url, LOOP_USERNAME: USER.username, LOOP_PASSWORD: USER.password })
  return ConverterNode.create({
    name: 'converter test node', uuid: crypto.randomUUID(), config, dataFolder, port: 0, hostname: '127.0.0.1',
    logic: options.logic ?? new YoloOnnxConverter(), intervalMs: options.intervalMs ?? 300,
    retryPolicy: { maxAttempts: 3, initialBackoffMs: 0, maxBackoffMs: 0 },
  })
}

/** Uploads one model format as the only model of a fresh training, so uploads never merge into one model. */
async function uploadModel(format: string, files: Record<string, Uint8Array | string>, project = PROJECT) {
  const training = loop.store.createTraining(ORG, project, { state: 'imported' })
  return loop.uploadModel(ORG, project, { format, files, trainingNumber: training.number })
}

const formatsOf = (modelId: string, project = PROJECT) =>
  (loop.models(ORG, project).models.find((m) => m.id === modelId)?.formats as string[] | undefined) ?? []

beforeAll(async () => {
  testLoop = await startTestLoop({ seedProject: false, ...USER })
  loop = testLoop.loop
  await loop.createProject(ORG, { project_name: PROJECT })
  // the project knows "bicycle" and "person" (in another order than the model's classes) but not the car
  loop.store.setCategories(ORG, PROJECT, [category('id-bicycle', 'bicycle'), category('id-person', 'Person')])
  sourceOnnx = makeTinyYoloModel({ layout: 'yolov8', classes: 3, featureScale: 0.001, planted: PLANTED, metadata: { names: NAMES, imgsz: '[64, 64]', stride: '32' } })
})
afterAll(async () => {
  await testLoop.cleanup()
})

describe('converting an Ultralytics ONNX export', () => {
  test('the onnx format is added within two cycles and detects exactly what the source detects', async () => {
    const source = await uploadModel('yolo_onnx', { 'best.onnx': sourceOnnx })
    const unrelated = await uploadModel('mocked', { 'weights.txt': 'not a model' })
    const node = await startConverter(join(testLoop.folder, 'node-a'))
    await node.start()
    try {
      await waitFor(() => formatsOf(source.id).includes('onnx'), 20_000, 'the onnx format')
      expect(node.runtime.repeatLoop.iterations).toBeLessThanOrEqual(2)
      expect(formatsOf(unrelated.id)).toEqual(['mocked'])
      const status = await (await fetch(`${node.runtime.url}/status`)).json() as Record<string, unknown>
      expect(status).toMatchObject({ source_format: 'yolo_onnx', target_format: 'onnx', converted: 1, skipped: [] })
      // the work folder is cleaned up once the upload has been answered (the Loop may show the format a moment earlier)
      await waitFor(async () => !(await Bun.file(join(testLoop.folder, 'node-a', ORG, PROJECT, source.id, 'best.onnx')).exists()), 10_000, 'the work folder removed')
    } finally {
      await node.shutdown()
    }

    // the package, as a detector downloads it
    const rest = new LoopRestClient({ baseUrl: loop.url, ...USER })
    const converted = join(testLoop.folder, 'converted')
    await new DataExchange(rest, { organization: ORG, project: PROJECT }).downloadModel(source.id, 'onnx', converted)
    const modelJson = JSON.parse(await readFile(join(converted, 'model.json'), 'utf8'))
    expect(modelJson).toMatchObject({
      id: source.id, version: source.version, organization: ORG, project: PROJECT, resolution: 64, format: 'onnx',
      inference: { model_file: 'model.onnx', decoder: 'yolo' },
    })
    expect(modelJson.categories.map((c: { id: string; name: string }) => [c.id, c.name])).toEqual([['id-person', 'Person'], ['id-bicycle', 'bicycle'], ["it's a car", "it's a car"]])

    // the source, as a user would have packaged it by hand
    const handMade = join(testLoop.folder, 'hand-made')
    await mkdir(handMade, { recursive: true })
    await writeFile(join(handMade, 'model.onnx'), sourceOnnx)
    await writeFile(join(handMade, 'model.json'), JSON.stringify({
      id: source.id, host: null, organization: ORG, project: PROJECT, version: source.version, resolution: 64,
      categories: [category('id-person', 'Person'), category('id-bicycle', 'bicycle'), category("it's a car", "it's a car")],
    }))
    const images = [
      { kind: 'encoded' as const, bytes: await Bun.file(join(import.meta.dir, '..', 'fixtures', 'astronaut.jpg')).bytes() },
      { kind: 'raw' as const, bytes: new Uint8Array(128 * 64).fill(90), dtype: 'uint8', shape: [64, 128] },
    ]
    const engines = await Promise.all([converted, handMade].map((modelDir) => createInferenceEngine({ modelDir, backend: 'cpu', threads: 1 })))
    try {
      const [fromConverted, fromHandMade] = await Promise.all(engines.map((engine) => engine.detectBatch(images)))
      for (let i = 0; i < images.length; i++) {
        const boxes = fromConverted![i]!.box_detections
        expect(boxes).toHaveLength(3)
        expect(boxes).toEqual(fromHandMade![i]!.box_detections)
        expect(boxes.map((b) => b.category_id).sort()).toEqual(['id-bicycle', 'id-person', "it's a car"])
      }
    } finally {
      await Promise.all(engines.map((engine) => engine.dispose()))
    }
  })
})

describe('models that cannot be converted', () => {
  test('a source without class names is skipped after one attempt, reported, and not retried after a restart', async () => {
    const noNames = await uploadModel('yolo_onnx', { 'plain.onnx': makeTinyYoloModel({ layout: 'yolov8', classes: 2 }) })
    const notOnnx = await uploadModel('yolo_onnx', { 'model.onnx': 'this is not protobuf at all' })
    const dataFolder = join(testLoop.folder, 'node-b')
    const node = await startConverter(dataFolder)
    const report = await node.runCycle()
    expect(report.error).toBeNull()
    expect(report.failed.map((f) => f.model).sort()).toEqual([`${ORG}/${PROJECT}/${noNames.id}`, `${ORG}/${PROJECT}/${notOnnx.id}`].sort())
    expect(report.failed.find((f) => f.model.endsWith(noNames.id))!.error).toContain('has no Ultralytics class names')
    expect(report.failed.find((f) => f.model.endsWith(notOnnx.id))!.error).toContain('not a readable ONNX model')
    expect(formatsOf(noNames.id)).toEqual(['yolo_onnx'])
    expect(node.runtime.status.errors?.[`skipped:${ORG}/${PROJECT}/${noNames.id}`]).toContain('class names')
    expect(node.ledger.get(`${ORG}/${PROJECT}/${noNames.id}`)).toMatchObject({ outcome: 'skipped', attempts: 1 })
    expect(node.runtime.metrics.render()).toContain('converter_conversions_total{result="skipped"} 2')
    // the next cycle leaves them alone
    const again = await node.runCycle()
    expect(again).toMatchObject({ failed: [], converted: [], skipped: 2 })
    await node.shutdown()

    const restarted = await startConverter(dataFolder)
    try {
      const afterRestart = await restarted.runCycle()
      expect(afterRestart).toMatchObject({ failed: [], converted: [], skipped: 2 })
      expect(restarted.ledger.get(`${ORG}/${PROJECT}/${noNames.id}`)).toMatchObject({ outcome: 'skipped', attempts: 1 })
      expect(restarted.statusReport().skipped).toHaveLength(2)
    } finally {
      await restarted.shutdown()
    }
  })

  test('a transient failure is retried with backoff and given up after three attempts; an unreachable Loop is a failed cycle', async () => {
    const otherProject = 'converter_flaky'
    await loop.createProject(ORG, { project_name: otherProject })
    const model = await uploadModel('src_fmt', { 'w.bin': 'weights' }, otherProject)
    let calls = 0
    const flaky: ConverterLogic = {
      sourceFormat: 'src_fmt', targetFormat: 'dst_fmt',
      async convert(_info, _source, target) {
        calls++
        if (calls < 3) throw new Error(`disk full (call ${calls})`)
        await mkdir(target, { recursive: true })
        await writeFile(join(target, 'w.dst'), 'converted')
        return [join(target, 'w.dst')]
      },
    }
    const node = await startConverter(join(testLoop.folder, 'node-c'), { logic: flaky })
    try {
      expect((await node.runCycle()).failed[0]!.error).toBe('disk full (call 1)')
      expect(node.ledger.get(`${ORG}/${otherProject}/${model.id}`)).toMatchObject({ outcome: 'failed', attempts: 1 })
      expect((await node.runCycle()).failed[0]!.error).toBe('disk full (call 2)')
      expect((await node.runCycle()).converted).toEqual([`${ORG}/${otherProject}/${model.id}`])
      expect(formatsOf(model.id, otherProject)).toEqual(['src_fmt', 'dst_fmt'])
      expect(node.ledger.get(`${ORG}/${otherProject}/${model.id}`)).toMatchObject({ outcome: 'converted', attempts: 3 })
      expect(calls).toBe(3)
    } finally {
      await node.shutdown()
    }

    const alwaysFailing: ConverterLogic = { sourceFormat: 'src_fmt', targetFormat: 'never_fmt', convert: async () => { throw new Error('no GPU') } }
    const giver = await startConverter(join(testLoop.folder, 'node-d'), { logic: alwaysFailing })
    try {
      for (let i = 0; i < 3; i++) await giver.runCycle()
      expect(giver.ledger.get(`${ORG}/${otherProject}/${model.id}`)).toMatchObject({ outcome: 'skipped', attempts: 3, last_error: 'no GPU' })
      expect((await giver.runCycle()).skipped).toBe(1)
    } finally {
      await giver.shutdown()
    }

    const config = loadNodeConfig({ LOOP_HOST: 'http://127.0.0.1:9', LOOP_USERNAME: 'x', LOOP_PASSWORD: 'y', LOOP_REQUEST_TIMEOUT_MS: '2000' })
    const offline = await ConverterNode.create({ name: 'offline', uuid: 'u', config, dataFolder: join(testLoop.folder, 'node-e'), logic: new YoloOnnxConverter() })
    try {
      const report = await offline.runCycle()
      expect(report.error).toContain('/api/login')
      expect(offline.runtime.status.errors?.loop).toContain('could not check the Loop')
    } finally {
      await offline.shutdown()
    }
  })
})
