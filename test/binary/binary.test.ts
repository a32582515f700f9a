/**
 * Issue 7, acceptance 1 and 2: the single executable. Builds once per source state (cached in
 * .cache/binary/ by a hash of the sources), copies the binary into an empty temp folder and runs it
 * there with a clean environment and, where the kernel allows, the repository covered by an empty tmpfs
 * in a private mount namespace, so it cannot read the repo or node_modules; /proc/<pid>/maps is checked
 * for repo paths as well.
 */
import { Transformer } from '@napi-rs/image'
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chmod, copyFile, mkdir, readdir, readFile, stat, utimes } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import packageJson from '../../package.json' with { type: 'json' }
import { LOOP_PAGE_FILES } from '../../src/local-loop/web-page.ts'
import { buildBinaryCached, embeddedAssetsModule, findWorkerModules, REPOSITORY_ROOT, type BuildResult } from '../../scripts/build-binary.ts'
import { decode, ImageMetadata } from '../../src/contract/index.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import { canHideFolder, mappedFiles, runIsolated, type IsolatedRun } from './isolated-process.ts'

const BUILD_TIMEOUT_MS = 300_000
const fixture = (name: string) => join(REPOSITORY_ROOT, 'test', 'fixtures', name)
const hideRepo = canHideFolder(REPOSITORY_ROOT) ? REPOSITORY_ROOT : undefined

let temp: { path: string; cleanup(): Promise<void> }
let built: BuildResult
let binary: string
let photos: string[]
const running: IsolatedRun[] = []

function cleanEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: '/usr/bin:/bin', HOME: home, LOG_LEVEL: 'info', ...extra }
}

function runBinary(args: string[], env: Record<string, string>): IsolatedRun {
  const run = runIsolated([binary, ...args], { cwd: temp.path, env, hiddenDir: hideRepo })
  running.push(run)
  return run
}

function parseJsonLines(lines: string[]): ImageMetadata[] {
  return lines.filter((line) => line.trim()).map((line) => decode(ImageMetadata, JSON.parse(line)))
}

beforeAll(async () => {
  if (!hideRepo) console.warn('binary test: unprivileged user namespaces are unavailable; the repo stays visible and only /proc/<pid>/maps is checked')
  built = await buildBinaryCached()
  temp = await makeTempDir('lln-binary-')
  binary = join(temp.path, 'learning-loop-node')
  await copyFile(built.outfile, binary)
  await chmod(binary, 0o755)
  await mkdir(join(temp.path, 'photos'))
  photos = []
  for (const name of ['astronaut.jpg', 'coffee.jpg']) {
    const copy = join(temp.path, 'photos', name)
    await copyFile(fixture(name), copy)
    // `created` in the output is the file's mtime; pin it so both runs print the same
    await utimes(copy, new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'))
    photos.push(copy)
  }
}, BUILD_TIMEOUT_MS)

afterAll(async () => {
  for (const run of running) run.process.kill('SIGKILL')
  await Promise.all(running.map((run) => run.exited.catch(() => undefined)))
  await temp?.cleanup()
})

describe('what the build puts in', () => {
  test('every Worker under src/ is an entrypoint, and each target embeds its own libonnxruntime', () => {
    const workers = findWorkerModules()
    expect(workers).toContain(join(REPOSITORY_ROOT, 'src', 'inference', 'inference-worker.ts'))
    const arm64 = embeddedAssetsModule('bun-linux-arm64', false)
    expect(arm64).toContain('/bin/napi-v6/linux/arm64/libonnxruntime.so.1')
    expect(arm64).not.toContain('/linux/x64/')
    expect(arm64).toContain('ortWebWebgpuWasm: undefined')
    expect(embeddedAssetsModule('bun-linux-x64', true)).toContain('ort-wasm-simd-threaded.asyncify.wasm')
    for (const file of LOOP_PAGE_FILES) expect(arm64).toContain(join('src', 'local-loop', 'web-page', file))
  })
})

describe('the binary, run from an empty folder without the repo', () => {
  test('--version prints the package version', async () => {
    const run = runBinary(['--version'], cleanEnv(join(temp.path, 'home-version')))
    expect(await run.exited).toBe(0)
    expect(run.stdout.join('\n').trim()).toBe(packageJson.version)
  })

  test('detect finds the same faces as from source; the embedded library and model are unpacked once', async () => {
    const home = join(temp.path, 'home-detect')
    const args = ['detect', ...photos, '--json', '--backend', 'cpu']
    const fromBinary = runBinary(args, cleanEnv(home))
    const fromSource = runIsolated([process.execPath, join(REPOSITORY_ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: REPOSITORY_ROOT, env: cleanEnv(join(temp.path, 'home-source')) })
    const [binaryCode, sourceCode] = await Promise.all([fromBinary.exited, fromSource.exited])
    expect({ code: binaryCode, stderr: fromBinary.stderr.filter((l) => l.includes('"error"')) }).toEqual({ code: 0, stderr: [] })
    expect(sourceCode).toBe(0)
    const binaryResults = parseJsonLines(fromBinary.stdout)
    expect(binaryResults).toHaveLength(2)
    expect(binaryResults).toEqual(parseJsonLines(fromSource.stdout))
    const [astronaut, coffee] = binaryResults
    expect(astronaut!.box_detections?.map((d) => d.category_name)).toEqual(['face'])
    expect(coffee!.box_detections).toEqual([])

    const cache = join(home, '.cache', 'learning-loop-node')
    const folders = (await readdir(cache)).sort()
    expect(folders).toEqual([expect.stringMatching(/^builtin-model-[0-9a-f]{12}$/), expect.stringMatching(/^ort-1\.30\.0-[0-9a-f]{12}$/)])
    const library = join(cache, folders[1]!, 'libonnxruntime.so.1')
    const shipped = join(REPOSITORY_ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', process.arch, 'libonnxruntime.so.1')
    expect((await stat(library)).size).toBe((await stat(shipped)).size)
    const model = join(cache, folders[0]!, 'model.onnx')
    expect(Bun.hash(await readFile(model))).toBe(Bun.hash(await readFile(join(REPOSITORY_ROOT, 'assets', 'builtin-model', 'model.onnx'))))

    const before = await stat(library)
    const again = runBinary(args, cleanEnv(home))
    expect(await again.exited).toBe(0)
    expect(parseJsonLines(again.stdout)).toEqual(binaryResults)
    const after = await stat(library)
    expect({ ino: after.ino, mtime: after.mtimeMs }).toEqual({ ino: before.ino, mtime: before.mtimeMs })
  })

  test('detector: /ready, POST /detect finds the face, the embedded local loop receives the upload, status page served, SIGTERM exits 0', async () => {
    const home = join(temp.path, 'home-detector')
    const run = runBinary(['detector'], cleanEnv(home, {
      DATA_FOLDER: join(temp.path, 'detector-data'), PORT: '0', BIND_HOST: '127.0.0.1', LOCAL_LOOP_PORT: '0', INFERENCE_BACKEND: 'cpu',
    }))
    const url = await waitFor(() => run.stdout.map((line) => /detector listening on (\S+)/.exec(line)?.[1]).find(Boolean), 30_000, `the detector's URL (stderr: ${run.stderr.slice(-3).join(' | ')})`)
    const loopUrl = await waitFor(() => run.stderr.map((line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string }
        return entry.msg === 'local loop listening' ? entry.url : undefined
      } catch {
        return undefined
      }
    }).find(Boolean), 30_000, 'the embedded local loop URL')
    await waitFor(async () => (await fetch(`${url}/ready`)).ok, 30_000, '/ready')

    const form = new FormData()
    form.append('file', new File([await readFile(photos[0]!)], 'astronaut.jpg', { type: 'image/jpeg' }))
    const response = await fetch(`${url}/detect`, { method: 'POST', body: form, headers: { autoupload: 'all' } })
    expect(response.status).toBe(200)
    const metadata = decode(ImageMetadata, await response.json())
    const [face, ...others] = metadata.box_detections ?? []
    expect(others).toEqual([])
    expect(face?.category_name).toBe('face')
    expect(face?.confidence).toBeGreaterThan(0.5)

    const page = await fetch(`${url}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(await page.text()).toContain('<html')
    // the API docs page is embedded too, and the document lists the detector's routes
    const docs = await fetch(`${url}/docs`)
    expect(docs.status).toBe(200)
    expect(await docs.text()).toContain('openapi.json')
    const openapi = await (await fetch(`${url}/openapi.json`)).json() as { paths: Record<string, unknown> }
    expect(Object.keys(openapi.paths)).toContain('/detect')

    const mapped = await mappedFiles(run.process.pid)
    expect(mapped.filter((path) => path.startsWith(REPOSITORY_ROOT + '/'))).toEqual([])
    expect(mapped.some((path) => path.startsWith(join(home, '.cache', 'learning-loop-node', 'ort-')) && path.endsWith('/libonnxruntime.so.1'))).toBe(true)

    const images = await waitFor(async () => {
      const listing = await (await fetch(`${loopUrl}/admin/projects/local/demo/images`)).json() as { images: { box_detections: number }[] }
      return listing.images.length > 0 ? listing.images : undefined
    }, 30_000, 'the upload in the embedded local loop')
    expect(images.map((image) => image.box_detections)).toEqual([1])
    // the embedded loop's web page, with every file it loads, and a thumbnail made by the embedded image codec
    for (const file of ['', ...LOOP_PAGE_FILES.map((name) => `web/${name}`)]) expect({ file, status: (await fetch(`${loopUrl}/${file}`)).status }).toEqual({ file, status: 200 })
    const gallery = await (await fetch(`${loopUrl}/admin/projects/local/demo/gallery`)).json() as { images: { id: string }[] }
    const thumbnail = new Uint8Array(await (await fetch(`${loopUrl}/admin/projects/local/demo/images/${gallery.images[0]!.id}/thumbnail`)).arrayBuffer())
    expect([thumbnail[0], thumbnail[1]]).toEqual([0xff, 0xd8])

    run.process.kill('SIGTERM')
    expect(await run.exited).toBe(0)
  })
  test('trainer --logic testing: a training begun in the embedded local loop ends with a model in it (the script is embedded)', async () => {
    const home = join(temp.path, 'home-trainer')
    const run = runBinary(['trainer', '--logic', 'testing'], cleanEnv(home, { DATA_FOLDER: join(temp.path, 'trainer-data'), PORT: '0', BIND_HOST: '127.0.0.1' }))
    const uuid = await waitFor(() => run.stdout.map((line) => /^trainer (\S+) listening on/.exec(line)?.[1]).find(Boolean), 30_000, `the trainer's uuid (stderr: ${run.stderr.slice(-3).join(' | ')})`)
    const loopUrl = await waitFor(() => run.stderr.map((line) => /"msg":"local loop listening","url":"([^"]+)"/.exec(line)?.[1]).find(Boolean), 30_000, 'the embedded local loop URL')
    await waitFor(() => run.stderr.some((line) => line.includes('"msg":"connected to the Loop"')), 30_000, 'the trainer connected')
    const begun = await fetch(`${loopUrl}/admin/projects/local/demo/trainings`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ node: uuid, model_variant: 'small', hyperparameters: { epochs: 2, epoch_ms: 50 } }),
    })
    expect(begun.status).toBe(200)
    const training = await waitFor(async () => {
      const { trainings } = await (await fetch(`${loopUrl}/admin/projects/local/demo/trainings`)).json() as { trainings: { state: string; models: { formats: string[] }[] }[] }
      return trainings.find((t) => t.models.length > 0 && t.state === 'ready_for_cleanup')
    }, 30_000, `a finished training with a model (stderr: ${run.stderr.slice(-3).join(' | ')})`)
    expect(training.models[0]!.formats).toEqual(['mocked'])
    expect(existsSync(join(home, '.cache', 'learning-loop-node'))).toBe(true)
    const unpacked = await readdir(join(home, '.cache', 'learning-loop-node'))
    expect(unpacked.some((name) => name.startsWith('testing-trainer-'))).toBe(true)
    run.process.kill('SIGTERM')
    expect(await run.exited).toBe(0)
  })
})

const qemu = ['/usr/bin/qemu-aarch64', '/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1'].every((path) => existsSync(path))

describe('the linux-arm64 binary (cross-built)', () => {
  let arm64: BuildResult
  beforeAll(async () => {
    arm64 = await buildBinaryCached({ target: 'bun-linux-arm64' })
  }, BUILD_TIMEOUT_MS)

  test('is an aarch64 executable', async () => {
    const header = new Uint8Array(await Bun.file(arm64.outfile).slice(0, 20).arrayBuffer())
    expect([...header.slice(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46])
    expect(header[18]! | (header[19]! << 8)).toBe(0xb7) // EM_AARCH64
  })

  // onnxruntime-node's arm64 library crashes while loading under qemu-user (also in a bare 10-line probe),
  // so emulation checks the rest of the binary with the wasm backend; the native CPU path needs real arm64
  test.skipIf(!qemu)('runs under qemu-aarch64: --version, and detect (native image decoder, wasm backend) finds the face in a JPEG and a PNG', async () => {
    const copy = join(temp.path, 'learning-loop-node-arm64')
    await copyFile(arm64.outfile, copy)
    await chmod(copy, 0o755)
    const env = cleanEnv(join(temp.path, 'home-arm64'))
    const emulate = (args: string[]) => {
      const run = runIsolated(['/usr/bin/qemu-aarch64', '-L', '/usr/aarch64-linux-gnu', copy, ...args], { cwd: temp.path, env, hiddenDir: hideRepo })
      running.push(run)
      return run
    }
    const version = emulate(['--version'])
    expect(await version.exited).toBe(0)
    expect(version.stdout.join('').trim()).toBe(packageJson.version)
    // only the native decoder reads PNG (the jpeg-js fallback refuses it), so a face in the PNG proves the arm64 addon
    const png = join(temp.path, 'photos', 'astronaut.png')
    await Bun.write(png, await new Transformer(await readFile(photos[0]!)).png())
    const detect = emulate(['detect', photos[0]!, png, '--json', '--backend', 'wasm'])
    expect(await detect.exited).toBe(0)
    const results = parseJsonLines(detect.stdout)
    expect(results.map((result) => result.box_detections?.map((d) => d.category_name))).toEqual([['face'], ['face']])
  }, 120_000)
})
