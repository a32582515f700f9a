/**
 * A custom DetectorLogic that needs pixels (rows of `npm run bench:detector`, or alone): REST /detect req/s of a
 * fixed-box logic that decodes each JPEG first, with `decodeImage` on the main thread and with `decodeImageInWorker`
 * (a pool of decode workers), next to the built-in path (the built-in model in its inference worker), at 1 and 4
 * keep-alive clients, in alternating 1 s slices so noise hits all alike.
 *
 *   bun scripts/bench-custom-logic.ts [--seconds 3] [--size 640x480] [--python-url http://127.0.0.1:5104]
 *                                                                            (CLIENTS=1,4,16 for other client counts)
 *
 * `--python-url` adds a detector running elsewhere to the same slices, e.g. the Python learning_loop_node serving a
 * fixed-box logic (the Python node decodes each JPEG with PIL before its logic's `evaluate`): the row then shows
 * decodeImageInWorker's req/s over that node's.
 */
import { join } from 'node:path'
import { loadNodeConfig } from '../src/config/node-config.ts'
import { DetectorNode, type DetectorNodeOptions } from '../src/detector/detector-node.ts'
import { decodeImage } from '../src/inference/image-decoding.ts'
import { decodeImageInWorker } from '../src/inference/image-decode-pool.ts'
import { decodingFixedBoxFactory } from '../test/support/fixed-box-logic.ts'
import { multipartRequest, RawHttpClient } from './raw-http-client.ts'

export interface CustomLogicRow {
  clients: number
  /** req/s by variant: built-in model, decode on the main thread, decode in workers (and the other node, if given) */
  perSecond: Partial<Record<CustomLogicVariant, number>>
}
export type CustomLogicVariant = 'built-in inference path' | 'custom logic, decodeImage on the main thread' | 'custom logic, decodeImageInWorker' | typeof OTHER_NODE
/** the detector given by `otherUrl` (`--python-url`) */
const OTHER_NODE = 'the detector at --python-url'

/** `builtinUrl`: a detector serving the built-in path; the two custom-logic detectors are started here. */
export async function measureCustomLogic(options: {
  loopUrl: string; dataFolder: string; jpeg: Uint8Array; builtinUrl: string; seconds?: number; clients?: number[]; phase?: (what: string) => void
  /** a detector measured alongside (the Python node with a fixed-box logic) */
  otherUrl?: string
}): Promise<CustomLogicRow[]> {
  const seconds = options.seconds ?? 3
  const start = (name: string, factory: DetectorNodeOptions['factory']) => DetectorNode.start({
    config: loadNodeConfig({
      LOOP_HOST: options.loopUrl, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', DATA_FOLDER: join(options.dataFolder, name), PORT: '0', BIND_HOST: '127.0.0.1',
      VERSION_CONTROL_DEFAULT: 'pause',
    }),
    factory, fallbackModelDir: options.dataFolder,
  })
  const mainThread = await start('decode-main-thread', decodingFixedBoxFactory(decodeImage, 'decode-main-thread'))
  const inWorker = await start('decode-in-worker', decodingFixedBoxFactory((image) => decodeImageInWorker(image), 'decode-in-worker'))
  const request = multipartRequest('/detect', 'file', options.jpeg, { autoupload: 'disabled' })
  const rows: CustomLogicRow[] = []
  try {
    const urls: Partial<Record<CustomLogicVariant, string>> = {
      'built-in inference path': options.builtinUrl, 'custom logic, decodeImage on the main thread': mainThread.url, 'custom logic, decodeImageInWorker': inWorker.url,
      ...(options.otherUrl ? { [OTHER_NODE]: options.otherUrl } : {}),
    }
    for (const clients of options.clients ?? [1, 4]) {
      options.phase?.(`custom logic that decodes, ${clients} REST clients`)
      const connections = Object.fromEntries(await Promise.all(Object.entries(urls).map(async ([variant, url]) =>
        [variant, await Promise.all(Array.from({ length: clients }, () => RawHttpClient.open(url!)))] as const))) as Record<CustomLogicVariant, RawHttpClient[]>
      const counts = Object.fromEntries(Object.keys(urls).map((variant) => [variant, 0])) as Partial<Record<CustomLogicVariant, number>>
      const slice = async (variant: CustomLogicVariant, count: boolean) => {
        const end = performance.now() + 1000
        await Promise.all(connections[variant].map(async (connection) => {
          while (performance.now() < end) {
            const { status } = await connection.send(request)
            if (status !== 200) throw new Error(`${variant}: detect answered ${status}`)
            if (count) counts[variant]!++
          }
        }))
      }
      for (const variant of Object.keys(urls) as CustomLogicVariant[]) await slice(variant, false) // warm-up
      for (let s = 0; s < seconds; s++) for (const variant of Object.keys(urls) as CustomLogicVariant[]) await slice(variant, true)
      for (const list of Object.values(connections)) for (const connection of list) connection.close()
      rows.push({ clients, perSecond: Object.fromEntries(Object.entries(counts).map(([variant, n]) => [variant, n / seconds])) })
    }
  } finally {
    await Promise.all([mainThread.stop(), inWorker.stop()])
  }
  return rows
}

export function describeCustomLogic(rows: CustomLogicRow[]): string[] {
  return rows.map((row) => {
    const p = row.perSecond
    const inWorker = p['custom logic, decodeImageInWorker']!
    const mainThread = p['custom logic, decodeImage on the main thread']!
    const other = p[OTHER_NODE]
    return `custom logic that decodes, REST ${row.clients} client(s): decodeImageInWorker ${inWorker.toFixed(0)} req/s, decodeImage on the main thread ${mainThread.toFixed(0)} req/s (${(inWorker / mainThread).toFixed(2)}×), built-in inference path ${p['built-in inference path']!.toFixed(0)} req/s`
      + (other === undefined ? '' : `; ${OTHER_NODE} ${other.toFixed(0)} req/s (decodeImageInWorker ${(inWorker / other).toFixed(2)}×, main thread ${(mainThread / other).toFixed(2)}× of it)`)
  })
}

if (import.meta.main) {
  const { Transformer } = await import('@napi-rs/image')
  const { readFile } = await import('node:fs/promises')
  const { LocalLoop } = await import('../src/local-loop/local-loop.ts')
  const { makeTempDir } = await import('../test/support/temp.ts')
  const { setLogLevel } = await import('../src/foundation/log.ts')
  setLogLevel('warn')
  const flag = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined)
  const at = process.argv.indexOf('--seconds')
  const temp = await makeTempDir('lln-bench-custom-logic-')
  const loop = await LocalLoop.start({ dataFolder: join(temp.path, 'loop'), port: 0, hostname: '127.0.0.1' })
  const builtin = await DetectorNode.start({
    config: loadNodeConfig({ LOOP_HOST: loop.url, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', DATA_FOLDER: join(temp.path, 'builtin'), PORT: '0', BIND_HOST: '127.0.0.1', VERSION_CONTROL_DEFAULT: 'pause', INFERENCE_BACKEND: 'cpu' }),
  })
  while (!builtin.active.logic) await Bun.sleep(20)
  const photo = new Uint8Array(await readFile(join(import.meta.dir, '../test/fixtures/astronaut.jpg')))
  const size = process.argv.indexOf('--size')
  const [width, height] = (size > 0 ? process.argv[size + 1]! : '640x480').split('x').map(Number) as [number, number]
  const jpeg = new Uint8Array(await new Transformer(photo).resize(width, height).jpeg(85))
  console.log(`custom logic bench: ${width}×${height} JPEG ${jpeg.length} B, ${navigator.hardwareConcurrency} cores`)
  const rows = await measureCustomLogic({ loopUrl: loop.url, dataFolder: temp.path, jpeg, builtinUrl: builtin.url, seconds: at > 0 ? Number(process.argv[at + 1]) : 3, clients: process.env.CLIENTS ? process.env.CLIENTS.split(',').map(Number) : undefined, phase: (what) => console.error(`… ${what}`), otherUrl: flag('--python-url') })
  for (const line of describeCustomLogic(rows)) console.log(line)
  await builtin.stop()
  await loop.stop()
  await temp.cleanup()
  process.exit(0)
}
