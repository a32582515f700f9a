/**
 * The detector node and the `detect` command on Deno, started as their `deno task` in deno.json starts them
 * (the documented permission flags): `detect` finds what it finds on Bun; the detector with its embedded local
 * loop answers REST and socket.io (binary frames over WebSocket, and over long-polling), serves the status page,
 * uploads what it saw, and exits 0 on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { io as connect, type Socket } from 'socket.io-client'
import { decode, ImageMetadata, SOCKET_IO_PATH } from '../../src/contract/index.ts'
import { decodeImage } from '../../src/inference/image-decoding.ts'
import { nodeCommandLine, startNodeProcess, type NodeProcess } from '../support/node-process.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

const REPO = join(import.meta.dir, '..', '..')
const fixture = (name: string) => join(REPO, 'test', 'fixtures', name)
const astronautJpeg = new Uint8Array(readFileSync(fixture('astronaut.jpg')))

async function runToEnd(cmd: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(cmd, { cwd: REPO, env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { code, stdout, stderr }
}

let temp: { path: string; cleanup(): Promise<void> }
beforeAll(async () => {
  temp = await makeTempDir('lln-deno-detector-')
})
afterAll(async () => {
  await temp?.cleanup()
})

test('detect: the same detections as on Bun, with the permissions of `deno task detect`', async () => {
  const args = ['detect', fixture('astronaut.jpg'), fixture('coffee.jpg'), '--json', '--backend', 'cpu']
  const env = { PATH: '/usr/bin:/bin', HOME: join(temp.path, 'home-detect'), LOG_LEVEL: 'warn' }
  const [onDeno, onBun] = await Promise.all([runToEnd(nodeCommandLine('deno', args), env), runToEnd(nodeCommandLine('bun', args), env)])
  expect({ code: onDeno.code, stderr: onDeno.stderr }).toEqual({ code: 0, stderr: '' })
  expect(onBun.code).toBe(0)
  const lines = (text: string) => text.trim().split('\n').map((line) => decode(ImageMetadata, JSON.parse(line)))
  const [denoAstronaut, denoCoffee] = lines(onDeno.stdout)
  const [bunAstronaut, bunCoffee] = lines(onBun.stdout)
  expect(denoCoffee).toEqual(bunCoffee!)
  expect(denoAstronaut!.box_detections?.map((d) => d.category_name)).toEqual(['face'])
  // Bun decodes this JPEG at 1/4 scale (Bun.Image), Deno at full size: the same face, a pixel or so apart
  const [denoFace, bunFace] = [denoAstronaut!.box_detections![0]!, bunAstronaut!.box_detections![0]!]
  for (const key of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(denoFace[key] - bunFace[key])).toBeLessThanOrEqual(3)
  expect(Math.abs(denoFace.confidence - bunFace.confidence)).toBeLessThan(0.02)
  expect(denoAstronaut!.point_detections?.map((p) => p.category_name)).toEqual(bunAstronaut!.point_detections?.map((p) => p.category_name))
}, 60_000)

describe('the detector on Deno, with its embedded local loop', () => {
  let node: NodeProcess
  let loopUrl: string
  const clients: Socket[] = []
  beforeAll(async () => {
    node = await startNodeProcess(['detector'], {
      runtime: 'deno',
      env: { DATA_FOLDER: join(temp.path, 'detector'), HOME: join(temp.path, 'home-detector'), LOCAL_LOOP_PORT: '0', INFERENCE_BACKEND: 'cpu', LOG_LEVEL: 'info' },
    })
    loopUrl = await waitFor(() => /"msg":"local loop listening","url":"([^"]+)"/.exec(node.child.output())?.[1], 30_000, 'the embedded local loop')
    await waitFor(async () => (await fetch(`${node.url}/ready`)).ok, 30_000, `/ready (output: ${node.child.output().slice(-2000)})`)
  }, 90_000)
  afterAll(async () => {
    for (const client of clients) client.close()
    await node?.child.kill('SIGKILL')
  })

  const connected = async (transports: ('websocket' | 'polling')[]) => {
    const client = connect(node.url, { path: SOCKET_IO_PATH, transports, reconnection: false })
    clients.push(client)
    await waitFor(() => client.connected, 10_000, `socket.io over ${transports.join(', ')}`)
    return client
  }

  test('POST /detect finds the face; the status page is served', async () => {
    const form = new FormData()
    form.append('file', new File([astronautJpeg], 'astronaut.jpg', { type: 'image/jpeg' }))
    const response = await fetch(`${node.url}/detect`, { method: 'POST', body: form, headers: { autoupload: 'all', source: 'deno-rest' } })
    expect(response.status).toBe(200)
    const metadata = decode(ImageMetadata, await response.json())
    expect(metadata.box_detections?.map((d) => d.category_name)).toEqual(['face'])
    const page = await fetch(`${node.url}/`)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(await page.text()).toContain('<html')
  }, 30_000)

  test('socket.io detect with a raw frame and with JPEG bytes, over WebSocket and over long-polling', async () => {
    const rgb = await decodeImage({ kind: 'encoded', bytes: astronautJpeg })
    const frame = { bytes: rgb.data, dtype: 'uint8', shape: [rgb.height, rgb.width, 3] }
    for (const transports of [['websocket'], ['polling']] as ('websocket' | 'polling')[][]) {
      const client = await connected(transports)
      const raw = await client.timeout(15_000).emitWithAck('detect', { image: frame, autoupload: 'disabled', tags: ['deno'] })
      expect(raw.box_detections.map((d: { category_name: string }) => d.category_name)).toEqual(['face'])
      expect(raw.tags).toEqual(['deno'])
      const jpeg = await client.timeout(15_000).emitWithAck('detect', { image: astronautJpeg, autoupload: 'all', source: `deno-socket-${transports[0]}` })
      expect(jpeg.box_detections).toHaveLength(1)
    }
  }, 60_000)

  test('what it saw reaches the local loop; SIGTERM → exit 0', async () => {
    const sources = ['deno-rest', 'deno-socket-websocket', 'deno-socket-polling']
    await waitFor(async () => {
      const { images } = await (await fetch(`${loopUrl}/admin/projects/local/demo/images`)).json() as { images: { source: string | null }[] }
      return sources.every((source) => images.some((image) => image.source === source))
    }, 30_000, 'the three uploads in the local loop')
    for (const client of clients.splice(0)) client.close()
    node.child.proc.kill('SIGTERM')
    expect(await node.child.proc.exited).toBe(0)
  }, 60_000)
})
