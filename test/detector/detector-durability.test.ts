import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { formatOutboxIdentifier } from '../../src/contract/index.ts'
import { startNodeProcess, type NodeProcess } from '../support/node-process.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

setDefaultTimeout(120_000)

const IMAGES = 200
const jpeg = new Uint8Array(await readFile(join(import.meta.dir, '../fixtures/coffee.jpg')))

let testLoop: TestLoop
let loop: LocalLoop

beforeAll(async () => {
  testLoop = await startTestLoop()
  loop = testLoop.loop
})
afterAll(async () => {
  await testLoop?.cleanup()
})

async function startDetector(): Promise<NodeProcess> {
  return startNodeProcess(['detector'], {
    env: {
      LOOP_HOST: loop.url, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', DATA_FOLDER: join(testLoop.folder, 'detector'),
      INFERENCE_BACKEND: 'cpu', INFERENCE_THREADS: '1', LOG_LEVEL: 'warn',
    },
  })
}

// the outbox's item names: the Loop assigns ids of its own, so a duplicate shows as a repeated file name
const uploadedIds = () => loop.listImages('local', 'demo').map((i) => i.file_name)

test('kill -9 while 200 images are queued and uploading: after a restart every image arrives once; a 422 item is quarantined', async () => {
  let { child, url } = await startDetector()
  try {
    expect((await fetch(`${url}/outbox_mode`, { method: 'PUT', body: 'stopped' })).status).toBe(200)
    for (let sent = 0; sent < IMAGES; sent += 10) {
      const form = new FormData()
      for (let i = 0; i < 10; i++) form.append('files', new File([jpeg as Uint8Array<ArrayBuffer>], `image-${sent + i}.jpg`, { type: 'image/jpeg' }))
      const response = await fetch(`${url}/upload?source=durability`, { method: 'POST', body: form })
      expect(response.status).toBe(200)
    }
    const queued = await readdir(join(testLoop.folder, 'detector/outbox/normal'))
    expect(queued).toHaveLength(IMAGES)
    // uploading has started when the kill comes
    expect((await fetch(`${url}/outbox_mode`, { method: 'PUT', body: 'continuous_upload' })).status).toBe(200)
    await waitFor(() => uploadedIds().length >= 20, 30_000, 'the first uploads')
    child.proc.kill('SIGKILL')
    await child.proc.exited
    const arrivedBeforeKill = uploadedIds().length
    expect(arrivedBeforeKill).toBeLessThan(IMAGES)

    // an item an older node left behind that the Loop refuses (its JPEG is garbage): it must not block the rest
    const badId = formatOutboxIdentifier(new Date(2020, 0, 1), 1)
    const badFolder = join(testLoop.folder, 'detector/outbox/normal', badId)
    await mkdir(badFolder, { recursive: true })
    await writeFile(join(badFolder, `image_${badId}.json`), JSON.stringify({ tags: [], source: 'bad', created: null }))
    await writeFile(join(badFolder, `image_${badId}.jpg`), 'this is not a jpeg')

    ;({ child, url } = await startDetector())
    await waitFor(() => uploadedIds().length >= IMAGES, 60_000, `all ${IMAGES} images in the loop`)
    const ids = uploadedIds()
    expect(ids).toHaveLength(IMAGES)
    expect(new Set(ids).size).toBe(IMAGES)
    expect(loop.listImages('local', 'demo').every((i) => i.source === 'durability')).toBe(true)
    await waitFor(async () => (await readdir(join(testLoop.folder, 'detector/outbox/rejected')).catch((): string[] => [])).includes(badId), 30_000, 'the bad item quarantined')
    await waitFor(async () => (await readdir(join(testLoop.folder, 'detector/outbox/normal'))).length === 0, 30_000, 'an empty queue')
  } finally {
    await child.kill('SIGTERM')
  }
})
