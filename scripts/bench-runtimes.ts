/**
 * The detector's REST throughput on Bun and on Deno: one detector process per runtime (Bun: src/cli/main.ts, Deno:
 * its `deno task detector` command line), built-in model, cpu backend, no Loop traffic (autoupload disabled), and
 * POST /detect of test/fixtures/astronaut.jpg from this process with 1 and with 4 clients at a time. The runtimes
 * take turns, round after round, so that load from elsewhere on the machine falls on both; the table gives the
 * median over the rounds and Deno's ratio to Bun.
 * Usage: bun scripts/bench-runtimes.ts [--seconds S] [--rounds N]. Progress goes to stderr, results to stdout.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startNodeProcess, type NodeProcess, type NodeRuntime } from '../test/support/node-process.ts'
import { makeTempDir } from '../test/support/temp.ts'

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1]! : fallback
}
const seconds = Number(argument('seconds', '5'))
const rounds = Number(argument('rounds', '3'))
const RUNTIMES: NodeRuntime[] = ['bun', 'deno']
const CLIENTS = [1, 4]

const image = new Uint8Array(await readFile(join(import.meta.dir, '..', 'test', 'fixtures', 'astronaut.jpg')))
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
async function measure(url: string, clients: number): Promise<{ perSecond: number; latencies: number[] }> {
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

const temp = await makeTempDir('lln-bench-runtimes-')
const nodes = new Map<NodeRuntime, NodeProcess>()
try {
  for (const runtime of RUNTIMES) {
    const node = await startNodeProcess(['detector'], {
      runtime,
      env: { DATA_FOLDER: join(temp.path, runtime), HOME: join(temp.path, `home-${runtime}`), LOCAL_LOOP_PORT: '0', INFERENCE_BACKEND: 'cpu', LOG_LEVEL: 'warn' },
    })
    nodes.set(runtime, node)
    for (let i = 0; i < 600 && !(await fetch(`${node.url}/ready`)).ok; i++) await new Promise((resolve) => setTimeout(resolve, 100))
    for (let i = 0; i < 20; i++) await detectOnce(node.url) // warm-up
  }
  const results = new Map<string, { perSecond: number[]; p50: number[]; p99: number[] }>()
  for (let round = 1; round <= rounds; round++) {
    for (const clients of CLIENTS) {
      for (const runtime of RUNTIMES) {
        const { perSecond, latencies } = await measure(nodes.get(runtime)!.url, clients)
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
  console.log(`detector REST /detect (astronaut.jpg, built-in model, cpu), ${rounds} rounds of ${seconds} s, medians:`)
  console.log('| clients | Bun req/s | Deno req/s | Deno/Bun | Bun p50 / p99 ms | Deno p50 / p99 ms |')
  console.log('|---|---|---|---|---|---|')
  for (const clients of CLIENTS) {
    const bun = results.get(`bun ${clients}`)!
    const deno = results.get(`deno ${clients}`)!
    const ms = (entry: typeof bun) => `${median(entry.p50).toFixed(1)} / ${median(entry.p99).toFixed(1)}`
    console.log(`| ${clients} | ${median(bun.perSecond).toFixed(1)} | ${median(deno.perSecond).toFixed(1)} | ${(median(deno.perSecond) / median(bun.perSecond)).toFixed(2)} | ${ms(bun)} | ${ms(deno)} |`)
  }
} finally {
  await Promise.all([...nodes.values()].map((node) => node.child.kill('SIGTERM')))
  await temp.cleanup()
}
