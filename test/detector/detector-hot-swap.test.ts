import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { io as connect, type Socket } from 'socket.io-client'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import { DetectorNode } from '../../src/detector/detector-node.ts'
import { OnnxDetectorFactory, type DetectorLogic, type DetectorLogicFactory } from '../../src/detector/detector-logic.ts'
import { decodeImage, type ImageInput } from '../../src/inference/image-decoding.ts'
import { findModelRoot } from '../../src/inference/model-package.ts'
import { createZip } from '../../src/foundation/zip-archive.ts'
import { makeTinyYoloModel, tinyModelJson } from '../../scripts/make-test-models.ts'
import { waitFor } from '../support/temp.ts'
import { connectDetectorClient } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

// Model swaps (§7.6, issue 4 acceptance 3) driven through a real local loop, real ONNX sessions and real
// sockets. The repeat loop is muted: each test runs the detector's update cycle itself, so every step of a
// swap happens when the test says so, with no wall-clock waits.
setDefaultTimeout(60_000)

const ORG = 'local'
const PROJECT = 'demo'
const coffeeJpeg = new Uint8Array(await readFile(join(import.meta.dir, '../fixtures/coffee.jpg')))
const coffeeRgb = await decodeImage({ kind: 'encoded', bytes: coffeeJpeg })
/** A camera frame as rosys sends it: numpy uint8 H×W×3 in C order. */
const rawFrame = { bytes: coffeeRgb.data, dtype: 'uint8', shape: [coffeeRgb.height, coffeeRgb.width, 3] }

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => (open = resolve))
  return { promise, open }
}

type LogicEvent = { kind: 'build-start' | 'built' | 'disposed'; version: string; inFlightAtDispose?: number }

/**
 * A custom DetectorLogicFactory (the library-user path) around the real ONNX factory that records builds and
 * disposals, counts in-flight detections per version, and can hold a build or the detections of a version,
 * or refuse the next builds of a version.
 */
class InstrumentedFactory implements DetectorLogicFactory {
  readonly modelFormat = 'onnx'
  readonly events: LogicEvent[] = []
  readonly buildGates = new Map<string, Promise<void>>()
  readonly detectGates = new Map<string, Promise<void>>()
  readonly refusals = new Map<string, number>()
  readonly failingDisposals = new Set<string>()
  readonly inFlight = new Map<string, number>()
  private readonly onnx = new OnnxDetectorFactory({ backend: 'cpu', workers: 1, threads: 1 })

  async build(modelDir: string): Promise<DetectorLogic> {
    const json = JSON.parse(await readFile(join(await findModelRoot(modelDir), 'model.json'), 'utf8')) as { version: string }
    const version = json.version
    this.events.push({ kind: 'build-start', version })
    await this.buildGates.get(version)
    const refusalsLeft = this.refusals.get(version) ?? 0
    if (refusalsLeft > 0) {
      this.refusals.set(version, refusalsLeft - 1)
      throw new Error(`test refuses to build ${version}`)
    }
    const inner = await this.onnx.build(modelDir)
    this.events.push({ kind: 'built', version })
    const counted = async <T>(work: () => Promise<T>): Promise<T> => {
      this.inFlight.set(version, (this.inFlight.get(version) ?? 0) + 1)
      try {
        await this.detectGates.get(version)
        return await work()
      } finally {
        this.inFlight.set(version, this.inFlight.get(version)! - 1)
      }
    }
    return {
      modelInfo: inner.modelInfo,
      backend: inner.backend,
      detect: (image: ImageInput) => counted(() => inner.detect(image)),
      detectBatch: (images: ImageInput[]) => counted(() => inner.detectBatch(images)),
      dispose: async () => {
        this.events.push({ kind: 'disposed', version, inFlightAtDispose: this.inFlight.get(version) ?? 0 })
        await inner.dispose()
        if (this.failingDisposals.has(version)) throw new Error(`test: disposing ${version} failed`)
      },
    }
  }

  count(kind: LogicEvent['kind'], version: string): number {
    return this.events.filter((e) => e.kind === kind && e.version === version).length
  }
  indexOf(kind: LogicEvent['kind'], version: string): number {
    return this.events.findIndex((e) => e.kind === kind && e.version === version)
  }
}

let testLoop: TestLoop
let loop: LocalLoop
let modelNumber = 0

/** Uploads a tiny YOLO whose one planted box is category `name`; the loop assigns the version. */
async function uploadModel(name: string): Promise<{ id: string; version: string }> {
  modelNumber++
  const zip = createZip({
    'model.json': JSON.stringify(tinyModelJson([name, 'other'])),
    'model.onnx': makeTinyYoloModel({ layout: 'yolov8', size: 64, classes: 2, planted: [{ anchor: 10 + modelNumber, cx: 20, cy: 20, w: 10, h: 10, classIndex: 0, score: 0.9 }] }),
  })
  return loop.uploadModel(ORG, PROJECT, { format: 'onnx', zip })
}

async function startDetector(folder: string, factory: DetectorLogicFactory, extraEnv: Record<string, string> = {}): Promise<DetectorNode> {
  const config = loadNodeConfig({
    LOOP_HOST: loop.url, LOOP_ORGANIZATION: ORG, LOOP_PROJECT: PROJECT, DATA_FOLDER: join(testLoop.folder, folder),
    PORT: '0', BIND_HOST: '127.0.0.1', SKIP_REPEAT_ON_START: 'true', ...extraEnv,
  })
  const node = await DetectorNode.start({ config, factory })
  await waitFor(async () => (await fetch(`${node.url}/ready`)).ok, 30_000, 'detector ready')
  return node
}

async function detectRest(node: DetectorNode): Promise<{ status: number; body: { box_detections?: { model_name: string }[]; detail?: string } }> {
  const form = new FormData()
  form.append('file', new File([coffeeJpeg as Uint8Array<ArrayBuffer>], 'coffee.jpg', { type: 'image/jpeg' }))
  const response = await fetch(`${node.url}/detect`, { method: 'POST', body: form, headers: { autoupload: 'disabled' } })
  return { status: response.status, body: await response.json() }
}

/** The model versions that produced a detection result (one, unless a response mixed models). */
const versionsIn = (body: { box_detections?: { model_name: string }[] }) => [...new Set((body.box_detections ?? []).map((d) => d.model_name))]

async function metricValue(node: DetectorNode, name: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`lln_${name} `) || l.startsWith(`lln_${name}{`))
  return line ? Number(line.split(' ').at(-1)) : 0
}

const put = (node: DetectorNode, path: string, body: string) => fetch(`${node.url}${path}`, { method: 'PUT', body })
const modelVersion = async (node: DetectorNode) => (await fetch(`${node.url}/model_version`)).json()
const latestStatus = (uuidOf: DetectorNode) => loop.detectorStatuses(ORG, PROJECT).filter((s) => s.uuid === uuidOf.runtime.options.uuid).at(-1)?.status as
  { current_model: string | null; target_model: string | null; errors: Record<string, string> } | undefined

beforeAll(async () => {
  testLoop = await startTestLoop()
  loop = testLoop.loop
})

afterAll(async () => {
  await testLoop?.cleanup()
})

describe('zero-downtime swaps', () => {
  const factory = new InstrumentedFactory()
  let detector: DetectorNode
  const versions: string[] = []

  beforeAll(async () => {
    detector = await startDetector('detector', factory)
  })
  afterAll(async () => {
    await detector?.stop()
  })

  test('4 rosys-style socket.io clients and a REST client detect through a swap: 0 failures, and the old model is disposed only when drained', async () => {
    const first = await uploadModel('dog')
    loop.setDeploymentTarget(ORG, PROJECT, first.id)
    await detector.updater.cycle()
    expect(detector.active.version).toBe(first.version)
    const builtin = factory.events[0]!.version
    expect(factory.events.find((e) => e.kind === 'disposed' && e.version === builtin)?.inFlightAtDispose).toBe(0)

    const clients: Socket[] = []
    for (let i = 0; i < 4; i++) clients.push(connect(detector.url, { path: '/ws/socket.io', transports: ['websocket'] }))
    await waitFor(() => clients.every((c) => c.connected), 10_000, 'socket clients connected')

    let running = true
    let swapDone = false
    let failures = 0
    const failureReasons: string[] = []
    const answers: { versions: string[]; startedAfterSwap: boolean }[] = []
    const record = (startedAfterSwap: boolean, answer: { box_detections?: { model_name: string }[]; error?: string }) => {
      if (answer.error || !answer.box_detections) {
        failures++
        failureReasons.push(answer.error ?? JSON.stringify(answer))
      } else answers.push({ versions: versionsIn(answer), startedAfterSwap })
    }
    const socketClient = async (client: Socket) => {
      while (running) {
        const startedAfterSwap = swapDone
        try {
          record(startedAfterSwap, await client.timeout(15_000).emitWithAck('detect', { image: rawFrame, camera_id: 'rosys', tags: [], source: 'rosys', autoupload: 'disabled', creation_date: null }))
        } catch (error) {
          record(startedAfterSwap, { error: String(error) })
        }
      }
    }
    const restClient = async () => {
      while (running) {
        const startedAfterSwap = swapDone
        const { status, body } = await detectRest(detector)
        record(startedAfterSwap, status === 200 ? body : { error: `HTTP ${status}: ${body.detail}` })
      }
    }
    const traffic = [...clients.map(socketClient), restClient()]
    try {
      await waitFor(() => answers.length > 20, 20_000, 'traffic before the swap')
      const second = await uploadModel('cat')
      loop.setDeploymentTarget(ORG, PROJECT, second.id)
      await detector.updater.cycle()
      swapDone = true
      expect(detector.active.version).toBe(second.version)
      await waitFor(() => answers.filter((a) => a.startedAfterSwap).length > 20, 20_000, 'traffic after the swap')
      versions.push(first.version, second.version)
    } finally {
      running = false
      await Promise.all(traffic)
      for (const client of clients) client.close()
    }
    expect(failureReasons).toEqual([])
    expect(failures).toBe(0)
    for (const answer of answers) expect(answer.versions).toHaveLength(1)
    expect(answers.some((a) => !a.startedAfterSwap && a.versions[0] === versions[0])).toBe(true)
    // the swap resolves only after the old model drained: whatever started later ran on the new one
    expect(answers.filter((a) => a.startedAfterSwap).every((a) => a.versions[0] === versions[1])).toBe(true)
    expect(factory.count('disposed', versions[0]!)).toBe(1)
    expect(factory.events.find((e) => e.kind === 'disposed' && e.version === versions[0])?.inFlightAtDispose).toBe(0)
    expect(factory.count('disposed', versions[1]!)).toBe(0)
    expect(await readlink(join(detector.dataFolder, 'current_model'))).toBe(join('models', versions[1]!))
  })

  test('a request in flight during a swap finishes on the old model; new requests get the new one at once', async () => {
    const old = detector.active.version!
    const held = gate()
    factory.detectGates.set(old, held.promise)
    const swapsBefore = await metricValue(detector, 'detector_model_swaps_total')
    const slow = detectRest(detector)
    const next = await uploadModel('bird')
    let cycling: Promise<void> | undefined
    try {
      await waitFor(() => factory.inFlight.get(old) === 1, 10_000, 'the request held on the old model')
      loop.setDeploymentTarget(ORG, PROJECT, next.id)
      cycling = detector.updater.cycle()
      await waitFor(() => detector.active.version === next.version, 20_000, 'the new version serving')
      const fresh = await detectRest(detector)
      expect(fresh.status).toBe(200)
      expect(versionsIn(fresh.body)).toEqual([next.version])
      expect((await fetch(`${detector.url}/ready`)).ok).toBe(true)
      expect(factory.count('disposed', old)).toBe(0)
    } finally {
      // a held request would keep the node from stopping
      held.open()
    }
    const finished = await slow
    expect(finished.status).toBe(200)
    expect(versionsIn(finished.body)).toEqual([old])
    await cycling
    expect(factory.events.find((e) => e.kind === 'disposed' && e.version === old)?.inFlightAtDispose).toBe(0)
    expect(await metricValue(detector, 'detector_model_swaps_total')).toBe(swapsBefore + 1)
    versions.push(next.version)
  })

  test('a failed build keeps the old model serving and the target set, is synced as errors.update_model, and is retried after a delay', async () => {
    const serving = detector.active.version!
    const broken = await uploadModel('fish')
    factory.refusals.set(broken.version, 1)
    const failuresBefore = await metricValue(detector, 'detector_model_update_failures_total')
    loop.setDeploymentTarget(ORG, PROJECT, broken.id)
    await detector.updater.cycle()

    expect(detector.active.version).toBe(serving)
    expect(await modelVersion(detector)).toMatchObject({ current_version: serving, target_version: broken.version, loop_version: broken.version, version_control: 'follow_loop' })
    expect((await modelVersion(detector)).local_versions).not.toContain(broken.version)
    expect(versionsIn((await detectRest(detector)).body)).toEqual([serving])
    expect(await metricValue(detector, 'detector_model_update_failures_total')).toBe(failuresBefore + 1)
    const status = latestStatus(detector)!
    expect(status).toMatchObject({ current_model: serving, target_model: broken.version })
    expect(status.errors.update_model).toContain(`test refuses to build ${broken.version}`)

    // the next cycle comes right away; the retry waits for its backoff instead of hammering the Loop
    await detector.updater.cycle()
    expect(factory.count('build-start', broken.version)).toBe(1)

    await waitFor(async () => {
      await detector.updater.cycle()
      return detector.active.version === broken.version
    }, 30_000, 'the retried update', 250)
    expect(factory.count('build-start', broken.version)).toBe(2)
    expect(latestStatus(detector)).toMatchObject({ current_model: broken.version, target_model: broken.version })
    expect(latestStatus(detector)!.errors.update_model).toBeUndefined()
    versions.push(broken.version)
  })

  test('a pinned version, pause and operation mode detecting decide what the update cycle does', async () => {
    const [, second, third, fourth] = versions as [string, string, string, string]
    // pin an older, locally installed version: no Loop download needed, and the Loop's target is ignored
    expect((await put(detector, '/model_version', second)).status).toBe(200)
    await detector.updater.cycle()
    expect(detector.active.version).toBe(second)
    expect(await modelVersion(detector)).toMatchObject({ current_version: second, target_version: second, loop_version: fourth, version_control: 'specific_version' })
    expect(versionsIn((await detectRest(detector)).body)).toEqual([second])

    // an invalid version is refused and the pin stays
    expect((await put(detector, '/model_version', '2.x')).status).toBe(400)
    expect((await modelVersion(detector)).version_control).toBe('specific_version')

    expect((await put(detector, '/model_version', 'pause')).status).toBe(200)
    loop.setDeploymentTarget(ORG, PROJECT, { version: third })
    await detector.updater.cycle()
    expect(detector.active.version).toBe(second)
    expect(await modelVersion(detector)).toMatchObject({ loop_version: third, version_control: 'pause' })

    expect((await put(detector, '/operation_mode', 'detecting')).status).toBe(200)
    expect((await put(detector, '/model_version', 'follow_loop')).status).toBe(200)
    await detector.updater.cycle()
    expect(detector.active.version).toBe(second)

    expect((await put(detector, '/operation_mode', 'idle')).status).toBe(200)
    await detector.updater.cycle()
    expect(detector.active.version).toBe(third)
    expect(await modelVersion(detector)).toMatchObject({ current_version: third, target_version: third, loop_version: third, version_control: 'follow_loop' })
    expect(factory.count('disposed', second)).toBeGreaterThanOrEqual(2)
  })

  test('an old model whose dispose fails does not undo the swap to the new one', async () => {
    const [, , third, fourth] = versions as [string, string, string, string]
    expect(detector.active.version).toBe(third)
    factory.failingDisposals.add(third)
    loop.setDeploymentTarget(ORG, PROJECT, { version: fourth })
    await detector.updater.cycle()
    expect(factory.count('disposed', third)).toBeGreaterThanOrEqual(1)
    expect(detector.active.version).toBe(fourth)
    expect((await modelVersion(detector)).local_versions).toContain(fourth)
    expect(await readlink(join(detector.dataFolder, 'current_model'))).toBe(join('models', fourth))
    expect(await detector.store.currentModelFolder()).toBe(join(detector.dataFolder, 'models', fourth))
    expect(latestStatus(detector)!.errors.update_model).toBeUndefined()
    expect(await metricValue(detector, 'detector_model_dispose_failures_total')).toBe(1)
    expect(versionsIn((await detectRest(detector)).body)).toEqual([fourth])
  })
})

describe('EXCLUSIVE_MODEL_BUILD', () => {
  const factory = new InstrumentedFactory()
  let detector: DetectorNode
  let client: Socket

  beforeAll(async () => {
    detector = await startDetector('exclusive', factory, { EXCLUSIVE_MODEL_BUILD: 'true' })
    client = await connectDetectorClient(detector.url)
  })
  afterAll(async () => {
    client?.close()
    await detector?.stop()
  })

  test('the old model is freed before the new one is built; detections meanwhile are refused with "updating model to version X"', async () => {
    const builtin = detector.active.version!
    const next = await uploadModel('horse')
    loop.setDeploymentTarget(ORG, PROJECT, next.id)
    const building = gate()
    factory.buildGates.set(next.version, building.promise)
    const cycling = detector.updater.cycle()
    try {
      await waitFor(() => factory.count('build-start', next.version) === 1, 20_000, 'the build of the new version')
      expect(factory.indexOf('disposed', builtin)).toBeGreaterThanOrEqual(0)
      expect(factory.indexOf('disposed', builtin)).toBeLessThan(factory.indexOf('build-start', next.version))
      const refused = await detectRest(detector)
      expect(refused.status).toBe(503)
      expect(refused.body.detail).toBe(`updating model to version ${next.version}`)
      expect(await client.timeout(10_000).emitWithAck('detect', { image: rawFrame, autoupload: 'disabled' })).toEqual({ error: `updating model to version ${next.version}` })
      const ready = await fetch(`${detector.url}/ready`)
      expect(ready.status).toBe(503)
      expect((await ready.json()).reason).toBe(`updating model to version ${next.version}`)
    } finally {
      building.open()
    }
    await cycling
    expect(detector.active.version).toBe(next.version)
    const served = await detectRest(detector)
    expect(served.status).toBe(200)
    expect(versionsIn(served.body)).toEqual([next.version])
    expect((await fetch(`${detector.url}/ready`)).ok).toBe(true)
  })

  test('stopping the node disposes the serving model once', async () => {
    const serving = detector.active.version!
    await detector.stop()
    expect(factory.count('disposed', serving)).toBe(1)
  })
})
