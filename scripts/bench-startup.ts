/**
 * Start-up benchmark of the single executable (npm run bench:startup): binary size, and the time from
 * spawning `learning-loop-node detector` (built-in face model, embedded local loop, cpu backend) until
 * `/ready` answers 200, i.e. the model is loaded and detections can be served. Target: ≤ 1 s.
 *
 * Cases, each run from an empty temp folder with its own HOME: first start (the embedded onnxruntime and
 * model are unpacked into the cache), warm starts (cache present), and the same command from source for
 * comparison, on Bun and on Deno (its `deno task detector` command line). Builds the binary first when the sources
 * changed (cached in .cache/binary/).
 * Usage: bun scripts/bench-startup.ts [--runs N] [--target bun-linux-x64]
 */
import { copyFile, chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBinaryCached, hostTarget, REPOSITORY_ROOT, type BinaryTarget } from './build-binary.ts'
import { timeToReady } from './detector-startup.ts'
import { nodeCommandLine } from '../test/support/node-process.ts'

const argument = (name: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1] : undefined
}
const runs = Number(argument('runs') ?? 5)
const target = (argument('target') ?? hostTarget()) as BinaryTarget

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
const ms = (value: number) => `${value.toFixed(0)} ms`

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
  const sourceOnDeno: number[] = []
  // the runtimes take turns, so that load from elsewhere on the machine falls on both
  for (let i = 0; i < runs; i++) {
    source.push(await timeToReady([process.execPath, join(REPOSITORY_ROOT, 'src', 'cli', 'main.ts')], join(scratch, `home-source-${i}`), REPOSITORY_ROOT))
    sourceOnDeno.push(await timeToReady(nodeCommandLine('deno', ['detector']).slice(0, -1), join(scratch, `home-deno-${i}`), REPOSITORY_ROOT))
  }

  console.log(`--version:                       median ${ms(median(versionTimes))} (${runs} runs)`)
  console.log(`binary start → /ready, first:    ${ms(cold)} (unpacks onnxruntime + model into the cache)`)
  console.log(`binary start → /ready, warm:     median ${ms(median(warm))}, max ${ms(Math.max(...warm))} (${runs} runs)`)
  console.log(`from source start → /ready:      median ${ms(median(source))} (${runs} runs)`)
  console.log(`the same on Deno (deno task detector): median ${ms(median(sourceOnDeno))} (${runs} runs); Deno/Bun speed ${(median(source) / median(sourceOnDeno)).toFixed(2)} (Bun time ÷ Deno time)`)
  console.log(`target ≤ 1000 ms: ${median(warm) <= 1000 && cold <= 1000 ? 'met' : 'NOT met'} (first ${ms(cold)}, warm median ${ms(median(warm))})`)
} finally {
  await rm(scratch, { recursive: true, force: true })
}
