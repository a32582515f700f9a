/**
 * Acceptance 1: the same tiny model gives the same outputs on cpu, wasm and webgpu (SwiftShader in CI);
 * cuda is rejected with a clear reason; auto lands on webgpu-native when a Vulkan driver is configured, else cpu.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { mkdir, readdir, writeFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { findMismatch } from '../../src/inference/backend-verification.ts'
import { makeTempDir } from '../support/temp.ts'

/** chromium's SwiftShader Vulkan driver; SWIFTSHADER_ICD names another copy (say, unpacked from the .deb) */
const SWIFTSHADER_ICD = process.env.SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json'

let temp: Awaited<ReturnType<typeof makeTempDir>>
beforeAll(async () => { temp = await makeTempDir('lln-backends-') })
afterAll(async () => { await temp.cleanup() })

function runProbe(request: Record<string, unknown>, env: Record<string, string> = {}): Record<string, any> {
  const child = Bun.spawnSync([process.execPath, join(import.meta.dir, 'backend-probe.ts'), JSON.stringify(request)], {
    env: { ...process.env, XDG_CACHE_HOME: join(temp.path, 'cache'), XDG_RUNTIME_DIR: temp.path, LOG_LEVEL: 'error', ...env },
    stdout: 'pipe', stderr: 'pipe',
  })
  const lines = child.stdout.toString().trim().split('\n')
  if (child.exitCode !== 0) throw new Error(`probe failed (${child.exitCode}): ${child.stderr.toString().slice(-2000)}`)
  return JSON.parse(lines[lines.length - 1]!)
}

/** Why WebGPU cannot run with this Vulkan driver list (a child process: the loader reads it at start), or null. */
function webGpuUnavailableWith(icd: string): string | null {
  const child = Bun.spawnSync([process.execPath, join(import.meta.dir, 'backend-probe.ts'), JSON.stringify({ webGpuCheck: true })], {
    env: { ...process.env, VK_ICD_FILENAMES: icd }, stdout: 'pipe', stderr: 'pipe',
  })
  if (child.exitCode !== 0) throw new Error(`probe failed (${child.exitCode}): ${child.stderr.toString().slice(-2000)}`)
  return JSON.parse(child.stdout.toString().trim().split('\n').at(-1)!).webGpuUnavailable
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length)
  const mismatch = findMismatch(Float32Array.from(actual), Float32Array.from(expected))
  expect(mismatch).toBeUndefined()
}

// onnxruntime-web's wasm glue swaps `global.Worker` for node:worker_threads' when loaded on a thread, so
// every session here runs in a child process and the test process stays clean for the other files
describe('cpu and wasm', () => {
  test('the tiny model gives the same outputs on onnxruntime-node cpu and onnxruntime-web wasm', () => {
    const result = runProbe({ backends: ['cpu', 'wasm'] })
    expect(result.cpu.ok).toBe(true)
    expect(result.wasm.ok).toBe(true)
    expect(result.cpu.output.length).toBe(6 * 64)
    expect(result.cpu.output.some((v: number) => v !== 0)).toBe(true)
    expectClose(result.wasm.output, result.cpu.output)
  })

  test('the verification step accepts a backend that agrees and reports one that does not', () => {
    expect(runProbe({ verify: ['wasm'] })['verify-wasm']).toEqual({ ok: true })
    const reference = Float32Array.from([0.5, 0.25, 0.125])
    expect(findMismatch(reference, reference)).toBeUndefined()
    expect(findMismatch(Float32Array.from([0.5, 0.3, 0.125]), reference)).toContain('value 1 is')
    expect(findMismatch(Float32Array.from([0.5, Number.NaN, 0.125]), reference)).toContain('NaN')
    expect(findMismatch(Float32Array.from([0.5]), reference)).toContain('1 values')
  })
})

describe('cuda and ORT_LIB_DIR', () => {
  test('without ORT_LIB_DIR, cuda is rejected naming the missing libraries and the unset variable', () => {
    const result = runProbe({ ortLibDir: null, backends: ['cuda', 'cpu'] })
    expect(result.cudaProblem).toContain('ORT_LIB_DIR is not set')
    expect(result.cuda).toEqual({ ok: false, error: expect.stringContaining('libonnxruntime_providers_cuda.so') })
    expect(result.cpu.ok).toBe(true)
  })

  test('an ORT_LIB_DIR without providers is named in the reason', async () => {
    const empty = join(temp.path, 'empty-lib-dir')
    await mkdir(empty, { recursive: true })
    const result = runProbe({ ortLibDir: empty, backends: ['cuda'] })
    expect(result.cuda.error).toContain(`not found in ORT_LIB_DIR=${empty}`)
  })

  test('provider libraries in ORT_LIB_DIR are linked beside a cached copy of libonnxruntime, which then runs cpu', async () => {
    const libDir = join(temp.path, 'fake-cuda')
    await mkdir(libDir, { recursive: true })
    for (const name of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']) await writeFile(join(libDir, name), 'not a real library')
    const result = runProbe({ ortLibDir: libDir, backends: ['cuda', 'cpu'] })
    const cacheDir: string = result.library.providerDir
    expect(cacheDir.startsWith(join(temp.path, 'cache', 'learning-loop-node', 'ort-'))).toBe(true)
    expect(result.library.libraryPath).toBe(join(cacheDir, 'libonnxruntime.so.1'))
    expect(result.cudaProblem).toBeNull()
    expect((await readdir(cacheDir)).sort()).toEqual(['libonnxruntime.so.1', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'])
    expect(await readlink(join(cacheDir, 'libonnxruntime_providers_cuda.so'))).toBe(join(libDir, 'libonnxruntime_providers_cuda.so'))
    // ORT really looked there: it tried to load our fake provider and said why it failed
    expect(result.cuda.ok).toBe(false)
    expect(result.cuda.error).not.toContain('not found in ORT_LIB_DIR')
    expect(result.cpu.ok).toBe(true)
    // a second start reuses the cache (same size: no copy) and still works
    expect(runProbe({ ortLibDir: libDir, backends: ['cpu'] }).cpu.ok).toBe(true)
  })
})

describe('webgpu through SwiftShader', () => {
  // what is missing decides: chromium brings the SwiftShader driver, libvulkan1 the loader that must find it
  const missing = existsSync(SWIFTSHADER_ICD) ? webGpuUnavailableWith(SWIFTSHADER_ICD) : `${SWIFTSHADER_ICD} not found (apt-get install -y chromium)`
  if (missing) console.log(`skipping the WebGPU-through-SwiftShader test: ${missing}`)

  test.skipIf(Boolean(missing))('webgpu (onnxruntime-web + dawn.node) and webgpu-native agree with cpu; auto lands on webgpu-native', () => {
    const result = runProbe({ backends: ['cpu', 'webgpu', 'webgpu-native'], engineDir: join(temp.path, 'webgpu-model') }, { VK_ICD_FILENAMES: SWIFTSHADER_ICD })
    expect(result.cpu.ok).toBe(true)
    expect(result.webgpu).toMatchObject({ ok: true })
    expect(result['webgpu-native']).toMatchObject({ ok: true })
    expectClose(result.webgpu.output, result.cpu.output)
    expectClose(result['webgpu-native'].output, result.cpu.output)
    expect(result.engine.backend).toBe('webgpu-native')
    expect(result.engine.rejected.map((r: { backend: string }) => r.backend)).toEqual(['cuda'])
    // 128×64 into the 64×64 letterbox: the planted box (12,18)-(28,30) maps to (24,4) 32×24
    expect(result.engine.boxes).toEqual([expect.objectContaining({ category_name: 'class0', x: 24, y: 4, width: 32, height: 24 })])
  }, 120_000)

  test('without a Vulkan driver, webgpu is rejected with its reason and auto lands on cpu', () => {
    const result = runProbe({ engineDir: join(temp.path, 'cpu-model') }, { VK_ICD_FILENAMES: join(temp.path, 'no-such-icd.json') })
    expect(result.engine.backend).toBe('cpu')
    expect(result.engine.rejected.map((r: { backend: string }) => r.backend)).toEqual(['cuda', 'webgpu-native', 'webgpu'])
    expect(result.engine.rejected[0].reason).toContain('ORT_LIB_DIR')
    // asked of the Vulkan loader before Dawn starts: no loader installed, or (with one) no driver behind it
    for (const rejection of result.engine.rejected.slice(1)) expect(rejection.reason).toMatch(/^WebGPU unavailable: (the Vulkan loader libvulkan\.so\.1 is not installed|no Vulkan driver)/)
    expect(result.engine.boxes).toEqual([expect.objectContaining({ x: 24, y: 4, width: 32, height: 24 })])
  })
})
