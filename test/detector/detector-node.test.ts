import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import { readFile, readdir } from 'node:fs/promises'
import { io as connect, type Socket } from 'socket.io-client'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import { decodeImage } from '../../src/inference/image-decoding.ts'
import { createZip } from '../../src/foundation/zip-archive.ts'
import { makeTinyYoloModel, tinyModelJson } from '../../scripts/make-test-models.ts'
import { fixedBoxFactory } from '../support/fixed-box-logic.ts'
import { jpegClaimingSize } from '../support/image-bombs.ts'
import { waitFor } from '../support/temp.ts'
import { connectDetectorClient, startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { runNodeCommand } from '../support/node-process.ts'

setDefaultTimeout(60_000)

const fixtures = join(import.meta.dir, '../fixtures')
const astronautJpeg = new Uint8Array(await readFile(join(fixtures, 'astronaut.jpg')))
const coffeeJpeg = new Uint8Array(await readFile(join(fixtures, 'coffee.jpg')))
const ORG = 'local'
const PROJECT = 'demo'

let testLoop: TestLoop
let loop: LocalLoop
let detector: DetectorNode

const imagesInLoop = () => loop.listImages(ORG, PROJECT)

async function postDetect(jpeg: Uint8Array, headers: Record<string, string> = {}, query = ''): Promise<Response> {
  const form = new FormData()
  form.append('file', new File([jpeg as Uint8Array<ArrayBuffer>], 'image.jpg', { type: 'image/jpeg' }))
  return fetch(`${detector.url}/detect${query}`, { method: 'POST', body: form, headers })
}

beforeAll(async () => {
  testLoop = await startTestLoop()
  loop = testLoop.loop
  detector = await startTestDetector(loop.url, join(testLoop.folder, 'detector'), {
    // the built-in face model scores the astronaut 0.918: this window makes that detection "uncertain"
    MIN_UNCERTAIN_THRESHOLD: '0.9', MAX_UNCERTAIN_THRESHOLD: '0.95',
  })
})

afterAll(async () => {
  await detector?.stop()
  await testLoop?.cleanup()
})

describe('REST against a local loop', () => {
  test('POST /detect returns ImageMetadata with the face; autoupload all puts image and detections into the loop', async () => {
    const before = imagesInLoop().length
    const response = await postDetect(astronautJpeg, { autoupload: 'all', 'camera-id': 'cam-1', tags: 'a,b', source: 'robot', 'creation-date': '2026-11-28T10:00:00' })
    expect(response.status).toBe(200)
    const metadata = await response.json()
    expect(metadata.box_detections).toHaveLength(1)
    expect(metadata.box_detections[0]).toMatchObject({ category_name: 'face', model_name: 'builtin-blazeface-1' })
    expect(metadata.box_detections[0].confidence).toBeGreaterThan(0.5)
    expect(metadata.tags).toEqual(['a', 'b'])
    expect(metadata.source).toBe('robot')
    expect(metadata.created).toBe('2026-11-28T10:00:00')
    await waitFor(() => imagesInLoop().length === before + 1, 20_000, 'the image in the local loop')
    const image = imagesInLoop().find((i) => i.source === 'robot')!
    expect(image.box_detections).toBe(1)
    const stored = loop.imageData(ORG, PROJECT, image.id) as { box_detections: { category_name: string }[] }
    expect(stored.box_detections.map((d) => d.category_name)).toEqual(['face'])
  })

  test('underscore spellings and query parameters work too; without autoupload the filter decides', async () => {
    const response = await postDetect(coffeeJpeg, { camera_id: 'cam-2' }, '?tags=x&source=query-source')
    expect(response.status).toBe(200)
    const metadata = await response.json()
    expect(metadata.box_detections).toEqual([])
    expect(metadata.tags).toEqual(['x'])
    expect(metadata.source).toBe('query-source')
    expect(metadata.created).toBeNull()
  })

  test('uncertain detections arrive tagged uncertain; the same scene again is not uploaded twice', async () => {
    const before = imagesInLoop().length
    expect((await postDetect(astronautJpeg, { 'camera-id': 'cam-3', source: 'uncertain-test' })).status).toBe(200)
    await waitFor(() => imagesInLoop().some((i) => i.source === 'uncertain-test'), 20_000, 'the uncertain image')
    const image = imagesInLoop().find((i) => i.source === 'uncertain-test')!
    expect(image.tags).toContain('uncertain')
    expect((await postDetect(astronautJpeg, { 'camera-id': 'cam-3', source: 'uncertain-test' })).status).toBe(200)
    // an `all` upload after it is a marker: once it has arrived, the second filtered one would have too
    expect((await postDetect(coffeeJpeg, { autoupload: 'all', source: 'marker-1' })).status).toBe(200)
    await waitFor(() => imagesInLoop().some((i) => i.source === 'marker-1'), 20_000, 'the marker image')
    expect(imagesInLoop().filter((i) => i.source === 'uncertain-test')).toHaveLength(1)
    expect(imagesInLoop().length).toBe(before + 2)
  })

  test('autoupload disabled uploads nothing', async () => {
    const before = imagesInLoop().length
    expect((await postDetect(astronautJpeg, { autoupload: 'disabled', 'camera-id': 'cam-4', source: 'disabled-test' })).status).toBe(200)
    expect((await postDetect(coffeeJpeg, { autoupload: 'all', source: 'marker-2' })).status).toBe(200)
    await waitFor(() => imagesInLoop().some((i) => i.source === 'marker-2'), 20_000, 'the marker image')
    expect(imagesInLoop().some((i) => i.source === 'disabled-test')).toBe(false)
    expect(imagesInLoop().length).toBe(before + 1)
  })

  test('POST /upload answers [200,"OK"] and the images arrive tagged picked_by_system', async () => {
    const form = new FormData()
    form.append('files', new File([coffeeJpeg as Uint8Array<ArrayBuffer>], 'a.jpg', { type: 'image/jpeg' }))
    form.append('files', new File([astronautJpeg as Uint8Array<ArrayBuffer>], 'b.jpg', { type: 'image/jpeg' }))
    const response = await fetch(`${detector.url}/upload?source=upload-test&upload_priority=true`, { method: 'POST', body: form })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual([200, 'OK'])
    await waitFor(() => imagesInLoop().filter((i) => i.source === 'upload-test').length === 2, 20_000, 'both uploads')
    for (const image of imagesInLoop().filter((i) => i.source === 'upload-test')) expect(image.tags).toContain('picked_by_system')
  })

  test('without a source from the client, what reaches the Loop names this detector (its node name); the answer keeps null', async () => {
    const response = await postDetect(coffeeJpeg, { autoupload: 'all', tags: 'no-source' })
    expect((await response.json()).source).toBeNull()
    const form = new FormData()
    form.append('files', new File([coffeeJpeg as Uint8Array<ArrayBuffer>], 'c.jpg', { type: 'image/jpeg' }))
    form.append('files', new File([astronautJpeg as Uint8Array<ArrayBuffer>], 'd.jpg', { type: 'image/jpeg' }))
    expect((await fetch(`${detector.url}/upload`, { method: 'POST', body: form })).status).toBe(200)
    const unnamed = () => imagesInLoop().filter((i) => i.tags.includes('no-source') || (i.tags.includes('picked_by_system') && i.source !== 'upload-test'))
    await waitFor(() => unnamed().length === 3, 20_000, 'the three images without a client source')
    expect(unnamed().map((i) => i.source)).toEqual(['detector', 'detector', 'detector'])
  })

  test('modes: outbox, operation, version; about', async () => {
    const put = (path: string, body: string) => fetch(`${detector.url}${path}`, { method: 'PUT', body })
    expect((await put('/outbox_mode', 'stopped')).status).toBe(200)
    expect(await (await fetch(`${detector.url}/outbox_mode`)).text()).toBe('stopped')
    expect((await put('/outbox_mode', 'continuous_upload')).status).toBe(200)
    expect(await (await fetch(`${detector.url}/outbox_mode`)).text()).toBe('continuous_upload')
    const badOutbox = await put('/outbox_mode', 'sometimes')
    expect(badOutbox.status).toBe(422)
    expect((await badOutbox.json()).detail).toContain('Could not set outbox mode')

    expect(await (await fetch(`${detector.url}/operation_mode`)).text()).toBe('idle')
    expect((await put('/operation_mode', 'detecting')).status).toBe(200)
    expect(await (await fetch(`${detector.url}/operation_mode`)).text()).toBe('detecting')
    expect((await put('/operation_mode', 'idle')).status).toBe(200)
    expect((await put('/operation_mode', 'sleeping')).status).toBe(422)

    const version = await (await fetch(`${detector.url}/model_version`)).json()
    expect(version).toEqual({ current_version: 'builtin-blazeface-1', target_version: 'None', loop_version: 'None', local_versions: [], version_control: 'follow_loop' })
    expect((await put('/model_version', 'pause')).status).toBe(200)
    const invalid = await put('/model_version', '1.x')
    expect(invalid.status).toBe(400)
    expect((await invalid.json()).detail).toContain('Invalid version number')
    const unknown = await put('/model_version', '9.9')
    expect(unknown.status).toBe(404)
    expect((await (await fetch(`${detector.url}/model_version`)).json()).version_control).toBe('pause')
    expect((await put('/model_version', 'follow_loop')).status).toBe(200)

    const about = await (await fetch(`${detector.url}/about`)).json()
    expect(about).toMatchObject({ operation_mode: 'idle', state: 'online', target_model: null, version_control: 'follow_loop' })
    expect(about.model_info.categories.map((c: { name: string }) => c.name)).toContain('face')
    expect(about.inference).toEqual({
      backend: 'cpu', workers: 1, live_workers: 1, threads_per_worker: 1, usable_cores: expect.any(Number), reason: 'INFERENCE_WORKERS and INFERENCE_THREADS',
      measured_threads: 1, measured_run_ms: expect.any(Number), single_thread_run_ms: null,
    })
  })

  test('status page data, the last image and OpenAPI-free metrics', async () => {
    const status = await (await fetch(`${detector.url}/status.json`)).json()
    expect(status.model).toMatchObject({ version: 'builtin-blazeface-1', backend: 'cpu' })
    expect(status.inference).toMatchObject({ workers: 1, live_workers: 1, threads_per_worker: 1 })
    expect(status.last.metadata).toBeDefined()
    const last = await fetch(`${detector.url}/last_detection.jpg`)
    expect(last.headers.get('content-type')).toBe('image/jpeg')
    expect((await decodeImage({ kind: 'encoded', bytes: new Uint8Array(await last.arrayBuffer()) })).width).toBeGreaterThan(0)
    const page = await (await fetch(`${detector.url}/`)).text()
    expect(page).toContain('learning-loop-node detector')
    expect(page).not.toMatch(/https?:\/\/(cdn|unpkg|fonts)/)
    const metrics = await (await fetch(`${detector.url}/metrics`)).text()
    expect(metrics).toMatch(/detector_images_total\{autoupload="all",route="rest"\} \d+/)
    expect(metrics).toContain('lln_detector_model_info{backend="cpu",version="builtin-blazeface-1"} 1')
    expect(metrics).toContain('outbox_items')
    expect(metrics).toContain('lln_detector_inference_workers{state="live"} 1')
    expect(metrics).toContain('lln_detector_inference_threads_per_worker 1')
    expect(metrics).toMatch(/lln_detector_usable_cores [1-9]\d*\n/)
    expect(metrics).toMatch(/lln_detector_inference_measured_run_seconds \d/)
  })
})

describe('bad input: 4xx or {error}, and the node keeps serving', () => {
  test('corrupt JPEG, empty multipart, wrong field, unknown autoupload', async () => {
    const corrupt = await postDetect(astronautJpeg.slice(0, 2000))
    expect(corrupt.status).toBe(422)
    expect((await corrupt.json()).detail).toContain('JPEG')
    const empty = await fetch(`${detector.url}/detect`, { method: 'POST', body: new FormData() })
    expect(empty.status).toBe(422)
    const notMultipart = await fetch(`${detector.url}/detect`, { method: 'POST', body: 'hello' })
    expect(notMultipart.status).toBe(422)
    const wrongField = new FormData()
    wrongField.append('image', new File([astronautJpeg as Uint8Array<ArrayBuffer>], 'x.jpg'))
    expect((await fetch(`${detector.url}/detect`, { method: 'POST', body: wrongField })).status).toBe(422)
    const badMode = await postDetect(astronautJpeg, { autoupload: 'sometimes' })
    expect(badMode.status).toBe(422)
    expect((await badMode.json()).detail).toContain('autoupload')
    // the default pixel budget (50 MP), checked from the header of a 618-byte file
    const bomb = await postDetect(jpegClaimingSize(9999, 9999))
    expect(bomb.status).toBe(422)
    expect((await bomb.json()).detail).toContain('9999×9999 pixels (100.0 MP), more than the pixel budget of 50000000')
    expect((await postDetect(astronautJpeg, { autoupload: 'disabled' })).status).toBe(200)
  })
})

describe('socket.io like rosys (§5.5, §13)', () => {
  let client: Socket
  beforeAll(async () => {
    client = await connectDetectorClient(detector.url)
  })
  afterAll(() => {
    client?.close()
  })
  const call = (event: string, ...args: unknown[]) => client.timeout(15_000).emitWithAck(event, ...args)

  test('detect and batch_detect of 4 with raw uint8 frames; detect with JPEG bytes', async () => {
    const rgb = await decodeImage({ kind: 'encoded', bytes: astronautJpeg })
    const frame = { bytes: rgb.data, dtype: 'uint8', shape: [rgb.height, rgb.width, 3] }
    const single = await call('detect', { image: frame, camera_id: 'rosys-cam', tags: ['rosys'], source: 'rosys', autoupload: 'disabled', creation_date: null })
    expect(single.box_detections).toHaveLength(1)
    expect(single.box_detections[0].category_name).toBe('face')
    expect(single.tags).toEqual(['rosys'])
    expect(single.point_detections.length).toBe(6)
    const batch = await call('batch_detect', { images: [frame, frame, frame, frame], camera_id: 'rosys-cam', tags: [], source: 'rosys', autoupload: 'disabled', creation_date: null })
    expect(batch.items).toHaveLength(4)
    for (const item of batch.items) expect(item.box_detections[0].x).toBe(single.box_detections[0].x)
    const jpeg = await call('detect', { image: astronautJpeg, autoupload: 'disabled' })
    expect(jpeg.box_detections).toHaveLength(1)
  })

  test('detect with autoupload all: JPEG bytes and raw frames reach the loop (socket.io hands attachments over as Buffers)', async () => {
    const rgb = await decodeImage({ kind: 'encoded', bytes: astronautJpeg })
    const frame = { bytes: rgb.data, dtype: 'uint8', shape: [rgb.height, rgb.width, 3] }
    expect((await call('detect', { image: astronautJpeg, autoupload: 'all', source: 'socket-autoupload-jpeg' })).box_detections).toHaveLength(1)
    expect((await call('detect', { image: frame, autoupload: 'all', source: 'socket-autoupload-raw' })).box_detections).toHaveLength(1)
    await waitFor(() => ['jpeg', 'raw'].every((kind) => imagesInLoop().some((i) => i.source === `socket-autoupload-${kind}`)), 20_000, 'both autouploads in the loop')
    const stored = imagesInLoop().find((i) => i.source === 'socket-autoupload-raw')!
    expect([stored.width, stored.height]).toEqual([rgb.width, rgb.height])
  })

  test('upload with rosys metadata (creation_date, state) arrives in the loop', async () => {
    const answer = await call('upload', {
      image: astronautJpeg,
      metadata: { source: 'rosys-upload', tags: ['manual'], creation_date: '2026-11-28T11:00:00', state: 'inbox', box_detections: [{ category_name: 'face', x: 1, y: 2, width: 3, height: 4, model_name: 'm', confidence: 0.5 }] },
    })
    expect(answer).toEqual({ status: 'OK' })
    await waitFor(() => imagesInLoop().some((i) => i.source === 'rosys-upload'), 20_000, 'the socket upload in the loop')
    const image = imagesInLoop().find((i) => i.source === 'rosys-upload')!
    expect(image.tags).toEqual(expect.arrayContaining(['manual', 'picked_by_system']))
    expect(image.created).toBe('2026-11-28T11:00:00')
  })

  test('info, about, version and outbox modes', async () => {
    expect((await call('info')).version).toBe('builtin-blazeface-1')
    expect((await call('about')).version_control).toBe('follow_loop')
    expect((await call('get_model_version')).current_version).toBe('builtin-blazeface-1')
    expect(await call('set_model_version_mode', 'pause')).toEqual({ status: 'OK' })
    expect((await call('set_model_version_mode', 'not-a-version')).error).toContain('Invalid version number')
    expect((await call('get_model_version')).version_control).toBe('pause')
    expect(await call('set_model_version_mode', 'follow_loop')).toEqual({ status: 'OK' })
    expect(await call('set_outbox_mode', 'stopped')).toEqual({ status: 'OK' })
    expect(await call('get_outbox_mode')).toEqual({ outbox_mode: 'stopped' })
    expect((await call('set_outbox_mode', 'x')).error).toContain('outbox mode')
    expect(await call('set_outbox_mode', 'continuous_upload')).toEqual({ status: 'OK' })
  })

  test('bad payloads and unknown events get {error}; an oversized frame drops only that client', async () => {
    expect((await call('detect', { image: { bytes: new Uint8Array(10), dtype: 'uint8', shape: [2, 2, 3] } })).error).toContain('could not parse image')
    expect((await call('detect', { image: { bytes: new Uint8Array(12), dtype: 'complex128', shape: [2, 2, 3] } })).error).toContain('could not parse image')
    expect((await call('detect', { image: 'nope' })).error).toContain('could not parse image from data')
    expect((await call('detect', { image: astronautJpeg, autoupload: 'sometimes' })).error).toContain('autoupload')
    expect((await call('batch_detect', { images: [] })).error).toContain('could not parse images')
    expect((await call('soft_reload')).error).toContain('unknown event')
    const big = connect(detector.url, { path: '/ws/socket.io', transports: ['websocket'] })
    await waitFor(() => big.connected, 10_000, 'second client connected')
    const disconnected = new Promise((resolve) => big.on('disconnect', resolve))
    big.emit('detect', { image: new Uint8Array(70 * 1024 * 1024) })
    expect(await disconnected).toBeDefined()
    big.close()
    expect((await call('about')).state).toBe('online')
    expect((await fetch(`${detector.url}/ready`)).ok).toBe(true)
  })
})

describe('model version control through the local loop', () => {
  test('a deployed model replaces the built-in one; current_model points at it', async () => {
    const zip = createZip({
      'model.json': JSON.stringify(tinyModelJson(['person', 'car'], { version: '1.0' })),
      'model.onnx': makeTinyYoloModel({ layout: 'yolov8', size: 64, classes: 2, planted: [{ anchor: 10, cx: 20, cy: 20, w: 10, h: 10, classIndex: 0, score: 0.9 }] }),
    })
    const model = await loop.uploadModel(ORG, PROJECT, { format: 'onnx', zip })
    loop.setDeploymentTarget(ORG, PROJECT, model.id)
    await waitFor(async () => (await (await fetch(`${detector.url}/model_version`)).json()).current_version === model.version, 30_000, 'the deployed version to be active')
    const version = await (await fetch(`${detector.url}/model_version`)).json()
    expect(version).toMatchObject({ target_version: model.version, loop_version: model.version, local_versions: [model.version], version_control: 'follow_loop' })
    const dataFolder = join(testLoop.folder, 'detector')
    expect(await readdir(join(dataFolder, 'models'))).toEqual([model.version])
    const { readlink } = await import('node:fs/promises')
    expect(await readlink(join(dataFolder, 'current_model'))).toBe(join('models', model.version))
    const metadata = await (await postDetect(coffeeJpeg, { autoupload: 'disabled' })).json()
    expect(metadata.box_detections[0]).toMatchObject({ category_name: 'person', model_name: model.version })
    const statuses = loop.detectorStatuses(ORG, PROJECT)
    await waitFor(() => loop.detectorStatuses(ORG, PROJECT).some((s) => (s.status as { current_model?: string }).current_model === model.version), 20_000, 'status with the new model')
    expect(statuses.length).toBeGreaterThan(0)
  })
})

describe('hot swap', () => {
  test('with 4 clients detecting continuously, a new deployment target switches versions with 0 failed requests', async () => {
    const zipFor = (version: string, name: string) => createZip({
      'model.json': JSON.stringify(tinyModelJson([name, 'other'], { version })),
      'model.onnx': makeTinyYoloModel({ layout: 'yolov8', size: 64, classes: 2, planted: [{ anchor: 10, cx: 20, cy: 20, w: 10, h: 10, classIndex: 0, score: 0.9 }] }),
    })
    const first = await loop.uploadModel(ORG, PROJECT, { format: 'onnx', zip: zipFor('2.0', 'dog') })
    loop.setDeploymentTarget(ORG, PROJECT, first.id)
    await waitFor(async () => (await (await fetch(`${detector.url}/model_version`)).json()).current_version === first.version, 30_000, 'first version active')
    const second = await loop.uploadModel(ORG, PROJECT, { format: 'onnx', zip: zipFor('2.1', 'cat') })
    let running = true
    let failures = 0
    let requests = 0
    const seen = new Set<string>()
    const client = async () => {
      while (running) {
        const response = await postDetect(coffeeJpeg, { autoupload: 'disabled' })
        requests++
        if (response.status !== 200) {
          failures++
          continue
        }
        const metadata = await response.json()
        for (const box of metadata.box_detections) seen.add(box.model_name)
      }
    }
    const clients = [client(), client(), client(), client()]
    await waitFor(() => requests > 20, 20_000, 'traffic before the swap')
    loop.setDeploymentTarget(ORG, PROJECT, second.id)
    await waitFor(() => seen.has(second.version), 30_000, 'answers from the new version')
    const afterSwap = requests
    await waitFor(() => requests > afterSwap + 20, 20_000, 'traffic after the swap')
    running = false
    await Promise.all(clients)
    expect(failures).toBe(0)
    expect(seen.has(first.version)).toBe(true)
    expect(seen.has(second.version)).toBe(true)
    expect(requests).toBeGreaterThan(40)
  })
})

describe('outbox caps from the environment', () => {
  test('OUTBOX_MAX_ITEMS and OUTBOX_MAX_BYTES bound the outbox; the oldest normal images make room and are counted', async () => {
    const chelseaJpeg = new Uint8Array(await readFile(join(fixtures, 'chelsea.jpg')))
    // room for two coffees (71 540 B each, plus their metadata), not for a third image beside them
    const maxBytes = 2 * coffeeJpeg.length + 2_000
    const folder = join(testLoop.folder, 'capped-detector')
    const capped = await startTestDetector(loop.url, folder, { OUTBOX_MAX_ITEMS: '3', OUTBOX_MAX_BYTES: String(maxBytes) }, { factory: fixedBoxFactory, fallbackModelDir: folder })
    try {
      expect(capped.outbox.limits).toEqual({ maxItems: 3, maxBytes })
      expect((await fetch(`${capped.url}/outbox_mode`, { method: 'PUT', body: 'stopped' })).status).toBe(200)
      const upload = async (jpeg: Uint8Array, source: string) => {
        const form = new FormData()
        form.append('files', new File([jpeg as Uint8Array<ArrayBuffer>], `${source}.jpg`, { type: 'image/jpeg' }))
        expect((await fetch(`${capped.url}/upload?source=${source}`, { method: 'POST', body: form })).status).toBe(200)
      }
      const droppedForLimit = async () => Number(/lln_outbox_dropped_total\{queue="normal",reason="limit"\} (\d+)/.exec(await (await fetch(`${capped.url}/metrics`)).text())?.[1] ?? 0)
      for (const n of [1, 2, 3]) await upload(chelseaJpeg, `chelsea-${n}`)
      expect(await droppedForLimit()).toBe(0)
      await upload(chelseaJpeg, 'chelsea-4') // the item cap: chelsea-1 goes
      expect(await droppedForLimit()).toBe(1)
      await upload(coffeeJpeg, 'coffee-1') // the item cap again: chelsea-2 goes
      expect(await droppedForLimit()).toBe(2)
      await upload(coffeeJpeg, 'coffee-2') // the items cap takes chelsea-3, the byte cap chelsea-4 too
      expect(await droppedForLimit()).toBe(4)
      expect(capped.outbox.count()).toBe(2)
      expect(capped.outbox.bytes()).toBeLessThanOrEqual(maxBytes)
    } finally {
      await capped.stop()
    }
  })
})

describe('a Loop without a project', () => {
  test('LOOP_HOST without LOOP_ORGANIZATION/LOOP_PROJECT is a startup error naming them (it polled /api//projects// before)', async () => {
    const folder = join(testLoop.folder, 'no-project-detector')
    const refused = startTestDetector(loop.url, folder, { LOOP_ORGANIZATION: '', LOOP_PROJECT: '' })
    await expect(refused).rejects.toThrow('LOOP_ORGANIZATION and LOOP_PROJECT must be set when LOOP_HOST is')
    const result = await runNodeCommand(['detector', '--port', '0', '--bind', '127.0.0.1', '--data', folder, '--loop-host', loop.url])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('learning-loop-node detector: LOOP_ORGANIZATION and LOOP_PROJECT must be set when LOOP_HOST is')
  })
})
