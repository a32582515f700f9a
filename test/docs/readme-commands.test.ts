/**
 * Every shell command in the README works as written from a clone. Each line of a ```sh block is in COMMANDS below,
 * either run (against a detector and a local loop started here, on free ports instead of 8004/8580, with temp
 * folders) or skipped with the reason and a cheaper check (the npm script or file it names exists). A README line
 * missing from the table fails, so a new command has to be classified here.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Child } from '../support/child-process.ts'
import { startNodeProcess } from '../support/node-process.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

const root = join(import.meta.dir, '../..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

/** The command lines of the README's ```sh blocks, comments and comment-only lines removed. */
function readmeShellLines(): string[] {
  const blocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((match) => match[1]!)
  return blocks.flatMap((block) => block.split('\n')).map((line) => line.replace(/\s{2,}#.*$/, '').trim()).filter((line) => line !== '' && !line.startsWith('#'))
}

interface Servers { detector: string; loopUrl: () => string }
type Check =
  | { run: (output: string, servers: Servers) => void; needs: 'detector' | 'loop' | 'nothing'; background?: true }
  | { skip: string; instead: () => void }

const npmScript = (name: string) => () => expect(packageJson.scripts[name]).toBeString()
const file = (path: string) => () => expect(existsSync(join(root, path))).toBe(true)
const json = (output: string) => JSON.parse(output)

/** What the README promises `detect` prints: the first face box as in its comment line. */
function promisedFace(): Record<string, number | string> {
  const comment = /^# (\{"box_detections":\[\{[^}]*)/m.exec(readme)![1]!
  return Object.fromEntries([...comment.matchAll(/"(category_name|x|y|width|height)":("?)([^",]+)\2/g)].map(([, key, quoted, value]) => [key!, quoted ? value! : Number(value)]))
}

/** The README's "whole loop in five commands": test/e2e/whole-loop.test.ts runs them as written. */
const walkthrough: Check = { skip: 'run as written by test/e2e/whole-loop.test.ts', instead: file('test/e2e/whole-loop.test.ts') }

/** A `deno task` line of "Running on Deno": test/deno/whole-loop-under-deno.test.ts starts each node as its task does. */
const denoWalkthrough = (task: string): Check => ({
  skip: 'started as its deno task (same flags) by test/deno/whole-loop-under-deno.test.ts',
  instead: () => expect(JSON.parse(readFileSync(join(root, 'deno.json'), 'utf8')).tasks[task]).toContain(`src/cli/main.ts ${task}`),
})

const COMMANDS: Record<string, Check> = {
  'npx learning-loop-node loop --port 8580 --data ./data/loop &': walkthrough,
  'LOOP_HOST=http://127.0.0.1:8580 LOOP_ORGANIZATION=local LOOP_PROJECT=demo npx learning-loop-node detector --bind 127.0.0.1 --port 8004 --data ./data/detector &': walkthrough,
  'LOOP_HOST=http://127.0.0.1:8580 LOOP_ORGANIZATION=local LOOP_PROJECT=demo npx learning-loop-node trainer --bind 127.0.0.1 --port 8003 --data ./data/trainer --trainer-config examples/face-trainer/trainer.json &': walkthrough,
  "curl -F file=@test/fixtures/astronaut.jpg -H 'autoupload: all' localhost:8004/detect && curl -F files=@test/fixtures/coffee.jpg localhost:8004/upload": walkthrough,
  'npx learning-loop-node loop admin start-training --node trainer --wait --deploy': walkthrough,
  'npm install && npm start': {
    skip: 'npm install needs the registry and rewrites node_modules; npm start is run by test/cli/npm-start.test.ts',
    instead: () => expect(packageJson.scripts.start).toContain('src/cli/main.ts detector'),
  },
  'npm test': { skip: 'the suite this test is part of', instead: npmScript('test') },
  'npx learning-loop-node detect test/fixtures/astronaut.jpg --json': {
    needs: 'nothing',
    run: (output) => expect(json(output).box_detections[0]).toMatchObject(promisedFace()),
  },
  "curl -F file=@test/fixtures/astronaut.jpg -H 'camera-id: cam1' -H 'autoupload: all' localhost:8004/detect": {
    needs: 'detector',
    run: (output) => expect(json(output).box_detections[0]).toMatchObject({ category_name: 'face', model_name: 'builtin-blazeface-1' }),
  },
  "curl -F files=@test/fixtures/coffee.jpg 'localhost:8004/upload?source=manual&upload_priority=true'": {
    needs: 'detector',
    run: (output) => expect(json(output)).toEqual([200, 'OK']),
  },
  'curl -X PUT -d pause localhost:8004/model_version': {
    needs: 'detector',
    run: (output) => expect(output).toBe('OK'),
  },
  'curl -X PUT -d stopped localhost:8004/outbox_mode': {
    needs: 'detector',
    run: (output) => expect(output).toBe('OK'),
  },
  'npx learning-loop-node loop --port 8580 --data ./loop-data': {
    needs: 'nothing', background: true,
    run: (output, servers) => expect(output).toContain(`local loop listening on ${servers.loopUrl()}`),
  },
  'LOOP_HOST=http://127.0.0.1:8580 LOOP_ORGANIZATION=local LOOP_PROJECT=demo npx learning-loop-node …': {
    skip: 'a pattern (… is any node command); nodes against a standalone loop run in test/trainer and test/library',
    instead: () => expect(readme).toContain('`LOOP_HOST`'),
  },
  'npx learning-loop-node loop admin projects --url http://127.0.0.1:8580': {
    needs: 'loop',
    run: (output) => expect(json(output).projects).toContainEqual(expect.objectContaining({ organization: 'local', project: 'demo' })),
  },
  'npx learning-loop-node loop admin create-project --url http://127.0.0.1:8580 --help': {
    needs: 'loop',
    run: (output) => expect(output).toStartWith('usage: learning-loop-node loop admin'),
  },
  'npm run build': { skip: 'builds the ~190 MiB binary (minutes); test/binary/binary.test.ts builds and runs it', instead: npmScript('build') },
  'npm run build -- --target=bun-linux-arm64': { skip: 'cross-builds the arm64 binary; test/binary/binary.test.ts does', instead: npmScript('build') },
  'npm run bench:startup': { skip: 'a benchmark that builds the binary', instead: npmScript('bench:startup') },
  'npm run typecheck': { skip: 'CI (.ci/run) runs it; minutes on a small machine', instead: npmScript('typecheck') },
  'npm run bench:inference': { skip: 'a benchmark (fetches YOLOv8n)', instead: npmScript('bench:inference') },
  'npm run bench:detector': { skip: 'a benchmark', instead: npmScript('bench:detector') },
  'bun scripts/bench-detector.ts --only pool --pool-seconds 1': { skip: 'a benchmark (two detectors, built-in and YOLOv8n)', instead: file('scripts/bench-pool.ts') },
  'bun scripts/bench-outbox.ts': { skip: 'a benchmark', instead: file('scripts/bench-outbox.ts') },
  'bun scripts/bench-outbox-flood.ts': { skip: 'a benchmark', instead: file('scripts/bench-outbox-flood.ts') },
  'bun scripts/bench-batching.ts': { skip: 'a benchmark', instead: file('scripts/bench-batching.ts') },
  'bun scripts/bench-custom-logic.ts': { skip: 'a benchmark', instead: file('scripts/bench-custom-logic.ts') },
  'bun scripts/soak.ts': { skip: 'a benchmark of 10 minutes', instead: file('scripts/soak.ts') },
  'bun scripts/bench-autoupload-encoding.ts': { skip: 'a benchmark', instead: file('scripts/bench-autoupload-encoding.ts') },
  './node_modules/.bin/deno task loop --port 8580 --data ./data/loop': denoWalkthrough('loop'),
  'LOOP_HOST=http://127.0.0.1:8580 LOOP_ORGANIZATION=local LOOP_PROJECT=demo ./node_modules/.bin/deno task detector --port 8004': denoWalkthrough('detector'),
  'LOOP_HOST=http://127.0.0.1:8580 LOOP_ORGANIZATION=local LOOP_PROJECT=demo ./node_modules/.bin/deno task trainer --port 8003 --trainer-config examples/face-trainer/trainer.json': denoWalkthrough('trainer'),
  './node_modules/.bin/deno task detect test/fixtures/astronaut.jpg --json': {
    needs: 'nothing',
    run: (output) => expect(json(output).box_detections[0]).toMatchObject({ category_name: 'face', model_name: 'builtin-blazeface-1' }),
  },
  'bash .ci/run': { skip: 'runs the whole suite on a clean clone', instead: file('.ci/run') },
  'bun test --timeout 60000 test/fuzz': { skip: 'part of npm test (this suite runs beside it)', instead: file('test/fuzz/README.md') },
}

describe('README commands', () => {
  test('every shell line of the README is classified here, and nothing here is stale', () => {
    const lines = readmeShellLines()
    expect(lines.filter((line) => !(line in COMMANDS))).toEqual([])
    expect(Object.keys(COMMANDS).filter((line) => !lines.includes(line))).toEqual([])
  })

  test('every file and folder the README names in code exists in the repository', () => {
    const named = [...readme.matchAll(/`([^`\s]+)`|@([^\s']+)|\s(\.ci\/\S+|scripts\/\S+\.ts)/g)].map((match) => match[1] ?? match[2] ?? match[3]!)
    const paths = named.filter((text) => /^(src|test|scripts|examples|\.ci)\/|^[A-Z_]+\.md$|^LICENSE$/.test(text))
    expect(paths.length).toBeGreaterThan(10)
    expect(paths.filter((path) => !existsSync(join(root, path)))).toEqual([])
  })

  for (const [line, check] of Object.entries(COMMANDS)) {
    if ('skip' in check) test(`skipped, with a cheaper check: ${line} (${check.skip})`, check.instead)
  }
})

const tools = { npx: Bun.which('npx'), curl: Bun.which('curl') }
const missingTool = (line: string) => (['npx', 'curl'] as const).find((tool) => line.startsWith(tool) && !tools[tool])

describe('README commands, run', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>
  let detector: Child
  let detectorAddress = ''
  let loopUrl = ''
  const background: { kill(): void }[] = []

  beforeAll(async () => {
    temp = await makeTempDir('lln-readme-')
    const started = await startNodeProcess(['detector'], { env: { DATA_FOLDER: join(temp.path, 'detector') } })
    detector = started.child
    detectorAddress = new URL(started.url).host
    await waitFor(async () => (await fetch(`http://${detectorAddress}/ready`)).ok, 50_000, 'the detector to be ready')
  })
  afterAll(async () => {
    for (const process of background) process.kill()
    await detector?.kill()
    await temp?.cleanup()
  })

  /** The README line with the ports and folders of this run in place of 8004, 8580 and ./loop-data. */
  const localised = (line: string) => line
    .replaceAll('localhost:8004', detectorAddress)
    .replaceAll('http://127.0.0.1:8580', loopUrl)
    .replace('--port 8580', '--port 0')
    .replace('./loop-data', join(temp.path, 'loop-data'))

  /** Starts a long-running README command in its own process group and waits for its first line. */
  async function runInBackground(command: string): Promise<string> {
    const child = spawn('sh', ['-c', command], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } })
    background.push({ kill: () => { try { process.kill(-child.pid!, 'SIGTERM') } catch {} } })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    await waitFor(() => output.includes('\n') && /listening on/.test(output), 50_000, `${command} to start`).catch((error) => {
      throw new Error(`${error.message}; output: ${output}`)
    })
    return output
  }

  for (const [line, check] of Object.entries(COMMANDS)) {
    if ('skip' in check) continue
    const missing = missingTool(line)
    test.skipIf(Boolean(missing))(`${line}${missing ? ` (skipped: ${missing} is not installed)` : ''}`, async () => {
      const command = localised(line)
      if (check.background) {
        const output = await runInBackground(command)
        loopUrl = /listening on (http:\/\/\S+)/.exec(output)![1]!
        check.run(output, { detector: detectorAddress, loopUrl: () => loopUrl })
        return
      }
      if (check.needs === 'loop') expect(loopUrl).not.toBe('')
      const result = Bun.spawnSync(['sh', '-c', command], { cwd: root, env: { ...process.env, LOG_LEVEL: 'warn' }, stdout: 'pipe', stderr: 'pipe' })
      expect({ command, exitCode: result.exitCode, stderr: result.exitCode === 0 ? '' : result.stderr.toString() }).toEqual({ command, exitCode: 0, stderr: '' })
      check.run(result.stdout.toString().trim(), { detector: detectorAddress, loopUrl: () => loopUrl })
    })
  }
})
