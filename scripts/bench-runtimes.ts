/**
 * The detector on Bun and on Deno: one detector process per runtime (Bun: src/cli/main.ts, Deno: its `deno task
 * detector` command line), built-in model, cpu backend, no Loop traffic (autoupload disabled).
 * - REST throughput: POST /detect of test/fixtures/astronaut.jpg from this process with 1 and with 4 clients at a
 *   time. The runtimes take turns, round after round, so that load from elsewhere on the machine falls on both.
 * - start → ready: from spawning the detector until /ready answers 200 (model loaded), taking turns as well.
 * The tables give medians and Deno's ratio to Bun (for start → ready as a speed: Bun's time ÷ Deno's).
 * `bun scripts/bench-runtimes.ts [--seconds S] [--rounds N] [--startups N]`; bench-detector.ts runs it too.
 * Progress goes to stderr, results to stdout.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { nodeCommandLine, startNodeProcess, type NodeProcess, type NodeRuntime } from '../test/support/node-process.ts'
import { makeTempDir } from '../test/support/temp.ts'
import { timeToReady } from './detector-startup.ts'

const RUNTIMES: NodeRuntime[] = ['bun', 'deno']
const CLIENTS = [1, 4]
const REPOSITORY_ROOT = join(import.meta.dir, '..')

const image = new Uint8Array(await readFile(join(REPOSITORY_ROOT, 'test', 'fixtures', 'astronaut.jpg')))
const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))]!
const median = (values: number[]) => quantile(values, 0.5)

async function detectOnce(url: string): Promise<void> {
  const form = new FormData()
  form.append('file', new File([image], 'astronaut.jpg', { type: 'image/jpeg' }))
  const response = await fetch(`${url}/detect`, { method: 'POST', body: form, headers: { autoupload: 'disabled' } })
  if (response.status !== 200) throw new Error(`POST /detect: ${response.status} ${await response.text()}`)
  await response.arrayBuffer()
}

/** `clients` loops of POST /detect for `seconds`: requests per second and latencies in ms. */
async function measure(url: string, clients: number, seconds: number): Promise<{ perSecond: number; latencies: number[] }> {
  const latencies: number[] = []
  const until = performance.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < until) {
      const begin = performance.now()
      await detectOnce(url)
      latencies.push(performance.now() - begin)
    }
  }))
  return { perSecond: latencies.length / ((performance.now() - started) / 1000), latencies }
}

async function restThroughput(temp: string, seconds: number, rounds: number): Promise<string[]> {
  const nodes = new Map<NodeRuntime, NodeProcess>()
  try {
    for (const runtime of RUNTIMES) {
      const node = await startNodeProcess(['detector'], {
        runtime,
        env: { DATA_FOLDER: join(temp, runtime), HOME: join(temp, `home-${runtime}`), LOCAL_LOOP_PORT: '0', INFERENCE_BACKEND: 'cpu', LOG_LEVEL: 'warn' },
      })
      nodes.set(runtime, node)
      for (let i = 0; i < 600 && !(await fetch(`${node.url}/ready`)).ok; i++) await new Promise((resolve) => setTimeout(resolve, 100))
      for (let i = 0; i < 20; i++) await detectOnce(node.url) // warm-up
    }
    const results = new Map<string, { perSecond: number[]; p50: number[]; p99: number[] }>()
    for (let round = 1; round <= rounds; round++) {
      for (const clients of CLIENTS) {
        for (const runtime of RUNTIMES) {
          const { perSecond, latencies } = await measure(nodes.get(runtime)!.url, clients, seconds)
          const key = `${runtime} ${clients}`
          const entry = results.get(key) ?? { perSecond: [], p50: [], p99: [] }
          entry.perSecond.push(perSecond)
          entry.p50.push(quantile(latencies, 0.5))
          entry.p99.push(quantile(latencies, 0.99))
          results.set(key, entry)
          console.error(`round ${round}: ${runtime}, ${clients} client(s): ${perSecond.toFixed(1)} req/s`)
        }
      }
    }
    const lines = [
      `detector REST /detect on Bun and Deno (astronaut.jpg, built-in model, cpu), ${rounds} rounds of ${seconds} s, medians:`,
      '| clients | Bun req/s | Deno req/s | Deno/Bun | Bun p50 / p99 ms | Deno p50 / p99 ms |',
      '|---|---|---|---|---|---|',
    ]
    for (const clients of CLIENTS) {
      const bun = results.get(`bun ${clients}`)!
      const deno = results.get(`deno ${clients}`)!
      const ms = (entry: typeof bun) => `${median(entry.p50).toFixed(1)} / ${median(entry.p99).toFixed(1)}`
      lines.push(`| ${clients} | ${median(bun.perSecond).toFixed(1)} | ${median(deno.perSecond).toFixed(1)} | ${(median(deno.perSecond) / median(bun.perSecond)).toFixed(2)} | ${ms(bun)} | ${ms(deno)} |`)
    }
    return lines
  } finally {
    await Promise.all([...nodes.values()].map((node) => node.child.kill('SIGTERM')))
  }
}

/**
 * Each runtime keeps what it compiled (Deno: TypeScript transpiled in DENO_DIR; Bun: its transpiler cache) under
 * XDG_CACHE_HOME, as an installed node does between starts: one untimed first start per runtime fills it (reported
 * on its own), the timed starts share it. HOME and the data folder are new for each start.
 */
async function startToReady(temp: string, startups: number): Promise<string[]> {
  const first: Record<string, number> = {}
  const times: Record<NodeRuntime, number[]> = { bun: [], deno: [] }
  const start = (runtime: NodeRuntime, name: string) =>
    timeToReady(nodeCommandLine(runtime, ['detector']).slice(0, -1), join(temp, name), REPOSITORY_ROOT, { XDG_CACHE_HOME: join(temp, `cache-${runtime}`) })
  for (const runtime of RUNTIMES) first[runtime] = await start(runtime, `startup-${runtime}-first`)
  for (let run = 0; run < startups; run++) {
    for (const runtime of RUNTIMES) {
      times[runtime].push(await start(runtime, `startup-${runtime}-${run}`))
      console.error(`start → ready ${run + 1}: ${runtime} ${times[runtime].at(-1)!.toFixed(0)} ms`)
    }
  }
  const [bun, deno] = [median(times.bun), median(times.deno)]
  return [
    `detector start → /ready from source (built-in model, cpu, embedded local loop), median of ${startups}: Bun ${bun.toFixed(0)} ms, Deno ${deno.toFixed(0)} ms; Deno/Bun speed ${(bun / deno).toFixed(2)} (Bun's time ÷ Deno's)`,
    `  the first start, with the runtime's compile cache empty: Bun ${first.bun!.toFixed(0)} ms, Deno ${first.deno!.toFixed(0)} ms (Deno transpiles every TypeScript module once)`,
  ]
}

/** Both comparisons; the lines to print. */
export async function compareRuntimes(options: { seconds: number; rounds: number; startups: number }): Promise<string[]> {
  const temp = await makeTempDir('lln-bench-runtimes-')
  try {
    const lines = options.rounds > 0 ? await restThroughput(temp.path, options.seconds, options.rounds) : []
    return options.startups > 0 ? [...lines, ...(await startToReady(temp.path, options.startups))] : lines
  } finally {
    await temp.cleanup()
  }
}

if (import.meta.main) {
  const argument = (name: string, fallback: string) => {
    const at = process.argv.indexOf(`--${name}`)
    return at > 0 ? process.argv[at + 1]! : fallback
  }
  const lines = await compareRuntimes({ seconds: Number(argument('seconds', '5')), rounds: Number(argument('rounds', '3')), startups: Number(argument('startups', '5')) })
  for (const line of lines) console.log(line)
}
