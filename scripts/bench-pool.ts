/**
 * The worker pool against one worker, side by side in one run (part of bench:detector): two detector nodes on the
 * same Loop serve the same model, one with the automatic pool and one with INFERENCE_WORKERS=1, and REST /detect
 * is driven at 1, 4 and 16 concurrent clients in alternating 1 s slices (noise on the machine hits both alike).
 * Prints req/s, p50 and the ratio per row, for the built-in model and YOLOv8n (when it was fetched).
 */
import { join } from 'node:path'
import { loadNodeConfig } from '../src/config/node-config.ts'
import { DetectorNode } from '../src/detector/detector-node.ts'
import { multipartRequest, RawHttpClient } from './raw-http-client.ts'

export interface PoolBenchOptions {
  loopUrl: string
  /** a folder for the two nodes' data */
  dataFolder: string
  models: { name: string; dir: string | undefined }[]
  jpeg: Uint8Array
  /** measured seconds per variant and client count */
  seconds: number
  clientCounts: number[]
}

interface Variant {
  name: string
  node: DetectorNode
  connections: RawHttpClient[]
}

/** images in the batch_detect row */
const BATCH_IMAGES = 8

const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))] ?? Number.NaN

async function startVariant(name: string, options: PoolBenchOptions, modelDir: string, env: Record<string, string>, clients: number): Promise<Variant> {
  const node = await DetectorNode.start({
    // a project of its own: no deployment target there, so the node keeps serving `modelDir`
    config: loadNodeConfig({
      LOOP_HOST: options.loopUrl, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'pool-bench', DATA_FOLDER: join(options.dataFolder, name),
      PORT: '0', BIND_HOST: '127.0.0.1', INFERENCE_BACKEND: 'cpu', VERSION_CONTROL_DEFAULT: 'pause', ...env,
    }),
    fallbackModelDir: modelDir,
  })
  while (!node.active.logic) await Bun.sleep(50)
  const connections = await Promise.all(Array.from({ length: clients }, () => RawHttpClient.open(node.url)))
  return { name, node, connections }
}

/** `clients` keep-alive connections posting back to back for `seconds`; latencies in ms. */
async function drive(variant: Variant, request: Uint8Array, clients: number, seconds: number): Promise<number[]> {
  const latencies: number[] = []
  const end = performance.now() + seconds * 1000
  await Promise.all(variant.connections.slice(0, clients).map(async (connection) => {
    while (performance.now() < end) {
      const started = performance.now()
      const { status } = await connection.send(request)
      if (status !== 200) throw new Error(`${variant.name}: /detect answered ${status}`)
      latencies.push(performance.now() - started)
    }
  }))
  return latencies
}

const describePool = (variant: Variant) => {
  const pool = variant.node.active.logic?.pool
  return pool ? `${pool.workers} × ${pool.threadsPerWorker} thread(s) (${pool.reason})` : 'no pool'
}

/** Measures every model; returns the lines to print. */
export async function measurePoolScaling(options: PoolBenchOptions): Promise<string[]> {
  const lines: string[] = []
  const request = multipartRequest('/detect', 'file', options.jpeg, { autoupload: 'disabled' })
  const mostClients = Math.max(...options.clientCounts)
  for (const model of options.models) {
    if (!model.dir) {
      lines.push(`pool vs one worker, ${model.name}: skipped (run \`bun scripts/fetch-bench-models.ts\` to fetch it)`)
      continue
    }
    console.error(`… pool vs one worker, ${model.name}`)
    const variants = [
      await startVariant(`${model.name}-auto`, options, model.dir, {}, mostClients),
      await startVariant(`${model.name}-one`, options, model.dir, { INFERENCE_WORKERS: '1' }, mostClients),
    ]
    try {
      lines.push(`pool vs one worker, ${model.name}: automatic ${describePool(variants[0]!)}; INFERENCE_WORKERS=1: ${describePool(variants[1]!)}`)
      for (const variant of variants) await drive(variant, request, Math.min(4, mostClients), 1) // warm-up
      lines.push('| clients | automatic req/s | one worker req/s | ratio | automatic p50 ms | one worker p50 ms |', '|---|---|---|---|---|---|')
      for (const clients of options.clientCounts) {
        const measured = variants.map(() => [] as number[])
        for (let slice = 0; slice < options.seconds; slice++) {
          for (const [index, variant] of variants.entries()) measured[index]!.push(...await drive(variant, request, clients, 1))
        }
        const [auto, one] = measured.map((latencies) => ({ perSecond: latencies.length / options.seconds, p50: quantile(latencies, 0.5) })) as [{ perSecond: number; p50: number }, { perSecond: number; p50: number }]
        lines.push(`| ${clients} | ${auto.perSecond.toFixed(1)} | ${one.perSecond.toFixed(1)} | ${(auto.perSecond / one.perSecond).toFixed(2)}× | ${auto.p50.toFixed(2)} | ${one.p50.toFixed(2)} |`)
      }
      // one caller's batch_detect: the pool spreads its images over the workers
      const batch = Array.from({ length: BATCH_IMAGES }, () => ({ kind: 'encoded' as const, bytes: options.jpeg }))
      const batches = variants.map(() => 0)
      for (let slice = 0; slice < options.seconds; slice++) {
        for (const [index, variant] of variants.entries()) {
          const end = performance.now() + 1000
          while (performance.now() < end) {
            await variant.node.detectBatch(batch, { autoupload: 'disabled' }, 'bench')
            batches[index]!++
          }
        }
      }
      const [autoImages, oneImages] = batches.map((count) => (count * BATCH_IMAGES) / options.seconds) as [number, number]
      lines.push(`| batch_detect of ${BATCH_IMAGES}, 1 caller (images/s) | ${autoImages.toFixed(1)} | ${oneImages.toFixed(1)} | ${(autoImages / oneImages).toFixed(2)}× | | |`)
    } finally {
      for (const variant of variants) {
        for (const connection of variant.connections) connection.close()
        await variant.node.stop()
      }
    }
  }
  return lines
}
