/**
 * Start-up of the single executable: from spawning `learning-loop-node detector` (built-in model, embedded local
 * loop, a fresh data folder each run) to the first 200 from `/ready`, median of several runs, plus the binary's
 * size. Target: ≤ 1 s. Usage: bun scripts/bench-startup.ts [--runs N]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBinaryCached } from './build-binary.ts'

const at = process.argv.indexOf('--runs')
const runs = at > 0 ? Number(process.argv[at + 1]) : 5
const build = await buildBinaryCached()
console.log(`binary: ${build.outfile} (${(build.bytes / 2 ** 20).toFixed(1)} MiB${build.cached ? ', cached build' : `, built in ${build.seconds.toFixed(1)} s`})`)

async function freePort(): Promise<number> {
  const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response() })
  const port = server.port!
  await server.stop(true)
  return port
}

const times: number[] = []
for (let run = 0; run < runs; run++) {
  const data = await mkdtemp(join(tmpdir(), 'lln-startup-'))
  const port = await freePort()
  const started = performance.now()
  const child = Bun.spawn([build.outfile, 'detector', '--port', String(port), '--bind', '127.0.0.1', '--data', data, '--backend', 'cpu'], { stdout: 'ignore', stderr: 'ignore', cwd: data, env: { ...process.env, LOG_LEVEL: 'warn' } })
  let readyAt: number | undefined
  while (performance.now() - started < 30_000) {
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false)
    if (ok) {
      readyAt = performance.now()
      break
    }
    await Bun.sleep(5)
  }
  child.kill('SIGTERM')
  await child.exited
  await rm(data, { recursive: true, force: true })
  if (readyAt === undefined) throw new Error('the binary did not become ready within 30 s')
  times.push(readyAt - started)
  console.log(`run ${run + 1}: ${(readyAt - started).toFixed(0)} ms to /ready`)
}
const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!
console.log(`binary start → /ready (built-in model warmed, embedded local loop): median ${median.toFixed(0)} ms over ${runs} runs (target ≤ 1000 ms); size ${(build.bytes / 2 ** 20).toFixed(1)} MiB`)
