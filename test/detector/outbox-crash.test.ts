import { afterEach, expect, setDefaultTimeout, test } from 'bun:test'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isOutboxIdentifier } from '../../src/detector/outbox-policy.ts'
import { Outbox } from '../../src/detector/outbox.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

// integration tests with real servers and child processes; bun's default of 5 s is tight on a loaded 2-core machine
setDefaultTimeout(60_000)

// Crash safety: a child process saves items as fast as it can and is killed with SIGKILL in the middle;
// a new Outbox on the folder must see only complete items (no torn json/jpg) and no staging leftovers.

const OUTBOX_MODULE = new URL('../../src/detector/outbox.ts', import.meta.url).pathname
const JPEG_PATH = new URL('../fixtures/chelsea.jpg', import.meta.url).pathname

const CHILD = `
import { Outbox } from ${JSON.stringify(OUTBOX_MODULE)}
const [dataFolder, jpegPath, run] = process.argv.slice(2)
const jpeg = new Uint8Array(await Bun.file(jpegPath).arrayBuffer())
const outbox = await Outbox.open({ dataFolder, upload: async () => new Response(null, { status: 503 }) })
await outbox.setMode('stopped')
let n = 0
for (;;) {
  // several saves in flight, as when the detector saves fire-and-forget
  await Promise.all(Array.from({ length: 8 }, () => {
    const source = 'child-' + run + '-' + n++
    return outbox.save(jpeg, {
      box_detections: [{ category_name: 'dirt', x: n, y: 0, width: 10, height: 10, model_name: '1.0', confidence: 0.4, category_id: null }],
      tags: ['uncertain', source.repeat(20)], created: null, source,
    }, n % 5 === 0)
  }))
}
`

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

test('SIGKILL while saving leaves only complete items; the next start cleans the staging folder', async () => {
  const dir = await makeTempDir('lln-outbox-crash-')
  cleanups.push(dir.cleanup)
  const data = join(dir.path, 'data')
  const script = join(dir.path, 'child.ts')
  await Bun.write(script, CHILD)
  const jpeg = new Uint8Array(await Bun.file(JPEG_PATH).arrayBuffer())
  const queued = async () => (await readdir(join(data, 'outbox', 'normal')).catch(() => [])).length +
    (await readdir(join(data, 'outbox', 'priority')).catch(() => [])).length
  const staging = async () => (await readdir(join(data, 'tmp')).catch(() => [] as string[])).filter(isOutboxIdentifier)

  let sawStagingAtKill = 0
  for (let round = 0; round < 3; round++) {
    const child = Bun.spawn([process.execPath, script, data, JPEG_PATH, String(round)], { stdout: 'ignore', stderr: 'inherit', env: { ...process.env, LOG_LEVEL: 'error' } })
    cleanups.push(() => child.kill('SIGKILL'))
    const before = await queued()
    await waitFor(async () => (await queued()) >= before + 20, 30_000, 'the child to save items', 5)
    // kill while items are half-written when possible: poll for a staging folder, then kill at once
    await waitFor(async () => (await staging()).length > 0, 2_000, 'a staging folder', 1).catch(() => undefined)
    child.kill('SIGKILL')
    expect(await child.exited).not.toBe(0)
    if ((await staging()).length > 0) sawStagingAtKill++
  }

  const outbox = await Outbox.open({ dataFolder: data, upload: async () => new Response(null, { status: 503 }) })
  cleanups.push(() => outbox.stop())
  expect(outbox.getMode()).toBe('stopped')
  expect(outbox.count()).toBeGreaterThanOrEqual(60)
  expect(outbox.count()).toBe(await queued())
  expect(await staging()).toEqual([])

  // every queued item is whole: parseable metadata naming its source, and the exact JPEG bytes
  const sources = new Set<string>()
  for (const id of outbox.queuedIds()) {
    const folder = outbox.itemFolder(id)!
    const metadata = await Bun.file(join(folder, `image_${id}.json`)).json()
    expect(metadata.source).toMatch(/^child-\d-\d+$/)
    expect(metadata.tags).toEqual(['uncertain', metadata.source.repeat(20)])
    sources.add(metadata.source)
    expect(new Uint8Array(await Bun.file(join(folder, `image_${id}.jpg`)).arrayBuffer())).toEqual(jpeg)
  }
  expect(sources.size).toBe(outbox.count())
  // nothing was quarantined: a save that was cut short never became visible in a queue
  expect(await readdir(join(data, 'outbox', 'rejected'))).toEqual([])
  // the test is meant to kill mid-write; say so when it never managed to (it still checks the rest)
  if (sawStagingAtKill === 0) console.warn('outbox-crash: no kill happened while a staging folder existed')
})
