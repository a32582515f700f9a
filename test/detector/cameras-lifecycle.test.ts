import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import type { CameraStatus } from '../../src/contract/index.ts'
import { isProcessAlive } from '../../src/trainer/process-group.ts'
import { makeAstronautVideo, missingCameraTools, startMjpegServer, type MjpegServer } from '../support/camera-sources.ts'
import { runNodeCommand, startNodeProcess, type NodeProcess } from '../support/node-process.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

setDefaultTimeout(120_000)

const missing = missingCameraTools()
if (missing) console.log(`skipping the camera lifecycle tests: ${missing}`)

let testLoop: TestLoop
let mjpeg: MjpegServer
let camerasFile: string
/** accepts and never answers: its camera's ffmpeg waits without writing a byte, so no broken pipe would end it */
let silent: Server

beforeAll(async () => {
  if (missing) return
  testLoop = await startTestLoop()
  mjpeg = await startMjpegServer(5)
  silent = createServer(() => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const video = join(testLoop.folder, 'astronaut.mp4')
  makeAstronautVideo(video, { seconds: 2, fps: 5 })
  camerasFile = join(testLoop.folder, 'cameras.json')
  await writeFile(camerasFile, JSON.stringify({
    cameras: [
      { id: 'mjpeg', url: mjpeg.url, fps: 2, autoupload: 'all', tags: ['lifecycle'] },
      { id: 'file', url: video, fps: 2, loop: true, autoupload: 'disabled' },
      { id: 'silent', url: `http://127.0.0.1:${(silent.address() as { port: number }).port}/never`, fps: 2 },
    ],
  }))
})

afterAll(async () => {
  await mjpeg?.stop()
  silent?.closeAllConnections()
  silent?.close()
  await testLoop?.cleanup()
})

/** Process ids of the ffmpeg children of `parent` (by /proc: name and parent). */
function ffmpegChildrenOf(parent: number): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (command === 'ffmpeg' && ppid === parent && isProcessAlive(Number(name))) pids.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

async function startDetector(dataFolder: string, runtime: 'bun' | 'deno' = 'bun'): Promise<NodeProcess> {
  return startNodeProcess(['detector', '--cameras', camerasFile], {
    runtime,
    env: {
      LOOP_HOST: testLoop.loop.url, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', DATA_FOLDER: join(testLoop.folder, dataFolder),
      INFERENCE_BACKEND: 'cpu', INFERENCE_THREADS: '1', LOG_LEVEL: 'warn',
    },
  })
}

async function streamingFfmpegs(node: NodeProcess): Promise<number[]> {
  await waitFor(async () => {
    const cameras = (await (await fetch(`${node.url}/cameras`)).json()) as CameraStatus[]
    return cameras.length === 3 && cameras.filter((c) => c.state === 'streaming').length === 2
  }, 60_000, 'two cameras streaming', 200)
  const pids = ffmpegChildrenOf(node.child.proc.pid)
  expect(pids).toHaveLength(3)
  return pids
}

test.skipIf(!!missing)('kill -9 of the node leaves no ffmpeg process, not even one still connecting', async () => {
  const node = await startDetector('killed')
  try {
    const pids = await streamingFfmpegs(node)
    node.child.proc.kill('SIGKILL')
    await node.child.proc.exited
    await waitFor(() => pids.every((pid) => !isProcessAlive(pid)), 5_000, `ffmpeg ${pids.join(', ')} gone after kill -9 of the node`)
  } finally {
    await node.child.kill('SIGKILL')
  }
})

test.skipIf(!!missing)('SIGTERM: the node ends its ffmpeg children and exits 0; camera frames went to the Loop through the outbox', async () => {
  const node = await startDetector('terminated')
  let exited = false
  try {
    const pids = await streamingFfmpegs(node)
    // autoupload all: camera frames are encoded as JPEG once queued and uploaded with the camera's tag
    await waitFor(() => testLoop.loop.listImages('local', 'demo').some((image) => image.tags?.includes('lifecycle')), 30_000, 'a camera image in the Loop', 200)
    // a client following a camera's events does not hold the shutdown: its stream ends at once
    const events = await fetch(`${node.url}/cameras/mjpeg/events`)
    const reading = (async () => {
      for await (const _ of events.body!) {
        // keep reading until the node ends the stream
      }
    })().catch(() => undefined)
    const signalled = performance.now()
    node.child.proc.kill('SIGTERM')
    expect(await node.child.proc.exited).toBe(0)
    exited = true
    await reading
    expect(performance.now() - signalled).toBeLessThan(3_000)
    expect(pids.filter((pid) => isProcessAlive(pid))).toEqual([])
  } finally {
    if (!exited) await node.child.kill('SIGKILL')
  }
})

test.skipIf(!!missing)('on Deno (the detector task\'s permissions): cameras stream, SIGTERM ends their ffmpeg and the node exits 0', async () => {
  const node = await startDetector('deno', 'deno')
  let exited = false
  try {
    const pids = await streamingFfmpegs(node)
    node.child.proc.kill('SIGTERM')
    expect(await node.child.proc.exited).toBe(0)
    exited = true
    expect(pids.filter((pid) => isProcessAlive(pid))).toEqual([])
  } finally {
    if (!exited) await node.child.kill('SIGKILL')
  }
})

test.skipIf(!!missing)('a bad cameras file stops the start with a message naming the entry and the field (exit 2)', async () => {
  const bad = join(testLoop.folder, 'bad-cameras.json')
  await writeFile(bad, JSON.stringify({ cameras: [{ id: 'ok', url: '/v.mp4' }, { id: 'gate', url: 'rtsp://x/y', fps: 'often' }] }))
  const { code, stderr } = await runNodeCommand(['detector', '--cameras', bad, '--data', join(testLoop.folder, 'bad'), '--port', '0', '--bind', '127.0.0.1', '--loop-host', testLoop.loop.url, '--organization', 'local', '--project', 'demo'])
  expect(code).toBe(2)
  expect(stderr).toContain(`learning-loop-node detector: ${bad}: cameras[1]: fps: expected number`)
})
