/**
 * Camera benchmark: N cameras (default 4) × F fps (default 15) at 640×480, each an ffmpeg child reading a looped
 * H.264 file of the astronaut at its own pace (as an IP camera sends), detected with the built-in model.
 * Reports frames detected / offered, frames dropped (latest frame wins), the event loop's worst stall, RSS at the
 * start and end of the run, and the camera path's throughput against POST /detect with the same frames (as JPEG,
 * 4 keep-alive clients): the cameras are offered the rate REST reached and the bench counts what they detected.
 * Usage: bun scripts/bench-cameras.ts [--cameras N] [--fps F] [--seconds S]
 * Progress goes to stderr, results to stdout.
 */
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadNodeConfig } from '../src/config/node-config.ts'
import type { CameraStatus } from '../src/contract/index.ts'
import { findFfmpeg, FFMPEG_INSTALL_HINT, runningFfmpegGroups } from '../src/detector/cameras/ffmpeg-process.ts'
import { DetectorNode } from '../src/detector/detector-node.ts'
import { parseLevel, setLogLevel } from '../src/foundation/log.ts'
import { LocalLoop } from '../src/local-loop/local-loop.ts'
import { makeTempDir } from '../test/support/temp.ts'
import { multipartRequest, RawHttpClient } from './raw-http-client.ts'

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1]! : fallback
}
const cameraCount = Number(argument('cameras', '4'))
const fps = Number(argument('fps', '15'))
const seconds = Number(argument('seconds', '20'))
const WIDTH = 640
const HEIGHT = 480
const progress = (text: string) => process.stderr.write(`${text}\n`)

const ffmpeg = findFfmpeg()
if (!ffmpeg) {
  console.error(FFMPEG_INSTALL_HINT)
  process.exit(1)
}
setLogLevel(parseLevel(process.env.LOG_LEVEL) ?? 'warn')
const temp = await makeTempDir('lln-bench-cameras-')
const video = join(temp.path, 'astronaut.mp4')
const made = spawnSync(ffmpeg, [
  '-hide_banner', '-loglevel', 'error', '-y', '-loop', '1', '-i', join(import.meta.dir, '../test/fixtures/astronaut.jpg'), '-t', '4', '-r', '60',
  '-vf', `scale=${WIDTH}:${HEIGHT}`, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', video,
], { encoding: 'utf8' })
if (made.status !== 0) throw new Error(`ffmpeg could not make the video: ${made.stderr}`)

const loop = await LocalLoop.start({ dataFolder: join(temp.path, 'loop'), port: 0, hostname: '127.0.0.1' })
const detector = await DetectorNode.start({
  config: loadNodeConfig({ LOOP_HOST: loop.url, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', DATA_FOLDER: join(temp.path, 'detector'), PORT: '0', BIND_HOST: '127.0.0.1', INFERENCE_BACKEND: 'cpu', VERSION_CONTROL_DEFAULT: 'pause' }),
})
while (!detector.active.logic) await Bun.sleep(100)

const putCameras = async (perCameraFps: number, enabled = true, count = cameraCount) => {
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${detector.url}/cameras/cam${i}`, {
      method: 'PUT', body: JSON.stringify({ url: video, fps: perCameraFps, width: WIDTH, height: HEIGHT, loop: true, autoupload: 'disabled', enabled }),
    })
    if (!response.ok) throw new Error(`PUT /cameras/cam${i}: ${response.status} ${await response.text()}`)
  }
}
const cameras = async () => (await (await fetch(`${detector.url}/cameras`)).json()) as CameraStatus[]
const totals = (list: CameraStatus[]) => list.reduce((sum, c) => ({
  received: sum.received + c.frames_received, detected: sum.detected + c.frames_detected, dropped: sum.dropped + c.frames_dropped,
}), { received: 0, detected: 0, dropped: 0 })
const untilStreaming = async () => {
  const deadline = Date.now() + 30_000
  while (!(await cameras()).every((c) => !c.config.enabled || c.state === 'streaming')) {
    if (Date.now() > deadline) throw new Error(`cameras not streaming: ${JSON.stringify((await cameras()).map((c) => [c.id, c.state, c.error]))}`)
    await Bun.sleep(100)
  }
}

/** The lateness of a 10 ms timer while `work` runs: how long the event loop was blocked (p99 and worst). */
async function withStallProbe(work: () => Promise<void>): Promise<{ p99: number; worst: number }> {
  const lateness: number[] = []
  let expected = performance.now() + 10
  const timer = setInterval(() => {
    const now = performance.now()
    lateness.push(Math.max(0, now - expected))
    expected = now + 10
  }, 10)
  try {
    await work()
  } finally {
    clearInterval(timer)
  }
  lateness.sort((a, b) => a - b)
  return { p99: lateness[Math.floor(lateness.length * 0.99)] ?? 0, worst: lateness.at(-1) ?? 0 }
}
const stallText = (s: { p99: number; worst: number }) => `p99 ${s.p99.toFixed(1)} ms, worst ${s.worst.toFixed(1)} ms`

/** CPU time of this process's ffmpeg children so far (/proc), ms. */
function ffmpegCpuMs(): number {
  let ticks = 0
  for (const pid of runningFfmpegGroups()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // gone
    }
  }
  return ticks * 10
}
const rssMiB = () => process.memoryUsage().rss / 1048576
console.log(`camera bench: ${cameraCount} cameras × ${fps} fps at ${WIDTH}×${HEIGHT}, built-in model (${detector.active.logic!.backend}), ${navigator.hardwareConcurrency} cores, ${seconds} s, Bun ${Bun.version}`)

progress('event loop of the idle detector…')
const idleStall = await withStallProbe(() => Bun.sleep(Math.min(seconds, 5) * 1000))

progress('cameras at the configured rate…')
await putCameras(fps)
await untilStreaming()
await Bun.sleep(2_000) // warm-up: first frames, JIT
const before = totals(await cameras())
const rssStart = rssMiB()
const rssSamples: number[] = []
const stall = await withStallProbe(async () => {
  const end = performance.now() + seconds * 1000
  while (performance.now() < end) {
    await Bun.sleep(1_000)
    rssSamples.push(rssMiB())
  }
})
const after = totals(await cameras())
const offered = after.received - before.received
const detected = after.detected - before.detected
const dropped = after.dropped - before.dropped
const reconnects = (await cameras()).reduce((sum, c) => sum + c.reconnects, 0)
console.log(`offered ${offered} frames (${(offered / seconds).toFixed(1)}/s, configured ${cameraCount * fps}/s), detected ${detected} (${(detected / seconds).toFixed(1)}/s), detected/offered ${(detected / Math.max(1, offered)).toFixed(3)}, dropped ${dropped}, reconnects ${reconnects}`)
console.log(`event loop stall: ${stallText(stall)} with the cameras, ${stallText(idleStall)} idle; RSS ${rssStart.toFixed(0)} MiB at the start, ${rssMiB().toFixed(0)} MiB at the end (min ${Math.min(...rssSamples).toFixed(0)}, max ${Math.max(...rssSamples).toFixed(0)})`)

// throughput against POST /detect: in each round the REST path runs flat out with 4 clients, then the cameras offer
// that same rate (split over them) and the round counts what the camera path detected of it (the machine's load
// drifts, so the two alternate)
const rounds = 3
const window = Math.max(2, Math.min(seconds, 12) / rounds)
const frameJpeg = join(temp.path, 'frame.jpg')
// the same frame as a client would send it: the video's frame, encoded as JPEG
spawnSync(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-i', video, '-frames:v', '1', '-q:v', '3', frameJpeg])
const request = multipartRequest('/detect', 'file', new Uint8Array(await readFile(frameJpeg)), { autoupload: 'disabled' })
const connections = await Promise.all(Array.from({ length: 4 }, () => RawHttpClient.open(detector.url)))
const coresOf = (usage: NodeJS.CpuUsage) => ((usage.user + usage.system) / 1000 / (window * 1000)).toFixed(2)
let cameraDetected = 0
let restAnswered = 0
await putCameras(fps, false)
for (let round = 1; round <= rounds; round++) {
  const restCpuFrom = process.cpuUsage()
  const restEnd = performance.now() + window * 1000
  let answered = 0
  await Promise.all(connections.map(async (connection) => {
    while (performance.now() < restEnd) {
      const { status } = await connection.send(request)
      if (status !== 200) throw new Error(`detect answered ${status}`)
      answered++
    }
  }))
  const restCpu = coresOf(process.cpuUsage(restCpuFrom))
  restAnswered += answered
  // as many cameras as it takes to offer that rate at no more than 30 fps each
  const used = Math.max(cameraCount, Math.ceil(answered / window / 30))
  const perCamera = Math.round((answered / window / used) * 10) / 10
  await putCameras(perCamera, true, used)
  await untilStreaming()
  await Bun.sleep(2_000) // a file camera starts with a burst
  const from = totals(await cameras())
  const cpuFrom = process.cpuUsage()
  const ffmpegFrom = ffmpegCpuMs()
  await Bun.sleep(window * 1000)
  const to = totals(await cameras())
  const cameraCpu = coresOf(process.cpuUsage(cpuFrom))
  const ffmpegCores = ((ffmpegCpuMs() - ffmpegFrom) / (window * 1000)).toFixed(2)
  cameraDetected += to.detected - from.detected
  await putCameras(perCamera, false, used)
  console.log(`round ${round}: POST /detect ${(answered / window).toFixed(1)}/s (node ${restCpu} cores); cameras ${used} × ${perCamera} fps: offered ${((to.received - from.received) / window).toFixed(1)}/s, detected ${((to.detected - from.detected) / window).toFixed(1)}/s, dropped ${to.dropped - from.dropped} (node ${cameraCpu} cores, ffmpeg ${ffmpegCores} cores)`)
}
const cameraRate = cameraDetected / (rounds * window)
const restRate = restAnswered / (rounds * window)
console.log(`throughput: camera path ${cameraRate.toFixed(1)} detections/s at the rate POST /detect reached (${restRate.toFixed(1)}/s with 4 clients): ratio ${(cameraRate / restRate).toFixed(2)}×`)

for (const connection of connections) connection.close()
await detector.stop()
await loop.stop()
await temp.cleanup()
process.exit(0)
