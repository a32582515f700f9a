import { describe, expect, test } from 'bun:test'
import { CameraConfigError, cameraSourceOf, parseCameraConfig, parseCamerasFile } from '../../src/detector/cameras/camera-config.ts'
import { initialCameraState, nextCameraState, watchdogVerdict, type CameraState, type CameraTimings } from '../../src/detector/cameras/camera-state.ts'
import { FfmpegLog, ffmpegArguments, withoutCredentials } from '../../src/detector/cameras/ffmpeg-arguments.ts'
import { FrameAssembler, FramePool, FrameSlot } from '../../src/detector/cameras/frame-slot.ts'

const timings: CameraTimings = { stallAfterMs: 3_000, connectTimeoutMs: 10_000, backoff: { initialMs: 1_000, maxMs: 8_000, jitter: 'equal' } }

describe('camera configuration', () => {
  test('defaults are filled in and sources recognised', () => {
    expect(parseCameraConfig({ id: 'door', url: 'rtsp://cam/stream' })).toEqual({ id: 'door', url: 'rtsp://cam/stream', fps: 5, tags: [], enabled: true, loop: false })
    expect(cameraSourceOf('rtsps://cam/s').kind).toBe('rtsp')
    expect(cameraSourceOf('https://cam/video.mjpg').kind).toBe('http')
    expect(cameraSourceOf('/dev/video2')).toEqual({ kind: 'v4l2', device: '/dev/video2' })
    expect(cameraSourceOf('/videos/a b.mp4')).toEqual({ kind: 'file', path: '/videos/a b.mp4' })
    expect(cameraSourceOf('file:///videos/a%20b.mp4')).toEqual({ kind: 'file', path: '/videos/a b.mp4' })
  })

  test('a bad entry is refused with the field named', () => {
    const refusal = (raw: unknown) => {
      try {
        parseCameraConfig(raw)
      } catch (error) {
        expect(error).toBeInstanceOf(CameraConfigError)
        return (error as Error).message
      }
      throw new Error('accepted')
    }
    expect(refusal({ id: 'a', url: 'rtsp://x', fps: 0 })).toContain('fps')
    expect(refusal({ id: 'a', url: 'rtsp://x', width: 'wide' })).toContain('width')
    expect(refusal({ id: 'a b', url: 'rtsp://x' })).toContain('id')
    expect(refusal({ id: 'a' })).toContain('url: required field is missing')
    expect(refusal({ id: 'a', url: 'rtsp://x', autoupload: 'sometimes' })).toContain('autoupload')
    expect(refusal({ id: 'a', url: 'rtsp://x', fsp: 5 })).toContain('fsp')
    expect(refusal({ id: 'a', url: 'gopher://x' })).toContain('url: scheme "gopher"')
    expect(refusal({ id: 'a', url: 'relative.mp4' })).toContain('url: a video file must be an absolute path')
    expect(refusal({ id: 'a', url: '/dev/sda' })).toContain('not a V4L2 device')
    expect(refusal({ id: 'a', url: 'rtsp://x', loop: true })).toContain('loop: only a video file')
    expect(refusal({ id: 'a', url: 'rtsp://x/a\u0000b' })).toBe('camera "a": url: must not contain control characters')
    expect(refusal({ id: 'a', url: '/v.mp4\n' })).toContain('url: must not contain control characters')
  })

  test('a cameras file: JSON, the {cameras} shape, the entry named by index, unique ids', () => {
    expect(parseCamerasFile('{"cameras":[{"id":"a","url":"/v.mp4"}]}', 'c.json')).toHaveLength(1)
    expect(() => parseCamerasFile('{', 'c.json')).toThrow('c.json: not JSON')
    expect(() => parseCamerasFile('[]', 'c.json')).toThrow('expected {"cameras"')
    expect(() => parseCamerasFile('{"cameras":[{"id":"a","url":"/v.mp4"},{"id":"b","url":"/v.mp4","fps":-1}]}', 'c.json')).toThrow('c.json: cameras[1]: fps')
    expect(() => parseCamerasFile('{"cameras":[{"id":"a","url":"/v.mp4"},{"id":"a","url":"/w.mp4"}]}', 'c.json')).toThrow('cameras[1].id: "a" is used twice')
  })
})

describe('ffmpeg', () => {
  test('arguments: raw RGB to stdout at the camera fps and size; files at their own pace, looped when asked', () => {
    const rtsp = ffmpegArguments(parseCameraConfig({ id: 'a', url: 'rtsp://cam/s', fps: 4, width: 640 }))
    expect(rtsp.slice(rtsp.indexOf('-i'), rtsp.indexOf('-i') + 2)).toEqual(['-i', 'rtsp://cam/s'])
    expect(rtsp.slice(-10)).toEqual(['-an', '-sn', '-dn', '-vf', 'fps=4,scale=640:-2', '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1'])
    expect(ffmpegArguments(parseCameraConfig({ id: 'a', url: '/v.mp4', loop: true })).join(' ')).toContain('-re -stream_loop -1 -i /v.mp4 -an -sn -dn -vf fps=5 ')
    expect(ffmpegArguments(parseCameraConfig({ id: 'a', url: '/dev/video0' })).join(' ')).toContain('-f v4l2 -i /dev/video0')
  })

  test('its log tells the output frame size and the last complaint', () => {
    const log = new FfmpegLog()
    const lines = [
      "Input #0, rtsp, from 'rtsp://127.0.0.1:1/astronaut':",
      '  Stream #0:0: Video: h264 (Constrained Baseline), yuv420p(progressive), 320x320, 10 fps',
      "Output #0, rawvideo, to 'pipe:1':",
      '  Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24(pc, gbr/unknown/unknown, progressive), 256x192, q=2-31, 5 fps',
    ]
    expect(lines.map((line) => log.read(line))).toEqual([undefined, undefined, undefined, { width: 256, height: 192 }])
    log.read('rtsp://127.0.0.1:1/astronaut: Connection refused')
    log.read('video:13500kB audio:0kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: 0.000000%')
    expect(log.lastProblem).toBe('rtsp://127.0.0.1:1/astronaut: Connection refused')
    log.read('rtsp://admin:s3cret@10.0.0.5:554/stream1: 401 Unauthorized')
    expect(log.lastProblem).toBe('rtsp://***@10.0.0.5:554/stream1: 401 Unauthorized')
    expect(withoutCredentials('[tcp] http://u@h/x and rtsps://a:b@c/d')).toBe('[tcp] http://***@h/x and rtsps://***@c/d')
  })
})

describe('camera state', () => {
  const random = () => 1
  const lost = (state: CameraState, at: number) => nextCameraState(state, { type: 'lost', at, reason: 'gone' }, timings, random)
  const connect = (state: CameraState, at: number) => nextCameraState(state, { type: 'connect', at }, timings, random)

  test('connecting → streaming → stalled → connecting, with a growing, capped backoff reset by a frame', () => {
    let state = connect(initialCameraState(0, true), 0)
    expect(state.phase).toBe('connecting')
    state = nextCameraState(state, { type: 'frame', at: 100 }, timings, random)
    expect(state.phase).toBe('streaming')
    const delays: number[] = []
    for (let i = 0; i < 6; i++) {
      state = lost(state, 1_000 * i)
      expect(state.phase).toBe('stalled')
      delays.push(state.retryAt! - 1_000 * i)
      state = connect(state, state.retryAt!)
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000])
    expect(state.reconnects).toBe(6)
    state = nextCameraState(state, { type: 'frame', at: 99_000 }, timings, random)
    expect(state.failures).toBe(0)
    expect(lost(state, 100_000).retryAt).toBe(101_000)
  })

  test('the backoff is jittered (equal jitter: between half and all of the delay)', () => {
    const streaming = nextCameraState(connect(initialCameraState(0, true), 0), { type: 'frame', at: 1 }, timings, random)
    const low = nextCameraState(streaming, { type: 'lost', at: 0, reason: 'x' }, timings, () => 0)
    expect(low.retryAt).toBe(500)
  })

  test('the watchdog: no first frame in time, or no frame for a while; a loss of a stalled camera changes nothing', () => {
    const connecting = connect(initialCameraState(0, true), 0)
    expect(watchdogVerdict(connecting, 9_999, timings)).toBeUndefined()
    expect(watchdogVerdict(connecting, 10_000, timings)).toBe('no frame within 10 s of connecting')
    const streaming = nextCameraState(connecting, { type: 'frame', at: 1_000 }, timings, random)
    expect(watchdogVerdict(streaming, 3_999, timings)).toBeUndefined()
    expect(watchdogVerdict(streaming, 4_000, timings)).toBe('no frame for 3 s')
    const stalled = lost(streaming, 5_000)
    expect(lost(stalled, 6_000)).toBe(stalled)
    expect(watchdogVerdict(stalled, 60_000, timings)).toBeUndefined()
    expect(initialCameraState(0, false).phase).toBe('disabled')
  })
})

describe('frames', () => {
  test('latest frame wins: a frame nobody took is replaced (handed back to be used again) and counted as dropped', async () => {
    const slot = new FrameSlot<number>()
    expect(slot.offer(1)).toBeUndefined()
    expect(slot.offer(2)).toBe(1)
    expect(slot.offer(3)).toBe(2)
    expect(await slot.take()).toBe(3)
    expect(slot.dropped).toBe(2)
    const waiting = slot.take()
    expect(slot.offer(4)).toBeUndefined()
    expect(await waiting).toBe(4)
    const pending = slot.take()
    slot.close()
    expect(await pending).toBeUndefined()
    expect(slot.offer(5)).toBe(5)
    expect(await slot.take()).toBeUndefined()
  })

  test('frame buffers are used again: shared memory, one size, a few kept', () => {
    const pool = new FramePool(12, 2)
    const a = pool.acquire()
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer)
    expect(a.length).toBe(12)
    pool.release(a)
    pool.release(a)
    expect(pool.acquire()).toBe(a)
    const [b, c, d] = [pool.acquire(), pool.acquire(), pool.acquire()]
    for (const frame of [b, c, d]) pool.release(frame)
    pool.release(new Uint8Array(new SharedArrayBuffer(8)))
    const again = new Set([pool.acquire(), pool.acquire()])
    expect(again).toEqual(new Set([b, c]))
    expect([b, c, d]).not.toContain(pool.acquire())
  })

  test('a byte stream is cut into whole frames whatever its chunks', () => {
    const assembler = new FrameAssembler(4)
    const frames: number[][] = []
    const bytes = Uint8Array.from({ length: 11 }, (_, i) => i)
    for (const [from, to] of [[0, 3], [3, 9], [9, 10], [10, 11]] as const) assembler.push(bytes.subarray(from, to), (frame) => frames.push([...frame]))
    expect(frames).toEqual([[0, 1, 2, 3], [4, 5, 6, 7]])
    assembler.push(Uint8Array.of(11), (frame) => frames.push([...frame]))
    expect(frames[2]).toEqual([8, 9, 10, 11])
  })
})
