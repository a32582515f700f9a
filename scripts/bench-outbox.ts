/**
 * Outbox enqueue throughput: how many images per second `Outbox.save` makes crash-safe on this disk
 * (two fsynced files, a fsynced staging folder, a rename, a fsynced queue folder per item).
 *
 *   bun scripts/bench-outbox.ts [--images 2000] [--concurrency 1,8,32] [--writes 4] [--dir /var/tmp]
 *
 * Prints images/s per concurrency level: 1 = one save awaited after another; more = that many saves in
 * flight, as when the detector saves fire-and-forget. `--writes` sets the outbox's write concurrency (a list
 * compares several; default: the outbox's own). Uploading is stopped during the run.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { ImageMetadata } from '../src/contract/index.ts'
import { Outbox } from '../src/detector/outbox.ts'
import { setLogLevel } from '../src/foundation/log.ts'

setLogLevel('warn')

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '1,8,32' },
    writes: { type: 'string' },
    dir: { type: 'string', default: tmpdir() },
  },
})
const images = Number(values.images)
const levels = values.concurrency!.split(',').map(Number)
const writeLevels = values.writes ? values.writes.split(',').map(Number) : [undefined]

const jpeg = new Uint8Array(await Bun.file(new URL('../test/fixtures/chelsea.jpg', import.meta.url)).arrayBuffer())
const metadata: ImageMetadata = {
  box_detections: Array.from({ length: 5 }, (_, i) => ({
    category_name: 'dirt', x: i * 20, y: 10, width: 15, height: 15, model_name: '1.0', confidence: 0.42, category_id: 'c1',
  })),
  point_detections: [], segmentation_detections: [], classification_detections: [],
  tags: ['uncertain'], created: null, source: 'bench',
}

console.log(`outbox enqueue: ${images} images of ${jpeg.length} bytes each, data folders under ${values.dir}`)
const folders: string[] = []
try {
  for (const writeConcurrency of writeLevels) for (const concurrency of levels) {
    const dataFolder = await mkdtemp(join(values.dir!, 'bench-outbox-'))
    folders.push(dataFolder)
    const outbox = await Outbox.open({
      dataFolder, upload: async () => new Response(null, { status: 503 }), limits: { maxItems: images + 1 },
      ...(writeConcurrency ? { writeConcurrency } : {}), writeBacklog: { maxItems: Math.max(concurrency, 64) },
    })
    await outbox.setMode('stopped')
    let next = 0
    let failed = 0
    const started = performance.now()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < images) {
        next++
        const result = await outbox.save(jpeg, metadata, false)
        if (!result.saved) failed++
      }
    }))
    const seconds = (performance.now() - started) / 1000
    await outbox.stop()
    // resuming: how long a restart takes to load this queue
    const openStarted = performance.now()
    const resumed = await Outbox.open({ dataFolder, upload: async () => new Response(null, { status: 503 }), limits: { maxItems: images + 1 } })
    const openMs = performance.now() - openStarted
    await resumed.stop()
    console.log(`${writeConcurrency ? `writes ${String(writeConcurrency).padStart(3)}, ` : ''}concurrency ${String(concurrency).padStart(3)}: ${(images / seconds).toFixed(0).padStart(6)} images/s` +
      `  (${resumed.count()} queued, ${failed} failed, ${seconds.toFixed(2)} s; reopening took ${openMs.toFixed(0)} ms)`)
  }
} finally {
  // removed only at the end: deleting inodes between runs slows the next run's inode allocation on some file systems
  for (const folder of folders) await rm(folder, { recursive: true, force: true })
}
