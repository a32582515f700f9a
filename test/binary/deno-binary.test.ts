/**
 * The second single executable, made with `deno compile` (scripts/build-deno-binary.ts), passes the Bun binary's
 * smoke test: `--version`, `detect` finds the astronaut's face, `detector` answers /ready and POST /detect, and
 * SIGTERM ends it with 0. It runs from an empty folder with a clean environment (and where the kernel allows,
 * with the repository hidden). Built once per source state (.cache/binary/deno-<fingerprint>/).
 *
 * `deno compile` needs denort, Deno's runtime without its CLI, which it downloads per Deno version (the deno
 * npm package does not ship it). Where it cannot be had the build fails before anything else, in about a
 * second, and the smoke test is skipped with the reason.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chmod, copyFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import packageJson from '../../package.json' with { type: 'json' }
import { buildDenoBinaryCached, DenoBaseUnavailableError, denoCompileCommand, REPOSITORY_ROOT } from '../../scripts/build-deno-binary.ts'
import { decode, ImageMetadata } from '../../src/contract/index.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import { canHideFolder, runIsolated, type IsolatedRun } from './isolated-process.ts'

const ASTRONAUT = join(REPOSITORY_ROOT, 'test', 'fixtures', 'astronaut.jpg')
const hideRepo = canHideFolder(REPOSITORY_ROOT) ? REPOSITORY_ROOT : undefined

let built: Awaited<ReturnType<typeof buildDenoBinaryCached>> | undefined
let unavailable: string | undefined
try {
  built = await buildDenoBinaryCached()
} catch (error) {
  if (!(error instanceof DenoBaseUnavailableError)) throw error
  unavailable = error.message
  console.log(`skipping the deno compile smoke test: ${unavailable}`)
}

test('the build leaves out what no node loads and carries the inference worker and the files read by path', () => {
  const command = denoCompileCommand('/tmp/out')
  const included = command.flatMap((word, index) => (command[index - 1] === '--include' ? [word] : []))
  expect(included).toEqual(expect.arrayContaining(['src/inference/inference-worker.ts', 'assets/builtin-model', 'src/detector/status-page', 'src/inference/verification-model.onnx']))
  const excluded = command.flatMap((word, index) => (command[index - 1] === '--exclude' ? [word] : []))
  for (const tool of ['/bun', '/deno', '/typescript', '/.bin']) expect(excluded.some((path) => path.endsWith(tool))).toBe(true)
  expect(excluded.some((path) => path.endsWith(`/napi-v6/linux/${process.arch}`))).toBe(false)
  expect(command).toContain('--self-extracting')
})

describe.skipIf(Boolean(unavailable))('the deno compile binary, run from an empty folder without the repo', () => {
  let temp: { path: string; cleanup(): Promise<void> }
  let binary: string
  const running: IsolatedRun[] = []
  const run = (args: string[], home: string, extra: Record<string, string> = {}) => {
    const started = runIsolated([binary, ...args], { cwd: temp.path, env: { PATH: '/usr/bin:/bin', HOME: join(temp.path, home), LOG_LEVEL: 'info', ...extra }, hiddenDir: hideRepo })
    running.push(started)
    return started
  }

  beforeAll(async () => {
    temp = await makeTempDir('lln-deno-binary-')
    binary = join(temp.path, 'learning-loop-node-deno')
    await copyFile(built!.outfile, binary)
    await chmod(binary, 0o755)
    await copyFile(ASTRONAUT, join(temp.path, 'astronaut.jpg'))
  })
  afterAll(async () => {
    for (const started of running) started.process.kill('SIGKILL')
    await Promise.all(running.map((started) => started.exited.catch(() => undefined)))
    await temp?.cleanup()
  })

  test('--version prints the package version', async () => {
    const version = run(['--version'], 'home-version')
    expect(await version.exited).toBe(0)
    expect(version.stdout.join('\n').trim()).toBe(packageJson.version)
  }, 60_000)

  test('detect finds the astronaut\'s face', async () => {
    const detect = run(['detect', join(temp.path, 'astronaut.jpg'), '--json', '--backend', 'cpu'], 'home-detect')
    expect({ code: await detect.exited, errors: detect.stderr.filter((line) => line.includes('"error"')) }).toEqual({ code: 0, errors: [] })
    const [metadata] = detect.stdout.filter((line) => line.trim()).map((line) => decode(ImageMetadata, JSON.parse(line)))
    expect(metadata!.box_detections?.map((box) => box.category_name)).toEqual(['face'])
  }, 60_000)

  test('detector: /ready, POST /detect finds the face, SIGTERM exits 0', async () => {
    const detector = run(['detector'], 'home-detector', { DATA_FOLDER: join(temp.path, 'detector-data'), PORT: '0', BIND_HOST: '127.0.0.1', LOCAL_LOOP_PORT: '0', INFERENCE_BACKEND: 'cpu' })
    const url = await waitFor(() => detector.stdout.map((line) => /detector listening on (\S+)/.exec(line)?.[1]).find(Boolean), 60_000, `the detector's URL (stderr: ${detector.stderr.slice(-3).join(' | ')})`)
    await waitFor(async () => (await fetch(`${url}/ready`)).ok, 60_000, '/ready')
    const form = new FormData()
    form.append('file', new File([await readFile(ASTRONAUT)], 'astronaut.jpg', { type: 'image/jpeg' }))
    const response = await fetch(`${url}/detect`, { method: 'POST', body: form })
    expect(response.status).toBe(200)
    const metadata = decode(ImageMetadata, await response.json())
    expect(metadata.box_detections?.map((box) => box.category_name)).toEqual(['face'])
    detector.process.kill('SIGTERM')
    expect(await detector.exited).toBe(0)
  }, 120_000)
})
