/**
 * Without Vulkan (no loader, or no driver), Dawn writes raw multi-line warnings to stderr whenever it starts.
 * The log must stay JSON lines, with the reason WebGPU is unavailable said once.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { join } from 'node:path'
import { makeTempDir } from '../support/temp.ts'

const root = join(import.meta.dir, '../..')
let temp: Awaited<ReturnType<typeof makeTempDir>>
beforeAll(async () => { temp = await makeTempDir('lln-no-vulkan-') })
afterAll(async () => { await temp.cleanup() })

function parseable(line: string): boolean {
  try {
    return typeof JSON.parse(line) === 'object'
  } catch {
    return false
  }
}

test('without Vulkan, detect writes only JSON lines on stderr and says once why WebGPU is unavailable', () => {
  // a driver list that names nothing: no Vulkan device whether or not the loader (libvulkan1) is installed
  const child = Bun.spawnSync([process.execPath, join(root, 'src/cli/main.ts'), 'detect', join(root, 'test/fixtures/astronaut.jpg'), '--json'], {
    env: { ...process.env, VK_ICD_FILENAMES: join(temp.path, 'no-such-icd.json'), LOG_LEVEL: 'info', LOG_FORMAT: '', XDG_CACHE_HOME: join(temp.path, 'cache') },
    stdout: 'pipe', stderr: 'pipe',
  })
  const stderr = child.stderr.toString()
  expect({ exitCode: child.exitCode, stderr: child.exitCode === 0 ? '' : stderr }).toEqual({ exitCode: 0, stderr: '' })
  expect(JSON.parse(child.stdout.toString()).box_detections.length).toBeGreaterThan(0)
  const lines = stderr.split('\n').filter((line) => line.trim() !== '')
  expect(lines.filter((line) => !parseable(line))).toEqual([])
  const aboutVulkan = lines.map((line) => JSON.parse(line)).filter((record) => JSON.stringify(record).includes('Vulkan'))
  expect(aboutVulkan).toEqual([expect.objectContaining({ level: 'info', msg: 'inference backend rejected', backends: ['webgpu-native', 'webgpu'] })])
  expect(aboutVulkan[0].reason).toMatch(/^WebGPU unavailable: (the Vulkan loader libvulkan\.so\.1 is not installed|no Vulkan driver)/)
})
