/**
 * The web page's API over HTTP against a real local loop (no browser): the gallery pages and filters in SQLite,
 * thumbnails made once and kept on disk, uploads, annotation edits and state moves, the live event stream, and
 * the login it all requires.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { galleryWhere, nextDay } from '../../src/local-loop/image-gallery.ts'
import { thumbnailSize } from '../../src/local-loop/thumbnails.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

const USER = { username: 'web', password: 'secret' }
const ORG = 'local'
const PROJECT = 'demo'
const fixtures = join(import.meta.dir, '../fixtures')
let t: TestLoop
let cookie = ''
const base = () => `${t.loop.url}/admin/projects/${ORG}/${PROJECT}`
const call = async (path: string, init: RequestInit = {}) => {
  const response = await fetch(path, { ...init, headers: { cookie, ...(init.headers as Record<string, string> | undefined) } })
  const type = response.headers.get('content-type') ?? ''
  return { status: response.status, type, body: type.includes('json') ? await response.json() as any : new Uint8Array(await response.arrayBuffer()) }
}
const sendJson = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

beforeAll(async () => {
  t = await startTestLoop(USER)
  t.loop.store.setCategories(ORG, PROJECT, [{ id: 'cat-box', name: 'thing', description: null, hotkey: null, color: '#ff0000', point_size: null, type: 'box' }])
  const astronaut = new Uint8Array(await readFile(join(fixtures, 'astronaut.jpg')))
  const coffee = new Uint8Array(await readFile(join(fixtures, 'coffee.jpg')))
  for (let i = 0; i < 7; i++) await t.loop.addImage(ORG, PROJECT, { jpeg: i % 2 ? coffee : astronaut, state: i < 3 ? 'complete' : 'inbox', tags: [`t${i % 2}`], source: i === 6 ? 'rig' : null })
  const login = await fetch(`${t.loop.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(USER) })
  cookie = login.headers.get('set-cookie')!.split(';')[0]!
})
afterAll(() => t.cleanup())

describe('the gallery', () => {
  test('pages newest first, counts, filters by state, tag and source, and lists the facets', async () => {
    const first = await call(`${base()}/gallery?per_page=3`)
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ total: 7, page: 1, per_page: 3, facets: { tags: ['t0', 't1'], sources: ['rig'], cameras: [] } })
    const all = t.loop.listImages(ORG, PROJECT).map((image) => image.id)
    expect(first.body.images.map((i: { id: string }) => i.id)).toEqual(all.slice(-3).reverse())
    const third = await call(`${base()}/gallery?per_page=3&page=3`)
    expect(third.body.images.map((i: { id: string }) => i.id)).toEqual([all[0]])
    expect((await call(`${base()}/gallery?state=complete`)).body.total).toBe(3)
    expect((await call(`${base()}/gallery?tag=t1`)).body.total).toBe(3)
    expect((await call(`${base()}/gallery?source=rig`)).body.images.map((i: { id: string }) => i.id)).toEqual([all[6]])
    const today = new Date().toISOString().slice(0, 10)
    expect((await call(`${base()}/gallery?from=2000-01-01&to=2000-12-31`)).body.total).toBe(0)
    expect((await call(`${base()}/gallery?from=${nextDay(today)}`)).body.total).toBe(0)
  })

  test('a new upload shows in the facets at once (they are kept only until the images change)', async () => {
    const form = new FormData()
    form.append('files', new File([new Uint8Array(await readFile(join(fixtures, 'rocket.jpg')))], 'rocket.jpg', { type: 'image/jpeg' }))
    form.append('tags', 'rocket, launch')
    const uploaded = await call(`${base()}/images`, { method: 'POST', body: form })
    expect(uploaded.status).toBe(200)
    expect(uploaded.body.ids).toHaveLength(1)
    const page = await call(`${base()}/gallery?tag=launch`)
    expect(page.body.images).toEqual([expect.objectContaining({ id: uploaded.body.ids[0], source: 'web upload', tags: ['rocket', 'launch'], state: 'inbox' })])
    expect(page.body.facets.tags).toEqual(['launch', 'rocket', 't0', 't1'])
  })

  test('bad queries are 422 naming the parameter; filters are bound as parameters, never as SQL', async () => {
    for (const [query, says] of [['per_page=0x10', '/per_page'], ['page=-1', '/page'], ['state=lost', '/state'], ['from=2026-1-1', '/from']]) {
      const answer = await call(`${base()}/gallery?${query}`)
      expect({ query, status: answer.status }).toEqual({ query, status: 422 })
      expect(answer.body.detail).toContain(says)
    }
    expect(galleryWhere('o', 'p', { tag: "x' OR 1=1 --" })).toEqual({
      sql: 'organization = $organization AND project = $project AND EXISTS (SELECT 1 FROM json_each(images.tags) WHERE json_each.value = $tag)',
      params: { organization: 'o', project: 'p', tag: "x' OR 1=1 --" },
    })
    expect((await call(`${t.loop.url}/admin/projects/${ORG}/nope/gallery`)).status).toBe(404)
  })
})

describe('thumbnails', () => {
  test('a JPEG at most 320 pixels on its long side, made once and then read from the cache', async () => {
    expect(thumbnailSize(600, 400)).toEqual({ width: 320, height: 213 })
    expect(thumbnailSize(100, 50)).toEqual({ width: 100, height: 50 })
    const id = t.loop.listImages(ORG, PROJECT).find((image) => image.width === 600)!.id
    const first = await call(`${base()}/images/${id}/thumbnail`)
    expect(first.type).toBe('image/jpeg')
    const bytes = first.body as Uint8Array
    expect([bytes[0], bytes[1]]).toEqual([0xff, 0xd8])
    const cached = join(t.dataFolder, 'thumbnails', ORG, PROJECT, `${id}.jpg`)
    const made = (await stat(cached)).mtimeMs
    const again = await call(`${base()}/images/${id}/thumbnail`)
    expect(again.body).toEqual(bytes)
    expect((await stat(cached)).mtimeMs).toBe(made)
    // the decoded size: SOF0 carries height and width
    const sof = bytes.findIndex((b, i) => b === 0xff && (bytes[i + 1] === 0xc0 || bytes[i + 1] === 0xc2))
    expect({ height: (bytes[sof + 5]! << 8) | bytes[sof + 6]!, width: (bytes[sof + 7]! << 8) | bytes[sof + 8]! }).toEqual({ height: 213, width: 320 })
  })

  test('an image whose file is gone answers 404, not 500', async () => {
    const id = await t.loop.addImage(ORG, PROJECT, { jpeg: new Uint8Array(await readFile(join(fixtures, 'coffee.jpg'))) })
    await rm(t.loop.store.images.path(t.loop.store.images.get(ORG, PROJECT, id)!))
    const answer = await call(`${base()}/images/${id}/thumbnail`)
    expect(answer).toMatchObject({ status: 404, body: { detail: expect.stringContaining('missing') } })
  })

  test('deleting the project removes its thumbnails', async () => {
    const scratch = await startTestLoop(USER)
    try {
      const id = await scratch.loop.addImage(ORG, PROJECT, { jpeg: new Uint8Array(await readFile(join(fixtures, 'coffee.jpg'))) })
      const basic = { authorization: `Basic ${btoa(`${USER.username}:${USER.password}`)}` }
      expect((await fetch(`${scratch.loop.url}/admin/projects/${ORG}/${PROJECT}/images/${id}/thumbnail`, { headers: basic })).status).toBe(200)
      expect(existsSync(join(scratch.dataFolder, 'thumbnails', ORG, PROJECT))).toBe(true)
      await scratch.loop.deleteProject(ORG, PROJECT)
      expect(existsSync(join(scratch.dataFolder, 'thumbnails', ORG, PROJECT))).toBe(false)
    } finally {
      await scratch.cleanup()
    }
  })
})

describe('annotations and states', () => {
  test('add, replace and delete a box; a point; move the state; refusals name the problem', async () => {
    const id = t.loop.listImages(ORG, PROJECT)[0]!.id
    const added = await call(`${base()}/images/${id}/annotations`, sendJson('POST', { kind: 'box', category_id: 'cat-box', x: 1, y: 2, width: 30, height: 40 }))
    expect(added.status).toBe(200)
    expect(added.body.image.box_annotations).toEqual([{ category_name: 'thing', category_id: 'cat-box', x: 1, y: 2, width: 30, height: 40 }])
    const replaced = await call(`${base()}/images/${id}/annotations/box/0`, sendJson('PUT', { kind: 'box', category_id: 'cat-box', x: 5, y: 5, width: 10, height: 10 }))
    expect(replaced.body.image.box_annotations).toEqual([{ category_name: 'thing', category_id: 'cat-box', x: 5, y: 5, width: 10, height: 10 }])
    await call(`${base()}/images/${id}/annotations`, sendJson('POST', { kind: 'point', category_id: 'cat-box', x: 7.5, y: 8 }))
    expect(t.loop.imageData(ORG, PROJECT, id).point_annotations).toEqual([{ category_name: 'thing', category_id: 'cat-box', x: 7.5, y: 8 }])
    const deleted = await call(`${base()}/images/${id}/annotations/box/0`, { method: 'DELETE' })
    expect(deleted.body.image.box_annotations).toEqual([])

    expect((await call(`${base()}/images/${id}/annotations/box/3`, { method: 'DELETE' })).status).toBe(404)
    const unknownCategory = await call(`${base()}/images/${id}/annotations`, sendJson('POST', { kind: 'box', category_id: 'nope', x: 1, y: 1, width: 1, height: 1 }))
    expect(unknownCategory).toMatchObject({ status: 422, body: { detail: expect.stringContaining('cat-box') } })
    const zeroWidth = await call(`${base()}/images/${id}/annotations`, sendJson('POST', { kind: 'box', category_id: 'cat-box', x: 1, y: 1, width: 0, height: 1 }))
    expect(zeroWidth.status).toBe(422)
    const mismatch = await call(`${base()}/images/${id}/annotations/point/0`, sendJson('PUT', { kind: 'box', category_id: 'cat-box', x: 1, y: 1, width: 1, height: 1 }))
    expect(mismatch).toMatchObject({ status: 422, body: { detail: expect.stringContaining('path names a point') } })
    expect((await call(`${base()}/images/${id}/annotations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })).status).toBe(400)

    expect((await call(`${base()}/images/${id}/state`, sendJson('PUT', { state: 'complete' }))).body.image.state).toBe('complete')
    expect(t.loop.imageData(ORG, PROJECT, id).state).toBe('complete')
    expect((await call(`${base()}/images/${id}/state`, sendJson('PUT', { state: 'done' }))).status).toBe(422)
    expect((await call(`${base()}/images/nope/state`, sendJson('PUT', { state: 'inbox' }))).status).toBe(404)
  })

  test('annotate without a connected annotator is a 404 naming the nodes that are connected', async () => {
    const id = t.loop.listImages(ORG, PROJECT)[0]!.id
    const answer = await call(`${base()}/images/${id}/annotate`, sendJson('POST', { category_id: 'cat-box', x0: 1, y0: 1, x1: 50, y1: 50 }))
    expect(answer).toMatchObject({ status: 404, body: { detail: expect.stringContaining('no connected node') } })
  })

  test('an upload with a file that is not a JPEG stores nothing', async () => {
    const before = t.loop.listImages(ORG, PROJECT).length
    const form = new FormData()
    form.append('files', new File([new Uint8Array(await readFile(join(fixtures, 'coffee.jpg')))], 'good.jpg'))
    form.append('files', new File(['no image'], 'bad.jpg'))
    const answer = await call(`${base()}/images`, { method: 'POST', body: form })
    expect(answer).toMatchObject({ status: 422, body: { detail: expect.stringContaining('bad.jpg') } })
    expect(t.loop.listImages(ORG, PROJECT).length).toBe(before)
  })
})

describe('login', () => {
  test('the live stream sends a snapshot, and a logout ends it with a logout event; every route then answers 401', async () => {
    const login = await fetch(`${t.loop.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(USER) })
    const session = login.headers.get('set-cookie')!.split(';')[0]!
    const response = await fetch(`${base()}/live`, { headers: { cookie: session } })
    expect(response.headers.get('content-type')).toBe('text/event-stream')
    const reader = response.body!.getReader()
    let text = ''
    while (!text.includes('event: snapshot')) text += new TextDecoder().decode((await reader.read()).value)
    const snapshot = JSON.parse(text.split('event: snapshot\ndata: ')[1]!.split('\n')[0]!)
    expect(snapshot).toMatchObject({ nodes: [], detectors: [], trainings: [], deployment_target: null, categories: [expect.objectContaining({ id: 'cat-box' })] })
    expect((await fetch(`${t.loop.url}/api/logout`, { method: 'POST', headers: { cookie: session } })).status).toBe(200)
    while (!text.includes('event: logout')) {
      const chunk = await reader.read()
      if (chunk.done) break
      text += new TextDecoder().decode(chunk.value)
    }
    expect(text).toContain('event: logout')
    for (const path of ['/gallery', `/images/x/view`, '/live']) {
      expect((await fetch(`${base()}${path}`, { headers: { cookie: session } })).status).toBe(401)
    }
    // validation comes after the login check: nothing about the input is told to a caller without one
    expect((await fetch(`${base()}/gallery?per_page=x`)).status).toBe(401)
  })

  test('a 401 challenges a person or a script for HTTP Basic, but not the page\'s own requests (the browser would prompt)', async () => {
    const plain = await fetch(`${base()}/gallery`)
    expect(plain.status).toBe(401)
    expect(plain.headers.get('www-authenticate')).toBe('Basic realm="local loop admin"')
    const fromPage = await fetch(`${base()}/gallery`, { headers: { 'sec-fetch-dest': 'empty' } })
    expect(fromPage.status).toBe(401)
    expect(fromPage.headers.get('www-authenticate')).toBeNull()
    const basic = await fetch(`${base()}/gallery`, { headers: { authorization: `Basic ${btoa(`${USER.username}:${USER.password}`)}` } })
    expect(basic.status).toBe(200)
  })
})
