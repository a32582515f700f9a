import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createZip } from '../../src/foundation/zip-archive.ts'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import { DetectorNode } from '../../src/detector/detector-node.ts'
import { OnnxDetectorFactory, type DetectorLogic, type DetectorLogicFactory } from '../../src/detector/detector-logic.ts'
import type { WorkerConnection } from '../../src/inference/worker-connection.ts'
import type { WorkerPool } from '../../src/inference/worker-pool.ts'
import { makeTinyYoloModel, tinyModelJson } from '../../scripts/make-test-models.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

// Hot swaps of a model served by a pool of 3 workers (real sessions, real sockets, a real local loop). The repeat
// loop is muted: the test runs each update cycle itself.
setDefaultTimeout(90_000)

const ORG = 'local'
const PROJECT = 'demo'
const coffeeJpeg = new Uint8Array(await readFile(join(import.meta.dir, '../fixtures/coffee.jpg')))

/** The real ONNX factory, recording what each build found of the pools built before it. */
class RecordingFactory implements DetectorLogicFactory {
  readonly modelFormat = 'onnx'
  readonly built: DetectorLogic[] = []
  /** per build: whether every worker of every earlier pool had ended when it started */
  readonly earlierPoolsEndedAtBuild: boolean[] = []
  private readonly onnx: OnnxDetectorFactory
  constructor(workers: number) {
    this.onnx = new OnnxDetectorFactory({ backend: 'cpu', workers, threads: 1 })
  }
  async build(modelDir: string): Promise<DetectorLogic> {
    this.earlierPoolsEndedAtBuild.push(this.built.every((logic) => workersOf(logic).every((worker) => !worker.alive)))
    const logic = await this.onnx.build(modelDir)
    this.built.push(logic)
    return logic
  }
}

/** Every worker a pool has had, kept before it is disposed (a disposed pool lists none). */
const workersSeen = new Map<DetectorLogic, WorkerConnection[]>()
function workersOf(logic: DetectorLogic): WorkerConnection[] {
  const now = (logic as unknown as WorkerPool).workersForTest()
  const seen = workersSeen.get(logic) ?? []
  for (const worker of now) if (!seen.includes(worker)) seen.push(worker)
  workersSeen.set(logic, seen)
  return seen
}

let testLoop: TestLoop
let modelNumber = 0

async function deployNewModel(): Promise<string> {
  modelNumber++
  const zip = createZip({
    'model.json': JSON.stringify(tinyModelJson(['cup', 'other'])),
    'model.onnx': makeTinyYoloModel({ layout: 'yolov8', size: 64, classes: 2, planted: [{ anchor: 10 + modelNumber, cx: 20, cy: 20, w: 10, h: 10, classIndex: 0, score: 0.9 }] }),
  })
  const model = await testLoop.loop.uploadModel(ORG, PROJECT, { format: 'onnx', zip })
  testLoop.loop.setDeploymentTarget(ORG, PROJECT, model.id)
  return model.version
}

async function startDetector(folder: string, factory: DetectorLogicFactory, env: Record<string, string> = {}): Promise<DetectorNode> {
  const config = loadNodeConfig({
    LOOP_HOST: testLoop.loop.url, LOOP_ORGANIZATION: ORG, LOOP_PROJECT: PROJECT, DATA_FOLDER: join(testLoop.folder, folder),
    PORT: '0', BIND_HOST: '127.0.0.1', SKIP_REPEAT_ON_START: 'true', ...env,
  })
  const node = await DetectorNode.start({ config, factory, fallbackModelDir: null })
  await waitFor(async () => (await fetch(`${node.url}/ready`)).ok || node.active.logic === undefined, 30_000, 'detector started')
  return node
}

async function detectRest(node: DetectorNode): Promise<string> {
  const form = new FormData()
  form.append('file', new File([coffeeJpeg as Uint8Array<ArrayBuffer>], 'coffee.jpg', { type: 'image/jpeg' }))
  const response = await fetch(`${node.url}/detect`, { method: 'POST', body: form, headers: { autoupload: 'disabled' } })
  const body = await response.json() as { box_detections?: { model_name: string }[]; detail?: string }
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${body.detail}`)
  return body.box_detections![0]!.model_name
}

beforeAll(async () => {
  testLoop = await startTestLoop()
})
afterAll(async () => {
  await testLoop?.cleanup()
})

describe('hot swap with a pool of 3 workers', () => {
  test('REST and in-process detections during swaps: 0 failures; the old pool serves until drained, then all its workers end', async () => {
    const factory = new RecordingFactory(3)
    const detector = await startDetector('pool', factory)
    try {
      const first = await deployNewModel()
      await detector.updater.cycle()
      expect(detector.active.version).toBe(first)
      expect(detector.about().inference).toMatchObject({ workers: 3, live_workers: 3, threads_per_worker: 1 })

      let running = true
      const failures: string[] = []
      const answers: string[] = []
      const client = async (detect: () => Promise<string>) => {
        while (running) await detect().then((version) => answers.push(version), (error: Error) => failures.push(error.message))
      }
      const inProcess = () => detector.detect({ kind: 'encoded', bytes: coffeeJpeg }, { autoupload: 'disabled' }, 'test')
        .then((metadata) => metadata.box_detections![0]!.model_name)
      const traffic = [...Array.from({ length: 3 }, () => client(() => detectRest(detector))), ...Array.from({ length: 3 }, () => client(inProcess))]
      const versions = [first]
      try {
        for (let swap = 0; swap < 2; swap++) {
          await waitFor(() => answers.length > 20 * (swap + 1), 30_000, 'traffic before the swap')
          const previous = detector.active.logic!
          workersOf(previous)
          versions.push(await deployNewModel())
          await detector.updater.cycle()
          expect(detector.active.version).toBe(versions.at(-1)!)
          // cycle() resolves after the old pool drained and was disposed: every one of its workers has ended
          expect(workersOf(previous).length).toBe(3)
          expect(workersOf(previous).every((worker) => !worker.alive)).toBe(true)
          expect(detector.active.logic!.pool).toMatchObject({ workers: 3, liveWorkers: 3 })
        }
        const served = answers.length
        await waitFor(() => answers.length > served + 20, 30_000, 'traffic after the swaps')
      } finally {
        running = false
        await Promise.all(traffic)
      }
      expect(failures).toEqual([])
      expect(new Set(answers)).toEqual(new Set(versions))
    } finally {
      await detector.stop()
    }
  })

  test('EXCLUSIVE_MODEL_BUILD: every worker of the old pool has ended before the new pool is built', async () => {
    const factory = new RecordingFactory(3)
    const detector = await startDetector('exclusive-pool', factory, { EXCLUSIVE_MODEL_BUILD: 'true' })
    try {
      await deployNewModel()
      await detector.updater.cycle()
      const old = detector.active.logic!
      expect(workersOf(old).length).toBe(3)
      const next = await deployNewModel()
      await detector.updater.cycle()
      expect(detector.active.version).toBe(next)
      expect(factory.earlierPoolsEndedAtBuild).toEqual([true, true])
      expect(workersOf(old).every((worker) => !worker.alive)).toBe(true)
      expect(await detectRest(detector)).toBe(next)
    } finally {
      await detector.stop()
    }
  })
})
