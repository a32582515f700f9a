import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { cp, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { SCHEMA_VERSION } from '../../src/local-loop/loop-schema.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'
import { startTrainer, type StartedTrainer } from '../trainer/trainer-node-fixture.ts'
import { makeJpeg, postImages, uploadItem } from './loop-test-peer.ts'

setDefaultTimeout(60_000)

/**
 * fixtures/schema-v1-data is a data folder written by the local loop before it assigned image ids (schema 1):
 * project local/demo with the images `2026-12-04_18:24:16.317000` (inbox, a detector outbox name) and `plain-1`
 * (complete), uploaded with uploadItem(id, …, makeJpeg(32, 24)) and makeJpeg(24, 16).
 */
const FIXTURE = join(import.meta.dirname, 'fixtures', 'schema-v1-data')
const OLD_ID = '2026-12-04_18:24:16.317000'

describe('a data folder of schema 1 keeps working', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>
  let loop: LocalLoop
  let trainer: StartedTrainer | undefined

  beforeAll(async () => {
    temp = await makeTempDir('lln-schema-v1-')
    await cp(FIXTURE, join(temp.path, 'loop'), { recursive: true })
    loop = await LocalLoop.start({ dataFolder: join(temp.path, 'loop'), port: 0, hostname: '127.0.0.1' })
  })
  afterAll(async () => {
    await trainer?.node.stop()
    await loop?.stop()
    await temp?.cleanup()
  })

  test('it is migrated: old images keep their ids and get their file name; the bytes are served', async () => {
    const db = new DatabaseSync(join(temp.path, 'loop', 'loop.sqlite'), { readOnly: true })
    expect(db.prepare('PRAGMA user_version').get()?.user_version).toBe(SCHEMA_VERSION)
    db.close()
    expect(loop.listImages('local', 'demo').map((i) => [i.id, i.file_name, i.state])).toEqual([
      [OLD_ID, `image_${OLD_ID}.jpg`, 'inbox'],
      ['plain-1', 'image_plain-1.jpg', 'complete'],
    ])
    const cookie = (await fetch(`${loop.url}/api/login`, { method: 'POST', body: new URLSearchParams({ username: 'a', password: 'b' }) })).headers.get('set-cookie')!
    const main = await fetch(`${loop.url}/api/local/projects/demo/images/${encodeURIComponent(OLD_ID)}/main`, { headers: { cookie } })
    expect(main.status).toBe(200)
    expect(new Uint8Array(await main.arrayBuffer()).subarray(0, 2)).toEqual(new Uint8Array([0xff, 0xd8]))
  })

  test('an outbox retry of an image uploaded before the migration is recognised; new uploads get uuids', async () => {
    const response = await postImages(loop.url, 'local', 'demo', [...uploadItem(OLD_ID, { tags: ['again'] }, makeJpeg(32, 24)), ...uploadItem('new-1')])
    expect(response.status).toBe(200)
    const answer = (await response.json()) as { stored: string[]; duplicates: string[] }
    expect(answer.duplicates).toEqual([OLD_ID])
    expect(answer.stored[0]).toMatch(/^[0-9a-f-]{36}$/)
  })

  test('a training over images with such ids completes, and their detections reach the Loop (issue: "image ids that are not safe file names")', async () => {
    trainer = await startTrainer(loop, join(temp.path, 'trainer'))
    const { ack } = await loop.startTraining('local', 'demo', { node: trainer.node.uuid, modelVariant: 'small', hyperparameters: { epochs: 1, epoch_ms: 10 } })
    expect(ack).toMatchObject({ success: true })
    const metrics = () => trainer!.node.runtime.metrics.render()
    await waitFor(() => /lln_trainer_trainings_total\{outcome="\w+"\} 1/.test(metrics()), 30_000, 'the training ended')
    expect(metrics()).toContain('lln_trainer_trainings_total{outcome="completed"} 1')
    const byId = new Map(loop.listImages('local', 'demo').map((i) => [i.id, i]))
    expect(byId.get(OLD_ID)!.has_trainer_detections).toBe(true)
    expect(byId.get('plain-1')!.has_trainer_detections).toBe(true)
    const cached = await readdir(join(temp.path, 'trainer', 'local', 'demo', 'images'))
    expect(cached).toContain('2026-12-04_18%3A24%3A16%2E317000.jpg')
    expect(cached).toContain('plain-1.jpg')
  })
})
