/**
 * The local Loop's storage on node:sqlite, which Bun and Deno both implement: this file runs under `bun test`
 * and under `deno test` (deno.json). A data folder written by bun:sqlite (the committed schema-1 fixture) opens
 * and migrates; statements bind named parameters strictly; transactions commit or roll back as a whole.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { LoopStore } from '../../src/local-loop/loop-store.ts'
import { SqliteDatabase } from '../../src/local-loop/sqlite-database.ts'
import { makeTempDir } from '../support/temp.ts'

const SCHEMA_1_FIXTURE = join(import.meta.dirname!, 'fixtures', 'schema-v1-data')
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xd9])

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

async function tempFolder(): Promise<string> {
  const temp = await makeTempDir('lln-loop-store-')
  cleanups.push(temp.cleanup)
  return temp.path
}

describe('SqliteDatabase', () => {
  test('a named parameter left out is an error, not a NULL', async () => {
    const db = new SqliteDatabase(join(await tempFolder(), 'x.sqlite'))
    cleanups.push(async () => db.close())
    db.exec('CREATE TABLE t (a TEXT, b TEXT)')
    expect(() => db.query('INSERT INTO t (a, b) VALUES ($a, $b)').run({ a: 'x' })).toThrow('$b is missing')
    expect(db.query('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 0 })
    expect(db.query('INSERT INTO t (a, b) VALUES ($a, $b)').run({ a: 'x', b: null })).toEqual({ changes: 1 })
    expect(db.query('SELECT a, b FROM t WHERE a = $a').all({ a: 'x' })).toEqual([{ a: 'x', b: null }])
    expect(db.query('SELECT a FROM t WHERE a = $a').get({ a: 'none' })).toBeUndefined()
  })

  test('a transaction commits what its work returns and rolls back all of what throws', async () => {
    const db = new SqliteDatabase(join(await tempFolder(), 'x.sqlite'))
    cleanups.push(async () => db.close())
    db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY)')
    const insert = db.query('INSERT INTO t (a) VALUES ($a)')
    expect(db.transaction(() => insert.run({ a: 1 }).changes + insert.run({ a: 2 }).changes)).toBe(2)
    expect(() => db.transaction(() => {
      insert.run({ a: 3 })
      insert.run({ a: 1 })
    })).toThrow('UNIQUE')
    expect(db.query('SELECT a FROM t ORDER BY a').all().map((row) => row.a)).toEqual([1, 2])
    // the connection is usable afterwards: the failed transaction did not stay open
    expect(db.transaction(() => insert.run({ a: 3 }).changes)).toBe(1)
  })
})

describe('LoopStore', () => {
  test('what is stored is there after reopening the folder', async () => {
    const folder = await tempFolder()
    const store = await LoopStore.open(folder)
    expect(store.ensureProject('org', 'demo')).toBe(true)
    expect(store.ensureProject('org', 'demo')).toBe(false)
    const first = await store.images.add('org', 'demo', { state: 'inbox', width: 4, height: 3, jpeg: JPEG, fileName: 'image_a.jpg', tags: ['t'] })
    const again = await store.images.add('org', 'demo', { state: 'inbox', width: 4, height: 3, jpeg: JPEG, fileName: 'image_a.jpg' })
    expect(again).toEqual({ created: false, id: first.id })
    const training = store.createTraining('org', 'demo', { modelVariant: 'small' })
    expect(store.createTraining('org', 'demo').number).toBe(training.number + 1)
    store.close()

    const reopened = await LoopStore.open(folder)
    cleanups.push(async () => reopened.close())
    expect(reopened.images.list('org', 'demo').map((image) => [image.id, image.fileName, image.tags, image.width])).toEqual([[first.id, 'image_a.jpg', ['t'], 4]])
    expect(reopened.images.counts('org', 'demo')).toEqual({ inbox: 1 })
    expect(reopened.trainings('org', 'demo').map((t) => [t.number, t.modelVariant])).toEqual([[2, ''], [1, 'small']])
    expect(reopened.hasProject('org', 'other')).toBe(false)
  })

  test('a data folder written by bun:sqlite with schema 1 opens and is migrated, its images kept', async () => {
    const folder = await tempFolder()
    await cp(SCHEMA_1_FIXTURE, folder, { recursive: true })
    const store = await LoopStore.open(folder)
    cleanups.push(async () => store.close())
    expect(store.images.list('local', 'demo').map((image) => [image.id, image.fileName, image.state])).toEqual([
      ['2026-12-04_18:24:16.317000', 'image_2026-12-04_18:24:16.317000.jpg', 'inbox'],
      ['plain-1', 'image_plain-1.jpg', 'complete'],
    ])
  })
})
