import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { findFfmpeg } from '../../src/detector/cameras/ffmpeg-process.ts'
import { spawnChild, type Child } from './child-process.ts'
import { freePort } from './node-process.ts'
import { waitFor } from './temp.ts'

/**
 * Real camera sources for the camera tests: an RTSP server (Debian's librtsp-server-perl) fed by ffmpeg with a
 * video of test/fixtures/astronaut.jpg, an HTTP MJPEG server, and video files made from the same photo.
 */
export const ASTRONAUT = join(import.meta.dir, '../fixtures/astronaut.jpg')
const RTSP_SERVER_SCRIPT = join(import.meta.dir, 'rtsp-server.pl')

export const FFMPEG = findFfmpeg()
export const HAS_RTSP_SERVER = spawnSync('perl', ['-MRTSP::Server', '-e', '1'], { stdio: 'ignore' }).status === 0

/** Why the camera tests cannot run here, or undefined when they can. */
export function missingCameraTools(): string | undefined {
  if (!FFMPEG) return 'ffmpeg is not installed (apt-get install -y ffmpeg)'
  if (!HAS_RTSP_SERVER) return 'the RTSP server module is not installed (apt-get install -y librtsp-server-perl)'
  return undefined
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

export interface RtspSource {
  /** where a camera reads the stream */
  url: string
  /** the server and its publisher run (again, on the same ports) */
  start(): Promise<void>
  /** the server and its publisher are gone */
  stop(): Promise<void>
}

/** An RTSP server on free ports with ffmpeg publishing the astronaut at `fps` frames per second as H.264. */
export async function startRtspSource(options: { fps?: number; width?: number; height?: number } = {}): Promise<RtspSource> {
  const clientPort = freePort()
  const sourcePort = freePort()
  // RTP over UDP: an even port of its own per server, so servers of parallel test files do not collide
  const rtpPort = 20_000 + 2 * Math.floor(Math.random() * 15_000)
  const path = 'astronaut'
  let server: Child | undefined
  let publisher: Child | undefined
  const source: RtspSource = {
    url: `rtsp://127.0.0.1:${clientPort}/${path}`,
    async start() {
      server = spawnChild(['perl', RTSP_SERVER_SCRIPT, String(clientPort), String(sourcePort), String(rtpPort)])
      await waitFor(() => portAccepts(sourcePort), 10_000, 'the RTSP server')
      publisher = spawnChild([
        FFMPEG!, '-hide_banner', '-loglevel', 'warning', '-re', '-loop', '1', '-i', ASTRONAUT,
        '-r', String(options.fps ?? 10), '-vf', `scale=${options.width ?? 320}:${options.height ?? 320}`,
        '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(options.fps ?? 10), '-pix_fmt', 'yuv420p',
        '-f', 'rtsp', `rtsp://127.0.0.1:${sourcePort}/${path}`,
      ])
      // the stream is announced once the publisher's first packets are out
      await sleep(500)
    },
    async stop() {
      await publisher?.kill('SIGKILL')
      await server?.kill('SIGKILL')
      publisher = undefined
      server = undefined
    },
  }
  await source.start()
  return source
}

/** A video file of the astronaut (H.264 in MP4): `seconds` long at `fps`. */
export function makeAstronautVideo(path: string, options: { seconds: number; fps: number; width?: number; height?: number }): void {
  const result = spawnSync(FFMPEG!, [
    '-hide_banner', '-loglevel', 'error', '-y', '-loop', '1', '-i', ASTRONAUT, '-t', String(options.seconds), '-r', String(options.fps),
    '-vf', `scale=${options.width ?? 320}:${options.height ?? 320}`, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', path,
  ], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`ffmpeg could not make ${path}: ${result.stderr}`)
}

export interface MjpegServer {
  url: string
  stop(): Promise<void>
}

/** An HTTP MJPEG camera (multipart/x-mixed-replace) sending the astronaut JPEG `fps` times a second. */
export async function startMjpegServer(fps = 10): Promise<MjpegServer> {
  const jpeg = readFileSync(ASTRONAUT)
  const boundary = 'astronautframe'
  const clients = new Set<ServerResponse>()
  const server: Server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': `multipart/x-mixed-replace; boundary=${boundary}`, 'cache-control': 'no-store' })
    clients.add(response)
    request.on('close', () => clients.delete(response))
  })
  const timer = setInterval(() => {
    for (const client of clients) {
      client.write(`--${boundary}\r\ncontent-type: image/jpeg\r\ncontent-length: ${jpeg.length}\r\n\r\n`)
      client.write(jpeg)
      client.write('\r\n')
    }
  }, 1000 / fps)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}/stream.mjpg`,
    async stop() {
      clearInterval(timer)
      for (const client of clients) client.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
