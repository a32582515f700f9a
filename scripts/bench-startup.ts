/**
 * Start-up benchmark of the single executable (npm run bench:startup): binary size, and the time from
 * spawning `learning-loop-node detector` (built-in face model, embedded local loop, cpu backend) until
 * `/ready` answers 200, i.e. the model is loaded and detections can be served. Target: ≤ 1 s.
 *
 * Cases, each run from an empty temp folder with its own HOME: first start (the embedded onnxruntime and
 * model are unpacked into the cache), warm starts (cache present), and the same command from source for
 * comparison. Builds the binary first when the sources changed (cached in .cache/binary/).
 * Usage: bun scripts/bench-startup.ts [--runs N] [--target bun-linux-x64]
 */
import { copyFile, chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBinaryCached, hostTarget, REPOSITORY_ROOT, type BinaryTarget } from './build-binary.ts'

const argument = (name: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1] : undefined
}
const runs = Number(argument('runs') ?? 5)
const target = (argument('target') ?? hostTarget()) as BinaryTarget
const READY_TIMEOUT_MS = 30_000

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
const ms = (value: number) => `${value.toFixed(0)} ms`

/** Spawns `command detector`, polls /ready every 5 ms, returns the time to the first 200, then SIGTERMs it. */
async function timeToReady(command: string[], home: string, cwd: string): Promise<number> {
  const started = performance.now()
  const child = Bun.spawn([...command, 'detector'], {
    cwd,
    env: { PATH: '/usr/bin:/bin', HOME: home, DATA_FOLDER: join(home, 'data'), PORT: '0', BIND_HOST: '127.0.0.1', LOCAL_LOOP_PORT: '0', INFERENCE_BACKEND: 'cpu', LOG_LEVEL: 'warn' },
    stdout: 'pipe', stderr: 'inherit',
  })
  try {
    let output = ''
    let url: string | undefined
    const reader = child.stdout.getReader()
    while (!url) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`the detector exited before listening (code ${await child.exited})`)
      output += new TextDecoder().decode(value)
      url = /detector listening on (\S+)/.exec(output)?.[1]
    }
    reader.releaseLock()
    while (performance.now() - started < READY_TIMEOUT_MS) {
      const ready = await fetch(`${url}/ready`).then((r) => r.ok, () => false)
      if (ready) return performance.now() - started
      await Bun.sleep(5)
    }
    throw new Error(`/ready did not answer 200 within ${READY_TIMEOUT_MS} ms`)
  } finally {
    child.kill('SIGTERM')
    await child.exited
  }
}

const build = await buildBinaryCached({ target })
const scratch = await mkdtemp(join(tmpdir(), 'lln-bench-startup-'))
try {
  const binary = join(scratch, 'learning-loop-node')
  await copyFile(build.outfile, binary)
  await chmod(binary, 0o755)
  console.log(`binary: ${target}, ${(build.bytes / 1024 / 1024).toFixed(1)} MiB (${build.bytes} B)${build.cached ? ' (cached build)' : `, built in ${build.seconds.toFixed(1)} s`}`)

  const versionTimes: number[] = []
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    const version = Bun.spawnSync([binary, '--version'], { cwd: scratch, env: { PATH: '/usr/bin:/bin', HOME: scratch } })
    if (version.exitCode !== 0) throw new Error(`--version exited ${version.exitCode}`)
    versionTimes.push(performance.now() - started)
  }

  const coldHome = join(scratch, 'home-cold')
  const cold = await timeToReady([binary], coldHome, scratch)
  const warm: number[] = []
  for (let i = 0; i < runs; i++) warm.push(await timeToReady([binary], coldHome, scratch))
  const source: number[] = []
  for (let i = 0; i < runs; i++) source.push(await timeToReady([process.execPath, join(REPOSITORY_ROOT, 'src', 'cli', 'main.ts')], join(scratch, `home-source-${i}`), REPOSITORY_ROOT))

  console.log(`--version:                       median ${ms(median(versionTimes))} (${runs} runs)`)
  console.log(`binary start → /ready, first:    ${ms(cold)} (unpacks onnxruntime + model into the cache)`)
  console.log(`binary start → /ready, warm:     median ${ms(median(warm))}, max ${ms(Math.max(...warm))} (${runs} runs)`)
  console.log(`from source start → /ready:      median ${ms(median(source))} (${runs} runs)`)
  console.log(`target ≤ 1000 ms: ${median(warm) <= 1000 && cold <= 1000 ? 'met' : 'NOT met'} (first ${ms(cold)}, warm median ${ms(median(warm))})`)
} finally {
  await rm(scratch, { recursive: true, force: true })
}
