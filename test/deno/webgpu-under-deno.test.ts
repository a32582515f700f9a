/**
 * The `webgpu` backend on Deno: onnxruntime-web on Deno's own `navigator.gpu` (no dawn.node), inside the
 * inference Worker, through SwiftShader (chromium's Vulkan driver on the CPU) as the Bun test does. The `detect`
 * command runs as `deno task detect` runs it. Under Deno `auto` tries webgpu first, checks it against the CPU,
 * and logs why each backend it passed over was rejected.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decode, ImageMetadata } from '../../src/contract/index.ts'
import { nodeCommandLine } from '../support/node-process.ts'
import { makeTempDir } from '../support/temp.ts'

const REPO = join(import.meta.dir, '..', '..')
const ASTRONAUT = join(REPO, 'test', 'fixtures', 'astronaut.jpg')
/** chromium's SwiftShader Vulkan driver; SWIFTSHADER_ICD names another copy */
const SWIFTSHADER_ICD = process.env.SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json'

let temp: { path: string; cleanup(): Promise<void> }
beforeAll(async () => { temp = await makeTempDir('lln-deno-webgpu-') })
afterAll(async () => { await temp?.cleanup() })

interface LogLine { msg?: string; backend?: string; backends?: string[]; reason?: string; rejected?: string[] }

async function detectOnDeno(backend: string, icd: string, extraEnv: Record<string, string> = {}) {
  const env = { PATH: '/usr/bin:/bin', HOME: join(temp.path, `home-${backend}`), LOG_LEVEL: 'info', VK_ICD_FILENAMES: icd, ...extraEnv }
  const proc = Bun.spawn(nodeCommandLine('deno', ['detect', ASTRONAUT, '--json', '--backend', backend]), { cwd: REPO, env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  if (code !== 0) throw new Error(`deno task detect --backend ${backend} exited ${code}:\n${stderr.slice(-3000)}`)
  const logs = stderr.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as LogLine)
  return { metadata: decode(ImageMetadata, JSON.parse(stdout.trim())), logs, chosen: logs.find((line) => line.msg === 'inference backend chosen') }
}

/** Why WebGPU cannot run with this driver list, asked of the Vulkan loader in a child (it reads the list at start), or null. */
function webGpuUnavailableWith(icd: string): string | null {
  const child = Bun.spawnSync([process.execPath, join(REPO, 'test', 'inference', 'backend-probe.ts'), JSON.stringify({ webGpuCheck: true })], {
    env: { ...process.env, VK_ICD_FILENAMES: icd }, stdout: 'pipe', stderr: 'pipe',
  })
  if (child.exitCode !== 0) throw new Error(`probe failed (${child.exitCode}): ${child.stderr.toString().slice(-2000)}`)
  return JSON.parse(child.stdout.toString().trim().split('\n').at(-1)!).webGpuUnavailable
}

describe('webgpu on Deno through SwiftShader', () => {
  const missing = existsSync(SWIFTSHADER_ICD) ? webGpuUnavailableWith(SWIFTSHADER_ICD) : `${SWIFTSHADER_ICD} not found (apt-get install -y chromium)`
  if (missing) console.log(`skipping the Deno WebGPU-through-SwiftShader test: ${missing}`)

  test.skipIf(Boolean(missing))('webgpu finds the astronaut\'s face as cpu does; auto chooses webgpu first, verified against the CPU', async () => {
    // the dynamic linker lists every library the webgpu run opens (in files of its own, apart from the log)
    const linkerLog = join(temp.path, 'linker-webgpu')
    const [webgpu, cpu, auto] = await Promise.all([
      detectOnDeno('webgpu', SWIFTSHADER_ICD, { LD_DEBUG: 'files', LD_DEBUG_OUTPUT: linkerLog }), detectOnDeno('cpu', SWIFTSHADER_ICD), detectOnDeno('auto', SWIFTSHADER_ICD),
    ])
    // Deno's WebGPU must not open OpenGL through EGL: Mesa's GL driver, unloaded by the ending worker while the
    // process exits, crashed about one run in twenty after the output (segfault or heap corruption)
    const opened = readdirSync(temp.path).filter((name) => name.startsWith('linker-webgpu.')).map((name) => readFileSync(join(temp.path, name), 'utf8')).join('')
    expect(opened).toContain('libvulkan.so.1')
    expect(opened.match(/file=\S*(?:libEGL|_dri\.so)\S*/g) ?? []).toEqual([])
    expect(webgpu.chosen).toMatchObject({ backend: 'webgpu', rejected: [] })
    expect(cpu.chosen).toMatchObject({ backend: 'cpu' })
    expect(webgpu.metadata.box_detections!.map((box) => box.category_name)).toEqual(['face'])
    const [onGpu, onCpu] = [webgpu.metadata.box_detections![0]!, cpu.metadata.box_detections![0]!]
    for (const key of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(onGpu[key] - onCpu[key])).toBeLessThanOrEqual(1)
    expect(Math.abs(onGpu.confidence - onCpu.confidence)).toBeLessThan(0.01)
    const points = (metadata: typeof cpu.metadata) => metadata.point_detections!.map((point) => [point.category_name, point.x, point.y] as const)
    for (const [index, [name, x, y]] of points(cpu.metadata).entries()) {
      const [gpuName, gpuX, gpuY] = points(webgpu.metadata)[index]!
      expect(gpuName).toBe(name)
      expect(Math.abs(gpuX - x) + Math.abs(gpuY - y)).toBeLessThanOrEqual(2)
    }
    // auto verifies a GPU backend against the CPU before it is chosen: webgpu passed, nothing before it was tried
    expect(auto.chosen).toMatchObject({ backend: 'webgpu', rejected: [] })
    expect(auto.metadata.box_detections!.map((box) => box.category_name)).toEqual(['face'])
  }, 120_000)
})

test('without a Vulkan driver, auto on Deno rejects webgpu, cuda and webgpu-native with their reasons and lands on cpu', async () => {
  const { chosen, logs, metadata } = await detectOnDeno('auto', join(temp.path, 'no-such-icd.json'))
  expect(chosen).toMatchObject({ backend: 'cpu', rejected: ['webgpu', 'cuda', 'webgpu-native'] })
  const reasons = new Map(logs.filter((line) => line.msg === 'inference backend rejected').flatMap((line) => line.backends!.map((backend) => [backend, line.reason!] as const)))
  expect(reasons.get('webgpu')).toMatch(/^WebGPU unavailable: (the Vulkan loader libvulkan\.so\.1 is not installed|no Vulkan driver)/)
  expect(reasons.get('webgpu-native')).toMatch(/^WebGPU unavailable: /)
  expect(reasons.get('cuda')).toContain('ORT_LIB_DIR')
  expect(metadata.box_detections!.map((box) => box.category_name)).toEqual(['face'])
}, 60_000)
