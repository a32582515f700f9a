import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Type } from '@sinclair/typebox'
import { DeploymentTarget, ImageData, ImageIdsResponse, LoopModelsResponse, ModelUploadResponse, ProjectInfo, ProjectsResponse, decode } from '../../src/contract/index.ts'
import { listZipEntries, readZipEntry, createZip } from '../../src/foundation/zip-archive.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { login, makeJpeg, multipart, postImages, uploadItem } from './loop-test-peer.ts'

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

function unzip(bytes: Uint8Array): Record<string, string> {
  return Object.fromEntries(listZipEntries(bytes).map((entry) => [entry.name, new TextDecoder().decode(readZipEntry(bytes, entry))]))
}

describe('local loop REST API', () => {
  let fixture: TestLoop
  let url: string
  let cookie: string
  const get = (path: string, withLogin = true) => fetch(url + path, { headers: withLogin ? { cookie } : {} })
  const send = (path: string, init: RequestInit) => fetch(url + path, { ...init, headers: { cookie, ...(init.headers as Record<string, string> | undefined) } })

  beforeAll(async () => {
    fixture = await startTestLoop({ maxUploadBytes: 2 * 1024 * 1024 })
    url = fixture.loop.url
    cookie = await login(url)
    await fixture.loop.createProject('zauberzeug', { project_name: 'pytest_nodelib_general', complete: 3, box_categories: 2, point_categories: 2, segmentation_categories: 2, trainings: 1, box_detections: 3 })
  })
  afterAll(() => fixture.cleanup())

  test('status needs no login; data needs a session (401 → login → 200)', async () => {
    expect((await get('/api/status', false)).status).toBe(200)
    const refused = await get('/api/local/projects/demo/data', false)
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as { detail: string }).detail).toContain('POST /api/login')
    const answer = await get('/api/local/projects/demo/data')
    expect(answer.status).toBe(200)
    // the seeded project of a first start: empty, no categories
    expect(await answer.json()).toMatchObject({ image_ids: [], categories: [] })
  })

  test('logout ends the session', async () => {
    const own = await login(url)
    expect((await fetch(`${url}/api/logout`, { method: 'POST', headers: { cookie: own } })).status).toBe(200)
    expect((await fetch(`${url}/api/local/projects/demo/data`, { headers: { cookie: own } })).status).toBe(401)
  })

  test('unknown projects, images and routes are 404 with a detail naming them', async () => {
    const project = await get('/api/nobody/projects/nothing/data')
    expect(project.status).toBe(404)
    expect(await project.json()).toEqual({ detail: 'project nobody/nothing does not exist' })
    const image = await get('/api/local/projects/demo/images/missing/main')
    expect(image.status).toBe(404)
    expect(((await image.json()) as { detail: string }).detail).toContain('image missing')
    const route = await get('/api/what/ever')
    expect(route.status).toBe(404)
    expect(((await route.json()) as { detail: string }).detail).toContain('no route GET /api/what/ever')
  })

  describe('image upload (#13)', () => {
    test('stores paired items with their metadata, no login needed', async () => {
      const jpg = makeJpeg(40, 30)
      const response = await postImages(url, 'local', 'demo', [
        ...uploadItem('2025-03-05_14:22:01.000001', { tags: ['uncertain'], source: 'cam', box_detections: [{ category_name: 'c', x: 1, y: 2, width: 3, height: 4, model_name: '1.0', confidence: 0.4 }] }, jpg),
        ...uploadItem('u2', { state: 'trash', creation_date: '2025-01-02T03:04:05' }),
      ])
      expect(response.status).toBe(200)
      const outcome = (await response.json()) as { stored: string[]; duplicates: string[]; items: { file_name: string; id: string; created: boolean }[] }
      // ids are the Loop's own (time-ordered UUIDs), never the uploader's file name, which is kept as metadata
      expect(outcome.stored).toHaveLength(2)
      for (const id of outcome.stored) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      const [first, second] = outcome.stored as [string, string]
      expect(outcome.items).toEqual([
        { file_name: 'image_2025-03-05_14:22:01.000001.jpg', id: first, created: true },
        { file_name: 'image_u2.jpg', id: second, created: true },
      ])
      const images = (await (await get(`/api/local/projects/demo/images?ids=${first},${second},unknown`)).json()) as { images: Record<string, unknown>[] }
      expect(images.images).toHaveLength(2)
      expect(images.images[0]).toMatchObject({ id: first, file_name: 'image_2025-03-05_14:22:01.000001.jpg', width: 40, height: 30, state: 'inbox', tags: ['uncertain'], source: 'cam' })
      expect((images.images[0]!.box_detections as unknown[]).length).toBe(1)
      expect(images.images[1]).toMatchObject({ id: second, state: 'trash', created: '2025-01-02T03:04:05' })
      const file = await get(`/api/local/projects/demo/images/${first}/main`)
      expect(file.headers.get('content-type')).toBe('image/jpeg')
      expect(new Uint8Array(await file.arrayBuffer())).toEqual(new Uint8Array(jpg))
      // #4: trash is only listed when asked for
      const all = (await (await get('/api/local/projects/demo/data')).json()) as { image_ids: string[] }
      expect(all.image_ids).toContain(first)
      expect(all.image_ids).not.toContain(second)
      expect(((await (await get('/api/local/projects/demo/data?state=trash')).json()) as { image_ids: string[] }).image_ids).toEqual([second])
    })

    test('a re-upload of the same item (file name and bytes) is accepted and not duplicated; other bytes under that name are a new image', async () => {
      const first = await postImages(url, 'local', 'demo', uploadItem('dup-1', { tags: ['first'] }))
      const [id] = ((await first.json()) as { stored: string[] }).stored as [string]
      const again = await postImages(url, 'local', 'demo', [...uploadItem('dup-1', { tags: ['second'] }), ...uploadItem('dup-2')])
      expect(again.status).toBe(200)
      const answer = (await again.json()) as { stored: string[]; duplicates: string[] }
      expect(answer.duplicates).toEqual([id])
      expect(answer.stored).toHaveLength(1)
      const named = () => fixture.loop.listImages('local', 'demo').filter((i) => i.file_name === 'image_dup-1.jpg')
      expect(named().map((i) => i.id)).toEqual([id])
      expect(named()[0]!.tags).toEqual(['first'])
      // two detectors may name two different images alike (their clocks agree): both are kept
      const other = await postImages(url, 'local', 'demo', uploadItem('dup-1', {}, makeJpeg(50, 50)))
      expect(((await other.json()) as { stored: string[] }).stored).toHaveLength(1)
      expect(named()).toHaveLength(2)
    })

    test('percent-encoded part file names (RFC 7578, as the Python outbox sends them) are decoded', async () => {
      const stem = '2026-12-04_17:04:58.477070'
      const encoded = encodeURIComponent(stem)
      const boundary = 'lln-boundary'
      const jpg = makeJpeg(20, 10)
      const head = (name: string, type: string) => `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${name}"\r\nContent-Type: ${type}\r\n\r\n`
      const body = new Uint8Array(await new Blob([
        head(`image_${encoded}.json`, 'application/json'), '{"tags":["aiohttp"]}', '\r\n',
        head(`image_${encoded}.jpg`, 'image/jpeg'), jpg as BlobPart, `\r\n--${boundary}--\r\n`,
      ]).arrayBuffer())
      const response = await fetch(`${url}/api/local/projects/demo/images`, { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } })
      expect(response.status).toBe(200)
      const { items } = (await response.json()) as { items: { file_name: string; id: string; created: boolean }[] }
      expect(items).toEqual([{ file_name: `image_${stem}.jpg`, id: expect.any(String), created: true }])
      expect(fixture.loop.listImages('local', 'demo').find((i) => i.id === items[0]!.id)).toMatchObject({ tags: ['aiohttp'], width: 20, height: 10 })
    })

    test('a batch with a broken item is 422 naming it, and stores nothing', async () => {
      const cases: [string, Parameters<typeof postImages>[3], string][] = [
        ['bad JSON', [...uploadItem('ok-a'), ...uploadItem('bad-json', '{not json')], 'image_bad-json.json: (root): malformed JSON'],
        ['wrong shape', [...uploadItem('ok-a'), ...uploadItem('bad-shape', { tags: 'x' })], 'image_bad-shape.json: /tags'],
        ['JPEG that does not decode', [...uploadItem('ok-a'), ...uploadItem('bad-jpg', {}, new TextEncoder().encode('nope'))], 'image_bad-jpg.jpg: not a JPEG'],
        ['truncated JPEG', [...uploadItem('ok-a'), ...uploadItem('cut-jpg', {}, makeJpeg(64, 64).subarray(0, 400))], 'image_cut-jpg.jpg: JPEG does not decode'],
        ['unpaired file', [...uploadItem('ok-a'), { name: 'image_lonely.jpg', content: makeJpeg() }], 'image_lonely.jpg has no matching image_lonely.json'],
      ]
      for (const [, files, detail] of cases) {
        const response = await postImages(url, 'local', 'demo', files)
        expect(response.status).toBe(422)
        expect(((await response.json()) as { detail: string }).detail).toContain(detail)
      }
      expect(fixture.loop.listImages('local', 'demo').map((i) => i.file_name)).not.toContain('image_ok-a.jpg')
    })

    test('an empty or non-multipart upload is refused, an unknown project is 404', async () => {
      expect((await fetch(`${url}/api/local/projects/demo/images`, { method: 'POST', body: new FormData() })).status).toBe(422)
      expect((await fetch(`${url}/api/local/projects/demo/images`, json({ files: [] }))).status).toBe(415)
      expect((await postImages(url, 'local', 'nope', uploadItem('x'))).status).toBe(404)
    })

    test('an oversized upload is 413', async () => {
      const response = await postImages(url, 'local', 'demo', uploadItem('big', {}, new Uint8Array(3 * 1024 * 1024)))
      expect(response.status).toBe(413)
      expect(((await response.json()) as { detail: string }).detail).toMatch(/request body larger than \d+ bytes/)
    })
  })

  describe('models (#7, #8, #11, §9)', () => {
    test('upload → download round trip with a rewritten model.json', async () => {
      const training = fixture.loop.store.createTraining('local', 'demo')
      const form = multipart([
        { name: 'weights.bin', content: new Uint8Array([1, 2, 3]) },
        { name: 'model.json', content: JSON.stringify({ categories: [{ id: 'c1', name: 'dirt' }], resolution: 320, id: 'node-says', host: 'elsewhere' }) },
      ])
      const upload = await send(`/api/local/projects/demo/trainings/${training.number}/models/latest/onnx/file`, { method: 'PUT', body: form })
      expect(upload.status).toBe(200)
      const { id, version } = (await upload.json()) as { id: string; version: string }
      expect(version).toBe(`${training.number}.0`)

      const download = await fetch(`${url}/api/local/projects/demo/models/${id}/onnx/file`)
      expect(download.status).toBe(200)
      expect(download.headers.get('content-disposition')).toBe(`attachment; filename=local_demo_${version}_onnx.zip`)
      const files = unzip(new Uint8Array(await download.arrayBuffer()))
      expect(Object.keys(files).sort()).toEqual(['model.json', 'weights.bin'])
      expect(JSON.parse(files['model.json']!)).toEqual({
        id, version, host: new URL(url).host, organization: 'local', project: 'demo', format: 'onnx', resolution: 320,
        // categories are stored decoded, so optional fields come back as null
        categories: [{ id: 'c1', name: 'dirt', description: null, hotkey: null, color: null, point_size: null, type: null }],
      })

      // a second format joins the same model; the same format again makes the next version
      const second = await send(`/api/local/projects/demo/trainings/${training.number}/models/latest/onnx_fp16/file`, {
        method: 'PUT', body: multipart([{ name: 'w16.bin', content: 'x' }, { name: 'model.json', content: '{}' }]),
      })
      expect(await second.json()).toMatchObject({ id, version, formats: ['onnx', 'onnx_fp16'] })
      const third = await send(`/api/local/projects/demo/trainings/${training.number}/models/latest/onnx/file`, {
        method: 'PUT', body: multipart([{ name: 'w.bin', content: 'y' }, { name: 'model.json', content: '{}' }]),
      })
      expect(await third.json()).toMatchObject({ version: `${training.number}.1`, formats: ['onnx'] })

      const listing = (await (await get('/api/local/projects/demo/models')).json()) as { models: { id: string; version: string; formats: string[]; host: string }[] }
      expect(listing.models.map((m) => m.version)).toEqual([`${training.number}.0`, `${training.number}.1`])
      expect(listing.models[0]).toMatchObject({ id, formats: ['onnx', 'onnx_fp16'], host: new URL(url).host })

      // §9: the converter adds a format to an existing model by id
      const converted = await send(`/api/local/projects/demo/models/${id}/tensorrt/file`, { method: 'PUT', body: multipart([{ name: 'model.engine', content: 'e' }]) })
      expect(await converted.json()).toMatchObject({ id, formats: ['onnx', 'onnx_fp16', 'tensorrt'] })
    })

    test('model upload errors: unknown training 404, no model.json 422, no login 401', async () => {
      const body = () => multipart([{ name: 'w.bin', content: 'x' }, { name: 'model.json', content: '{}' }])
      const unknown = await send('/api/local/projects/demo/trainings/0/models/latest/onnx/file', { method: 'PUT', body: body() })
      expect(unknown.status).toBe(404)
      expect(((await unknown.json()) as { detail: string }).detail).toContain('training 0 does not exist')
      const training = fixture.loop.store.createTraining('local', 'demo')
      const missing = await send(`/api/local/projects/demo/trainings/${training.number}/models/latest/onnx/file`, { method: 'PUT', body: multipart([{ name: 'w.bin', content: 'x' }]) })
      expect(missing.status).toBe(422)
      expect(((await missing.json()) as { detail: string }).detail).toContain('model.json is missing')
      const badJson = await send(`/api/local/projects/demo/trainings/${training.number}/models/latest/onnx/file`, { method: 'PUT', body: multipart([{ name: 'model.json', content: '{"categories":"no"}' }]) })
      expect(badJson.status).toBe(422)
      expect(((await badJson.json()) as { detail: string }).detail).toContain('model.json: /categories')
      expect((await fetch(`${url}/api/local/projects/demo/trainings/${training.number}/models/latest/onnx/file`, { method: 'PUT', body: body() })).status).toBe(401)
    })

    test('downloading an unknown model or format is 404', async () => {
      expect((await fetch(`${url}/api/local/projects/demo/models/nope/onnx/file`)).status).toBe(404)
      const model = fixture.loop.store.models('zauberzeug', 'pytest_nodelib_general')[0]!
      const response = await fetch(`${url}/api/zauberzeug/projects/pytest_nodelib_general/models/${model.id}/onnx/file`)
      expect(response.status).toBe(404)
      expect(((await response.json()) as { detail: string }).detail).toContain('has no format "onnx"; it has mocked')
    })
  })

  describe('generated project (T1–T3)', () => {
    const base = '/api/zauberzeug/projects/pytest_nodelib_general'

    test('has the images, categories and data a trainer downloads', async () => {
      const data = (await (await get(`${base}/data?state=complete`)).json()) as { image_ids: string[]; categories: { type: string }[] }
      expect(data.image_ids).toHaveLength(3)
      expect(data.categories.map((c) => c.type).sort()).toEqual(['box', 'box', 'point', 'point', 'segmentation', 'segmentation'])
      const images = (await (await get(`${base}/images?ids=${data.image_ids.join(',')}`)).json()) as { images: { set: string; box_annotations: unknown[]; box_detections: unknown[] }[] }
      expect(images.images).toHaveLength(3)
      expect(images.images.map((i) => i.set).sort()).toEqual(['test', 'train', 'train'])
      expect(images.images.every((i) => i.box_annotations.length === 2 && i.box_detections.length === 3)).toBe(true)
    })

    test('the latest model (charts[0].data[0]) is a mocked zip with the two known files', async () => {
      const trainings = (await (await get(`${base}/trainings`)).json()) as { charts: { data: { model_id: string }[] }[] }
      const modelId = trainings.charts[0]!.data[0]!.model_id
      const zip = await fetch(`${url}${base}/models/${modelId}/mocked/file`)
      const files = unzip(new Uint8Array(await zip.arrayBuffer()))
      expect(files['file_1.txt']).toBe('content of file one')
      expect(files['file_2.txt']).toBe('content of file two')
      expect(JSON.parse(files['model.json']!)).toMatchObject({ format: 'mocked', id: modelId, version: '1.0', organization: 'zauberzeug' })
    })

    test('generator via REST, conflict on an existing name, delete (T1) with keep_images', async () => {
      const created = await send('/api/zauberzeug/projects/generator', json({ project_name: 'gen_rest', inbox: 2, box_categories: 1 }))
      expect(created.status).toBe(200)
      expect(((await created.json()) as { image_ids: { inbox: string[] } }).image_ids.inbox).toHaveLength(2)
      expect((await send('/api/zauberzeug/projects/generator', json({ project_name: 'gen_rest' }))).status).toBe(409)
      const invalid = await send('/api/zauberzeug/projects/generator', json({ project_name: 'x', inbox: -1 }))
      expect(invalid.status).toBe(422)
      expect(((await invalid.json()) as { detail: string }).detail).toContain('/inbox')
      const huge = await send('/api/zauberzeug/projects/generator', json({ project_name: 'huge', inbox: 6_000 }))
      expect(huge.status).toBe(422)
      expect(((await huge.json()) as { detail: string }).detail).toContain('at most 5000 generated images')
      expect((await send('/api/zauberzeug/projects/gen_rest?keep_images=true', { method: 'DELETE' })).status).toBe(200)
      expect((await get('/api/zauberzeug/projects/gen_rest/data')).status).toBe(404)
      expect((await send('/api/zauberzeug/projects/gen_rest', { method: 'DELETE' })).status).toBe(404)
    })

    test('the converter listing (§9)', async () => {
      const projects = (await (await get('/api/projects')).json()) as { projects: { organization_id: string; project_id: string; resource: string }[] }
      expect(projects.projects).toContainEqual({ organization_id: 'zauberzeug', project_id: 'pytest_nodelib_general', resource: '/zauberzeug/projects/pytest_nodelib_general' })
      const info = (await (await get('/api/zauberzeug/projects/pytest_nodelib_general')).json()) as { categories: unknown[] }
      expect(info.categories).toHaveLength(6)
    })
  })

  describe('deployment target (#10), detections (#9), detector status (#12)', () => {
    const base = '/api/zauberzeug/projects/pytest_nodelib_general'

    test('404 until a target is set, then {model_uuid, version}', async () => {
      const none = await get(`${base}/deployment/target`)
      expect(none.status).toBe(404)
      expect(((await none.json()) as { detail: string }).detail).toContain('no deployment target')
      const model = fixture.loop.setDeploymentTarget('zauberzeug', 'pytest_nodelib_general', '1.0')
      expect(await (await get(`${base}/deployment/target`)).json()).toEqual({ model_uuid: model.id, version: '1.0' })
      expect(() => fixture.loop.setDeploymentTarget('zauberzeug', 'pytest_nodelib_general', '7.7')).toThrow('no model with version 7.7')
    })

    test('detections are stored per image; more than 100 or a bad shape is 422 naming the field', async () => {
      const [imageId] = fixture.loop.listImages('zauberzeug', 'pytest_nodelib_general').map((i) => i.id)
      const detections = [{ image_id: imageId, box_detections: [{ category_name: 'c', x: 1, y: 2, width: 3, height: 4, model_name: '1.0', confidence: 55 }] }, { image_id: 'gone' }]
      const stored = await send(`${base}/detections`, json(detections))
      expect(stored.status).toBe(200)
      expect(await stored.json()).toEqual({ stored: 1, unknown_image_ids: ['gone'] })
      expect(fixture.loop.imageData('zauberzeug', 'pytest_nodelib_general', imageId!).trainer_detections).toMatchObject({ image_id: imageId, box_detections: [{ confidence: 55 }] })

      const tooMany = await send(`${base}/detections`, json(Array.from({ length: 101 }, () => ({ image_id: imageId }))))
      expect(tooMany.status).toBe(422)
      expect(((await tooMany.json()) as { detail: string }).detail).toContain('at most 100')
      const wrong = await send(`${base}/detections`, json([{ image_id: imageId, box_detections: [{ category_name: 'c', x: 'left', y: 2, width: 3, height: 4, model_name: 'm', confidence: 1 }] }]))
      expect(wrong.status).toBe(422)
      expect(((await wrong.json()) as { detail: string }).detail).toContain('/0/box_detections/0/x')
      const notArray = await send(`${base}/detections`, json({ image_id: imageId }))
      expect(notArray.status).toBe(422)
    })

    test('detector status: latest per uuid; bad shape is 422 naming the field', async () => {
      const status = { uuid: 'd1', name: 'det', state: 'online', uptime: 5, model_format: 'mocked', current_model: '1.0', target_model: '1.0', errors: {}, operation_mode: 'idle' }
      expect((await send(`${base}/detectors`, json(status))).status).toBe(200)
      expect((await send(`${base}/detectors`, json({ ...status, uptime: 6 }))).status).toBe(200)
      const statuses = fixture.loop.detectorStatuses('zauberzeug', 'pytest_nodelib_general')
      expect(statuses).toHaveLength(1)
      expect(statuses[0]!.status).toMatchObject({ uuid: 'd1', uptime: 6 })
      const bad = await send(`${base}/detectors`, json({ ...status, uptime: 'long' }))
      expect(bad.status).toBe(422)
      expect(((await bad.json()) as { detail: string }).detail).toContain('/uptime')
    })
  })

  test('answers decode with the contract schemas nodes use', async () => {
    const base = '/api/zauberzeug/projects/pytest_nodelib_general'
    const ids = decode(ImageIdsResponse, await (await get(`${base}/data`)).json())
    expect(ids.image_ids).toHaveLength(3)
    const images = decode(Type.Object({ images: Type.Array(ImageData) }), await (await get(`${base}/images?ids=${ids.image_ids.join(',')}`)).json())
    expect(images.images.map((i) => i.id).sort()).toEqual([...ids.image_ids].sort())
    const models = decode(LoopModelsResponse, await (await get(`${base}/models`)).json())
    expect(models.models[0]!.formats).toContain('mocked')
    decode(ProjectsResponse, await (await get('/api/projects')).json())
    decode(ProjectInfo, await (await get(base)).json())
    const training = fixture.loop.store.createTraining('zauberzeug', 'pytest_nodelib_general')
    const upload = await send(`${base}/trainings/${training.number}/models/latest/mocked/file`, { method: 'PUT', body: multipart([{ name: 'model.json', content: '{}' }]) })
    const { id } = decode(ModelUploadResponse, await upload.json())
    fixture.loop.setDeploymentTarget('zauberzeug', 'pytest_nodelib_general', id)
    expect(decode(DeploymentTarget, await (await get(`${base}/deployment/target`)).json()).model_uuid).toBe(id)
    fixture.loop.setDeploymentTarget('zauberzeug', 'pytest_nodelib_general', '1.0')
  })

  describe('bad input never crashes it', () => {
    test('malformed JSON is 400 with the parse error; empty and wrong bodies are 422 naming the field', async () => {
      const base = '/api/zauberzeug/projects/pytest_nodelib_general'
      const malformed = await send(`${base}/detectors`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"uuid": ' })
      expect(malformed.status).toBe(400)
      expect(((await malformed.json()) as { detail: string }).detail).toContain('malformed JSON body')
      const empty = await send(`${base}/detectors`, { method: 'POST' })
      expect(empty.status).toBe(422)
      expect(((await empty.json()) as { detail: string }).detail).toContain('(root)')
      const missing = await send(`${base}/detectors`, json({ name: 'x' }))
      expect(((await missing.json()) as { detail: string }).detail).toContain('/uuid: required field is missing')
      const state = await get(`${base}/data?state=lost`)
      expect(state.status).toBe(422)
      expect(((await state.json()) as { detail: string }).detail).toContain('state="lost"')
      const ids = await get(`${base}/images`)
      expect(((await ids.json()) as { detail: string }).detail).toContain('ids is required')
      const login = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,' })
      expect(login.status).toBe(400)
      const multipartGarbage = await fetch(`${url}/api/local/projects/demo/images`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, body: 'garbage' })
      expect(multipartGarbage.status).toBe(400)
      expect((await get('/api/status')).status).toBe(200)
    })
  })

  describe('admin API', () => {
    test('creates a project, lists images with tags, uploads a model zip, sets the target, counts requests', async () => {
      const admin = (path: string, init: RequestInit = {}) => fetch(url + path, init)
      const created = await admin('/admin/projects', json({ organization: 'o', project_name: 'p', inbox: 2, tags: 1, box_categories: 1 }))
      expect(created.status).toBe(200)
      const images = (await (await admin('/admin/projects/o/p/images?state=inbox')).json()) as { images: { tags: string[] }[] }
      expect(images.images).toHaveLength(2)
      expect(images.images[0]!.tags).toEqual(['tag_1'])
      const zip = createZip({ 'model.onnx': new Uint8Array([9, 9]), 'model.json': JSON.stringify({ resolution: 64 }) })
      const uploaded = await admin('/admin/projects/o/p/models?format=onnx', { method: 'POST', body: zip as Uint8Array<ArrayBuffer> })
      expect(uploaded.status).toBe(200)
      const model = (await uploaded.json()) as { id: string; version: string }
      expect(model.version).toBe('1.0')
      const target = await admin('/admin/projects/o/p/deployment-target', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version: '1.0' }) })
      expect(await target.json()).toEqual({ model_uuid: model.id, version: '1.0' })
      const stats = (await (await admin('/admin/stats')).json()) as { requests: { total: number; by_route: Record<string, number> } }
      expect(stats.requests.by_route['POST /admin/projects']).toBe(1)
      expect(stats.requests.total).toBeGreaterThan(10)
      const metrics = await (await admin('/metrics')).text()
      expect(metrics).toContain('local_loop_requests_total{route="POST /admin/projects",status="200"} 1')
    })
  })
})

describe('credentials, rate limit and restarts', () => {
  test('configured credentials: wrong ones are 401, right ones log in; the admin API wants them too', async () => {
    const fixture = await startTestLoop({ username: 'admin', password: 'secret' })
    try {
      const url = fixture.loop.url
      const wrong = await fetch(`${url}/api/login`, { method: 'POST', body: new URLSearchParams({ username: 'admin', password: 'guess' }) })
      expect(wrong.status).toBe(401)
      expect(wrong.headers.get('set-cookie')).toBeNull()
      const cookie = await login(url, 'admin', 'secret')
      expect((await fetch(`${url}/api/local/projects/demo/data`, { headers: { cookie } })).status).toBe(200)
      const anonymous = await fetch(`${url}/admin/stats`)
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers.get('www-authenticate')).toContain('Basic')
      expect((await fetch(`${url}/admin/stats`, { headers: { authorization: `Basic ${btoa('admin:secret')}` } })).status).toBe(200)
      expect((await fetch(`${url}/admin/stats`, { headers: { cookie } })).status).toBe(200)
    } finally {
      await fixture.cleanup()
    }
  })

  test('over the rate limit: 429 with Retry-After; switching it off lets requests through', async () => {
    const fixture = await startTestLoop({ rateLimit: { perSecond: 0.1, burst: 3 } })
    try {
      const url = fixture.loop.url
      const statuses: number[] = []
      let limited: Response | undefined
      for (let i = 0; i < 5; i++) {
        const response = await fetch(`${url}/api/status`)
        statuses.push(response.status)
        if (response.status === 429) limited = response
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429])
      expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(((await limited!.json()) as { detail: string }).detail).toContain('too many requests')
      // the admin API is not limited, and can switch the limit off
      const off = await fetch(`${url}/admin/rate-limit`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ per_second: null }) })
      expect(off.status).toBe(200)
      expect((await fetch(`${url}/api/status`)).status).toBe(200)
      expect(fixture.loop.stats().requests.rate_limited).toBe(2)
    } finally {
      await fixture.cleanup()
    }
  })

  test('a restart on the same folder keeps projects, images and models and drops sessions', async () => {
    const fixture = await startTestLoop()
    const first = fixture.loop
    const cookie = await login(first.url)
    await first.createProject('o', { project_name: 'kept', complete: 2, box_categories: 1, trainings: 1 })
    const upload = await postImages(first.url, 'o', 'kept', uploadItem('up-1', { tags: ['t'] }))
    const [uploadedId] = ((await upload.json()) as { stored: string[] }).stored as [string]
    await first.deleteProject('local', 'demo')
    const modelId = first.store.models('o', 'kept')[0]!.id
    first.setDeploymentTarget('o', 'kept', modelId)
    await first.stop()

    const second = await fixture.restart()
    try {
      expect(second.url).toBe(first.url)
      expect((await fetch(`${second.url}/api/o/projects/kept/data`, { headers: { cookie } })).status).toBe(401)
      const fresh = await login(second.url)
      const data = (await (await fetch(`${second.url}/api/o/projects/kept/data`, { headers: { cookie: fresh } })).json()) as { image_ids: string[]; categories: unknown[] }
      expect(data.image_ids).toHaveLength(3)
      expect(data.image_ids).toContain(uploadedId)
      expect(data.categories).toHaveLength(1)
      expect((await fetch(`${second.url}/api/o/projects/kept/images/${uploadedId}/main`, { headers: { cookie: fresh } })).status).toBe(200)
      expect(await (await fetch(`${second.url}/api/o/projects/kept/deployment/target`, { headers: { cookie: fresh } })).json()).toEqual({ model_uuid: modelId, version: '1.0' })
      const zip = await fetch(`${second.url}/api/o/projects/kept/models/${modelId}/mocked/file`)
      expect(unzip(new Uint8Array(await zip.arrayBuffer()))['file_1.txt']).toBe('content of file one')
      // the seed is a first-start thing: a deleted demo project stays deleted
      expect(second.listProjects().map((p) => `${p.organization}/${p.project}`)).toEqual(['o/kept'])
    } finally {
      await fixture.cleanup()
    }
  })
})
