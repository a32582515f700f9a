import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Socket } from 'socket.io-client'
import type { CameraDetections, CameraStatus } from '../../src/contract/index.ts'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import { makeAstronautVideo, missingCameraTools, startMjpegServer, startRtspSource, type MjpegServer, type RtspSource } from '../support/camera-sources.ts'
import { waitFor } from '../support/temp.ts'
import { connectDetectorClient, startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

setDefaultTimeout(120_000)

const missing = missingCameraTools()
if (missing) console.log(`skipping the camera tests: ${missing}`)

const FPS = 5
let testLoop: TestLoop
let detector: DetectorNode
let rtsp: RtspSource
let mjpeg: MjpegServer
let client: Socket | undefined
let videoPath: string

const camera = async (id: string): Promise<CameraStatus> => (await fetch(`${detector.url}/cameras/${id}`)).json() as Promise<CameraStatus>
const untilState = (id: string, states: string[], timeoutMs = 30_000) =>
  waitFor(async () => {
    const status = await camera(id)
    return states.includes(status.state) ? status : undefined
  }, timeoutMs, `camera ${id} in ${states.join('/')}`, 100)

beforeAll(async () => {
  if (missing) return
  testLoop = await startTestLoop()
  rtsp = await startRtspSource({ fps: 10 })
  mjpeg = await startMjpegServer(10)
  const video = join(testLoop.folder, 'astronaut.mp4')
  makeAstronautVideo(video, { seconds: 2, fps: 10 })
  videoPath = video
  const camerasFile = join(testLoop.folder, 'cameras.json')
  await writeFile(camerasFile, JSON.stringify({
    cameras: [
      { id: 'rtsp', url: rtsp.url, fps: FPS, tags: ['door'], autoupload: 'disabled' },
      { id: 'mjpeg', url: mjpeg.url, fps: 2, width: 256, autoupload: 'disabled' },
      { id: 'file', url: video, fps: 2, loop: true, autoupload: 'disabled' },
    ],
  }))
  // a pixel budget between the test cameras' frames (≤ 320×320) and the oversized one of the last test
  detector = await startTestDetector(testLoop.loop.url, join(testLoop.folder, 'detector'), { CAMERAS_FILE: camerasFile, MAX_IMAGE_PIXELS: '150000' }, {
    cameraTimings: { stallAfterMs: 2_000, connectTimeoutMs: 6_000, backoff: { initialMs: 300, maxMs: 2_000, jitter: 'equal' } },
  })
})

afterAll(async () => {
  client?.close()
  await detector?.stop()
  await rtsp?.stop()
  await mjpeg?.stop()
  await testLoop?.cleanup()
})

/** Detections of `id` over SSE while `during` runs. */
async function sseDetections(id: string, during: () => Promise<void>): Promise<CameraDetections[]> {
  const abort = new AbortController()
  const response = await fetch(`${detector.url}/cameras/${id}/events`, { signal: abort.signal })
  expect(response.headers.get('content-type')).toBe('text/event-stream')
  const events: CameraDetections[] = []
  const reading = (async () => {
    const decoder = new TextDecoder()
    let text = ''
    try {
      for await (const chunk of response.body!) {
        text += decoder.decode(chunk, { stream: true })
        const blocks = text.split('\n\n')
        text = blocks.pop()!
        for (const block of blocks) {
          const data = /^event: detections\ndata: (.*)$/m.exec(block)
          if (data) events.push(JSON.parse(data[1]!))
        }
      }
    } catch {
      // aborted
    }
  })()
  await during()
  abort.abort()
  await reading
  return events
}

test.skipIf(!!missing)('an RTSP camera: face detections arrive over socket.io and SSE at the configured fps', async () => {
  await untilState('rtsp', ['streaming'])
  client = await connectDetectorClient(detector.url)
  expect(await client.emitWithAck('join_camera', { camera_id: 'rtsp' })).toEqual({ status: 'OK' })
  const overSocket: CameraDetections[] = []
  client.on('detections', (detections: CameraDetections) => overSocket.push(detections))
  await sleep(1_000) // the first frames of a connection may come in a burst
  const windowMs = 5_000
  let started = 0
  const overSse = await sseDetections('rtsp', async () => {
    overSocket.length = 0
    started = performance.now()
    await sleep(windowMs)
  })
  const socketCount = overSocket.length
  const elapsed = (performance.now() - started) / 1000
  for (const [name, events] of [['socket.io', overSocket.slice(0, socketCount)], ['SSE', overSse]] as const) {
    const rate = events.length / elapsed
    expect(rate, `${name}: ${events.length} detections in ${elapsed.toFixed(1)} s`).toBeGreaterThanOrEqual(FPS * 0.8)
    expect(rate, `${name}: ${events.length} detections in ${elapsed.toFixed(1)} s`).toBeLessThanOrEqual(FPS * 1.2)
    for (const event of events) {
      expect(event.camera_id).toBe('rtsp')
      expect((event.detections.box_detections ?? []).map((b) => b.category_name)).toEqual(['face'])
      expect(event.detections.tags).toEqual(['door'])
    }
  }
  const status = await camera('rtsp')
  expect(status.frame_size).toEqual({ width: 320, height: 320 })
  expect(status.frames_detected).toBeGreaterThan(20)
  const metrics = await (await fetch(`${detector.url}/metrics`)).text()
  expect(metrics).toMatch(/lln_detector_camera_frames_total\{camera="rtsp",outcome="detected"\} [1-9]/)
  expect(metrics).toContain('lln_detector_camera_state{camera="rtsp",state="streaming"} 1')
  expect(((await (await fetch(`${detector.url}/status.json`)).json()) as { cameras: CameraStatus[] }).cameras.map((c) => c.id)).toEqual(['rtsp', 'mjpeg', 'file'])
})

test.skipIf(!!missing)('an HTTP MJPEG camera (scaled) and a looped video file stream and find the face', async () => {
  for (const id of ['mjpeg', 'file']) {
    await waitFor(async () => (await camera(id)).frames_detected >= 6, 30_000, `${id} detections`, 200)
    const frame = await fetch(`${detector.url}/cameras/${id}/frame.jpg`)
    expect(frame.headers.get('content-type')).toBe('image/jpeg')
  }
  expect((await camera('mjpeg')).frame_size).toEqual({ width: 256, height: 256 })
  expect((await camera('mjpeg')).detection_error).toBeNull()
  // `*`: the events of every camera on one stream
  const all = await sseDetections('*', () => sleep(2_500))
  expect(new Set(all.map((event) => event.camera_id))).toEqual(new Set(['rtsp', 'mjpeg', 'file']))
  // the 2 s file has been played more than once: looped, not reconnected
  const file = await camera('file')
  expect(file.frames_detected).toBeGreaterThanOrEqual(6)
  expect(file.reconnects).toBe(0)
})

test.skipIf(!!missing)('the RTSP server stops: the camera goes stalled and reconnects; it comes back without a restart of the node', async () => {
  await untilState('rtsp', ['streaming'])
  await rtsp.stop()
  const lost = await untilState('rtsp', ['stalled', 'connecting'], 15_000)
  expect(lost.state === 'connecting' || lost.error !== null).toBe(true)
  await waitFor(async () => (await camera('rtsp')).reconnects >= 2, 20_000, 'reconnect attempts', 200)
  const before = (await camera('rtsp')).frames_detected
  await rtsp.start()
  await untilState('rtsp', ['streaming'], 30_000)
  await waitFor(async () => (await camera('rtsp')).frames_detected > before + 5, 20_000, 'detections after the restart', 200)
})

test.skipIf(!!missing)('a camera with a bad URL says why and retries with backoff while the others keep streaming', async () => {
  const put = await fetch(`${detector.url}/cameras/broken`, { method: 'PUT', body: JSON.stringify({ url: 'rtsp://127.0.0.1:9/nothing', fps: 2 }) })
  expect(put.status).toBe(201)
  const broken = await waitFor(async () => {
    const status = await camera('broken')
    return status.error && status.reconnects >= 2 ? status : undefined
  }, 20_000, 'the broken camera retrying', 200)
  expect(broken.error).toMatch(/refused/i)
  const before = (await camera('mjpeg')).frames_detected
  await waitFor(async () => (await camera('mjpeg')).frames_detected > before + 3, 15_000, 'the MJPEG camera still detecting', 200)
  expect((await camera('mjpeg')).state).toBe('streaming')
  expect(await (await fetch(`${detector.url}/metrics`)).text()).toMatch(/lln_detector_camera_state\{camera="broken",state="(stalled|connecting)"\} 1/)
  expect((await fetch(`${detector.url}/cameras/broken`, { method: 'DELETE' })).status).toBe(200)
  expect((await fetch(`${detector.url}/cameras/broken`)).status).toBe(404)
  // a removed camera leaves no state behind in /metrics
  expect(await (await fetch(`${detector.url}/metrics`)).text()).not.toContain('lln_detector_camera_state{camera="broken"')
})

test.skipIf(!!missing)('changing a camera restarts that camera only; the same configuration again restarts nothing', async () => {
  await untilState('file', ['streaming'])
  const mjpegBefore = await camera('mjpeg')
  const fileBefore = await camera('file')
  const same = await fetch(`${detector.url}/cameras/mjpeg`, { method: 'PUT', body: JSON.stringify(mjpegBefore.config) })
  expect(same.status).toBe(200)
  const changed = await fetch(`${detector.url}/cameras/file`, { method: 'PUT', body: JSON.stringify({ ...fileBefore.config, fps: 3 }) })
  expect(changed.status).toBe(200)
  expect(((await changed.json()) as CameraStatus).config.fps).toBe(3)
  // the changed camera is a new stream (its counts start again); the other one kept streaming all along
  expect((await camera('file')).frames_received).toBeLessThan(fileBefore.frames_received)
  await untilState('file', ['streaming'])
  const mjpegAfter = await camera('mjpeg')
  expect(mjpegAfter.state).toBe('streaming')
  expect(mjpegAfter.frames_received).toBeGreaterThanOrEqual(mjpegBefore.frames_received)
  expect(mjpegAfter.reconnects).toBe(mjpegBefore.reconnects)
})

test.skipIf(!!missing)('cameras through REST and socket.io: bad fields are named, changes persist in the data folder', async () => {
  const bad = await fetch(`${detector.url}/cameras/x`, { method: 'PUT', body: JSON.stringify({ url: 'rtsp://h/x', fps: 'fast' }) })
  expect(bad.status).toBe(422)
  expect(((await bad.json()) as { detail: string }).detail).toContain('fps')
  const scheme = await fetch(`${detector.url}/cameras/x`, { method: 'PUT', body: JSON.stringify({ url: 'ftp://h/x' }) })
  expect(scheme.status).toBe(422)
  expect(((await scheme.json()) as { detail: string }).detail).toMatch(/^camera "x": url: scheme "ftp"/)
  // a NUL in an argument makes spawn throw at once: refused here, never handed to ffmpeg
  const nul = await fetch(`${detector.url}/cameras/x`, { method: 'PUT', body: JSON.stringify({ url: 'rtsp://127.0.0.1:9/a\u0000b' }) })
  expect(nul.status).toBe(422)
  expect(((await nul.json()) as { detail: string }).detail).toContain('url: ')
  expect((await fetch(`${detector.url}/health`)).status).toBe(200)
  const typo = await fetch(`${detector.url}/cameras/x`, { method: 'PUT', body: JSON.stringify({ url: '/v.mp4', fsp: 3 }) })
  expect(((await typo.json()) as { detail: string }).detail).toContain('fsp')
  client ??= await connectDetectorClient(detector.url)
  const added = await client.emitWithAck('put_camera', { camera_id: 'off', config: { url: '/nowhere.mp4', enabled: false } })
  expect(added.state).toBe('disabled')
  expect((await client.emitWithAck('cameras')).cameras.map((c: CameraStatus) => c.id)).toContain('off')
  expect(await client.emitWithAck('put_camera', { camera_id: 'y', config: { url: 'rtsp://h/y', fps: -1 } })).toEqual({ error: expect.stringContaining('fps') })
  const persisted = JSON.parse(await readFile(join(testLoop.folder, 'detector', 'cameras.json'), 'utf8'))
  expect(persisted.cameras.map((c: { id: string }) => c.id)).toEqual(['rtsp', 'mjpeg', 'file', 'off'])
  expect(await client.emitWithAck('delete_camera', 'off')).toEqual({ status: 'OK' })
})

test.skipIf(!!missing)('frames the model refuses (over MAX_IMAGE_PIXELS) leave the camera streaming with the reason in detection_error', async () => {
  expect((await fetch(`${detector.url}/cameras/huge`, { method: 'PUT', body: JSON.stringify({ url: videoPath, fps: 2, loop: true, width: 400, height: 400 }) })).status).toBe(201)
  const huge = await waitFor(async () => {
    const status = await camera('huge')
    return status.detection_error ? status : undefined
  }, 20_000, 'a refused frame', 200)
  expect(huge.state).toBe('streaming')
  expect(huge.detection_error).toMatch(/160000|400×400|400x400/)
  expect(huge.frames_detected).toBe(0)
  expect(await (await fetch(`${detector.url}/metrics`)).text()).toMatch(/lln_detector_camera_frames_total\{camera="huge",outcome="failed"\} [1-9]/)
  expect((await fetch(`${detector.url}/cameras/huge`, { method: 'DELETE' })).status).toBe(200)
})
