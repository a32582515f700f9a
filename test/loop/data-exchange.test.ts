import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ContractError } from '../../src/contract/index.ts'
import { createZip } from '../../src/foundation/zip-archive.ts'
import { DataExchange, fileNameFromContentDisposition, type Progress } from '../../src/loop/data-exchange.ts'
import { LoopError } from '../../src/loop/loop-error.ts'
import { LoopRestClient } from '../../src/loop/loop-rest-client.ts'
import { makeTempDir } from '../support/temp.ts'
import { startScriptedLoop, type ScriptedLoop } from './scripted-loop.ts'

const PROJECT = '/api/zauberzeug/projects/demo'
let loop: ScriptedLoop
let tmp: { path: string; cleanup(): Promise<void> }
let exchange: DataExchange

beforeEach(async () => {
  loop = startScriptedLoop()
  tmp = await makeTempDir()
  const rest = new LoopRestClient({ baseUrl: loop.url, username: 'alice', password: 'secret', rateLimit: { initialMs: 5, maxMs: 10 } })
  exchange = new DataExchange(rest, { organization: 'zauberzeug', project: 'demo' })
})
afterEach(async () => {
  await loop.stop()
  await tmp.cleanup()
})

function jpegBytes(id: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array([0xff, 0xd8, ...new TextEncoder().encode(id), 0xff, 0xd9])
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected the call to fail')
}

describe('image ids and image data (#4, #5)', () => {
  test('fetchImageIds passes the query and returns the ids', async () => {
    loop.route = (_req, { recorded }) => (recorded.path === `${PROJECT}/data` ? Response.json({ image_ids: ['a', 'b'], categories: [] }) : undefined)
    expect(await exchange.fetchImageIds('state=complete')).toEqual(['a', 'b'])
    expect(await exchange.fetchImageIds({ state: 'inbox' })).toEqual(['a', 'b'])
    expect(loop.requests.filter((r) => r.path.endsWith('/data')).map((r) => r.search)).toEqual(['?state=complete', '?state=inbox'])
  })

  test('fetchImageData asks in chunks of at most 100 ids, keeps the order and reports progress', async () => {
    const ids = Array.from({ length: 250 }, (_, i) => `img-${i}`)
    loop.route = (req) => {
      const asked = new URL(req.url).searchParams.get('ids')!.split(',')
      return Response.json({ images: asked.map((id) => ({ id, set: 'train', width: 640, height: 480, box_annotations: [], state: 'complete' })) })
    }
    const progress: Progress[] = []
    const images = await exchange.fetchImageData(ids, { onProgress: (p) => progress.push(p) })
    expect(images.map((i) => i.id)).toEqual(ids)
    expect(images[0]).toMatchObject({ id: 'img-0', set: 'train', width: 640, height: 480, point_annotations: [] })
    const chunks = loop.requests.filter((r) => r.path === `${PROJECT}/images`).map((r) => new URLSearchParams(r.search).get('ids')!.split(',').length)
    expect(chunks).toEqual([100, 100, 50])
    expect(progress).toEqual([{ done: 100, total: 250 }, { done: 200, total: 250 }, { done: 250, total: 250 }])
  })

  test('a failing chunk fails the call with the Loop status', async () => {
    loop.route = () => new Response('db down', { status: 503 })
    const error = await rejection(exchange.fetchImageData(['a']))
    expect(error).toBeInstanceOf(LoopError)
    expect((error as LoopError).status).toBe(503)
  })
})

describe('image files (#6)', () => {
  test('downloads concurrently, skips files already present, writes nothing partial', async () => {
    let inFlight = 0
    let maxInFlight = 0
    let throttledOnce = false
    loop.route = async (req) => {
      const match = /\/images\/([^/]+)\/main$/.exec(new URL(req.url).pathname)
      if (!match) return undefined
      const id = match[1]!
      if (id === 'missing') return new Response('no such image', { status: 404 })
      if (id === 'throttled' && !throttledOnce) {
        throttledOnce = true
        return new Response('', { status: 429, headers: { 'retry-after': '0' } })
      }
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      await Bun.sleep(20)
      inFlight--
      return new Response(jpegBytes(id), { headers: { 'content-type': 'image/jpeg' } })
    }
    const folder = join(tmp.path, 'images')
    await Bun.write(join(folder, 'present.jpg'), jpegBytes('old'))
    await Bun.write(join(folder, 'empty.jpg'), '')
    const ids = ['a', 'b', 'c', 'd', 'e', 'present', 'empty', 'missing', 'throttled', '../escape']
    const progress: Progress[] = []
    const result = await exchange.downloadImages(ids, folder, { concurrency: 3, onProgress: (p) => progress.push(p) })

    // any id is downloaded, into a file of its own inside the folder (here %2E%2E%2Fescape.jpg)
    expect(result.downloaded.sort()).toEqual(['../escape', 'a', 'b', 'c', 'd', 'e', 'empty', 'throttled'])
    expect(result.skipped).toEqual(['present'])
    expect(result.failed.map((f) => f.id).sort()).toEqual(['missing'])
    expect(result.failed.find((f) => f.id === 'missing')!.error).toContain('404')
    expect(maxInFlight).toBeLessThanOrEqual(3)
    expect(maxInFlight).toBeGreaterThan(1)
    expect(progress.at(-1)).toEqual({ done: ids.length, total: ids.length })
    expect(loop.requests.some((r) => r.path.includes('/present/'))).toBe(false)
    expect(new Uint8Array(await Bun.file(join(folder, 'a.jpg')).arrayBuffer())).toEqual(jpegBytes('a'))
    expect(new Uint8Array(await Bun.file(join(folder, 'present.jpg')).arrayBuffer())).toEqual(jpegBytes('old'))
    expect((await Bun.file(join(folder, 'empty.jpg')).arrayBuffer()).byteLength).toBeGreaterThan(0)
    expect((await readdir(folder)).sort()).toEqual(['%2E%2E%2Fescape.jpg', 'a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg', 'empty.jpg', 'present.jpg', 'throttled.jpg'])
    expect((await readdir(tmp.path)).filter((name) => name.includes('escape'))).toEqual([])
    // a second run finds everything and asks the Loop only for what is still missing
    const before = loop.requests.length
    const again = await exchange.downloadImages(['a', 'b'], folder)
    expect(again.skipped.sort()).toEqual(['a', 'b'])
    expect(loop.requests.length).toBe(before)
  })

  test('a download that stalls mid-body times out and leaves neither the file nor a temp file', async () => {
    loop.route = () => new Response(new ReadableStream({
      async start(controller) {
        controller.enqueue(new Uint8Array([0xff, 0xd8, 1, 2, 3]))
        await Bun.sleep(2_000)
        controller.close()
      },
    }))
    const folder = join(tmp.path, 'images')
    const result = await exchange.downloadImages(['slow'], folder, { timeoutMs: 200 })
    expect(result.failed).toHaveLength(1)
    expect(result.failed[0]!.error).toContain('timed out after 200 ms')
    expect(await readdir(folder)).toEqual([])
  })
})

describe('models (#7, #8)', () => {
  const archive = new Uint8Array(createZip({
    'model.json': JSON.stringify({ id: 'm1', version: '1.2', host: null, organization: 'zauberzeug', project: 'demo' }),
    'model.onnx': new Uint8Array(4096).fill(7),
    'extra/labels.txt': 'cat\ndog\n',
  }))

  test('downloadModel: no login needed, file name from Content-Disposition, sub-folders extracted, paths returned', async () => {
    loop.route = (_req, { recorded }) => recorded.path === `${PROJECT}/models/m1/onnx/file`
      ? new Response(archive, { headers: { 'content-disposition': 'attachment; filename="demo_1.2.zip"', 'content-length': String(archive.length) } })
      : undefined
    const target = join(tmp.path, 'models', '1.2')
    const progress: { bytes: number; totalBytes: number | null }[] = []
    const files = await exchange.downloadModel('m1', 'onnx', target, { onProgress: (p) => progress.push(p) })
    expect(files.sort()).toEqual([join(target, 'extra/labels.txt'), join(target, 'model.json'), join(target, 'model.onnx')])
    expect(await Bun.file(join(target, 'extra/labels.txt')).text()).toBe('cat\ndog\n')
    expect((await Bun.file(join(target, 'model.onnx')).arrayBuffer()).byteLength).toBe(4096)
    expect(progress.at(-1)).toEqual({ bytes: archive.length, totalBytes: archive.length })
    expect(loop.count('/api/login')).toBe(0)
  })

  test('downloadModel: non-200 is a LoopError with the body, and nothing is written', async () => {
    loop.route = () => Response.json({ detail: 'model not found' }, { status: 404 })
    const target = join(tmp.path, 'models', 'x')
    const error = await rejection(exchange.downloadModel('nope', 'onnx', target))
    expect(error).toBeInstanceOf(LoopError)
    expect((error as LoopError).status).toBe(404)
    expect((error as LoopError).bodyExcerpt).toContain('model not found')
    expect(await Bun.file(join(target, 'model.json')).exists()).toBe(false)
  })

  test('downloadModel: a corrupt archive fails and leaves the target empty', async () => {
    loop.route = () => new Response(new Uint8Array([1, 2, 3, 4]).buffer, { headers: { 'content-disposition': 'attachment; filename=broken.zip' } })
    const target = join(tmp.path, 'models', 'broken')
    const error = await rejection(exchange.downloadModel('m', 'onnx', target))
    expect(error.message).toContain('not a zip')
    expect(await readdir(target).catch(() => [])).toEqual([])
  })

  test('uploadModel: PUT multipart, every part named files, returns the new model id', async () => {
    await Bun.write(join(tmp.path, 'best.onnx'), new Uint8Array([9, 9, 9]))
    await Bun.write(join(tmp.path, 'model.json'), '{"categories":[]}')
    let parts: [string, string][] = []
    let path = ''
    loop.route = async (req, { recorded }) => {
      path = `${recorded.method} ${recorded.path}`
      const form = await req.formData()
      parts = [...form.entries()].map(([field, value]) => [field, (value as unknown as File).name])
      return Response.json({ id: 'new-model-uuid', version: '1.3' })
    }
    expect(await exchange.uploadModel(7, 'onnx', [join(tmp.path, 'best.onnx'), join(tmp.path, 'model.json')])).toBe('new-model-uuid')
    expect(path).toBe(`PUT ${PROJECT}/trainings/7/models/latest/onnx/file`)
    expect(parts).toEqual([['files', 'best.onnx'], ['files', 'model.json']])
  })

  test('uploadModel: non-200 and an answer without id are typed errors', async () => {
    await Bun.write(join(tmp.path, 'best.onnx'), new Uint8Array([1]))
    loop.route = () => new Response('quota exceeded', { status: 507 })
    const failed = await rejection(exchange.uploadModel(1, 'onnx', [join(tmp.path, 'best.onnx')]))
    expect(failed).toBeInstanceOf(LoopError)
    expect((failed as LoopError).kind).toBe('http')
    expect((failed as LoopError).status).toBe(507)
    loop.route = () => Response.json({ ok: true })
    const invalid = await rejection(exchange.uploadModel(1, 'onnx', [join(tmp.path, 'best.onnx')]))
    expect((invalid as LoopError).kind).toBe('invalid_response')
    const missing = await rejection(exchange.uploadModel(1, 'onnx', [join(tmp.path, 'nope.onnx')]))
    expect((missing as LoopError).kind).toBe('missing_file')
  })
})

describe('detections and detector calls (#9–#12)', () => {
  const detection = (i: number) => ({
    image_id: `img-${i}`,
    box_detections: [{ category_name: 'cat', model_name: '1.2', confidence: 0.9, category_id: 'c1', x: 1, y: 2, width: 3, height: 4 }],
  })

  test('uploadDetections posts JSON arrays of at most 100, in order', async () => {
    loop.route = () => Response.json({})
    const progress: Progress[] = []
    await exchange.uploadDetections(Array.from({ length: 230 }, (_, i) => detection(i)), { onProgress: (p) => progress.push(p) })
    const posts = loop.requests.filter((r) => r.path === `${PROJECT}/detections`)
    const batches = posts.map((p) => JSON.parse(p.body) as { image_id: string }[])
    expect(batches.map((b) => b.length)).toEqual([100, 100, 30])
    expect(batches.flat().map((d) => d.image_id)).toEqual(Array.from({ length: 230 }, (_, i) => `img-${i}`))
    expect(batches[0]![0]).toMatchObject({ point_detections: [], segmentation_detections: [], classification_detections: [] })
    expect(posts[0]!.contentType).toBe('application/json')
    expect(progress.map((p) => p.done)).toEqual([100, 200, 230])
  })

  test('uploadDetections checks every item before sending anything', async () => {
    loop.route = () => Response.json({})
    const error = await rejection(exchange.uploadDetections([detection(1), { image_id: 'x', box_detections: [{ confidence: 'high' }] }]))
    expect(error).toBeInstanceOf(ContractError)
    expect(error.message).toContain('/box_detections/0')
    expect(loop.requests.filter((r) => r.path.endsWith('/detections'))).toHaveLength(0)
  })

  test('uploadDetections: a non-200 answer is a LoopError with code and body', async () => {
    loop.route = () => new Response('invalid category', { status: 422 })
    const error = await rejection(exchange.uploadDetections([detection(1)]))
    expect((error as LoopError).status).toBe(422)
    expect(error.message).toContain('invalid category')
  })

  test('deployment target, models and detector status', async () => {
    let statusBody: unknown
    loop.route = (_req, { recorded }) => {
      if (recorded.path === `${PROJECT}/deployment/target`) return Response.json({ model_uuid: 'm1', version: '1.2' })
      if (recorded.path === `${PROJECT}/models`) return Response.json({ models: [{ id: 'm1', version: '1.2', formats: ['onnx'], created: '2026-01-01', comment: null, host: null }] })
      if (recorded.path === `${PROJECT}/detectors`) {
        statusBody = JSON.parse(recorded.body)
        return new Response(null, { status: 204 })
      }
      return undefined
    }
    expect(await exchange.fetchDeploymentTarget()).toEqual({ model_uuid: 'm1', version: '1.2' })
    expect((await exchange.fetchModels()).map((m) => [m.id, m.formats])).toEqual([['m1', ['onnx']]])
    const status = { uuid: 'u', name: 'det', state: 'online', uptime: 5, model_format: 'onnx', current_model: '1.2', target_model: '1.2', errors: {}, operation_mode: 'idle' }
    await exchange.sendDetectorStatus(status)
    expect(statusBody).toEqual(status)
  })
})

describe('fileNameFromContentDisposition', () => {
  test('plain, quoted, RFC 6266 extended and missing', () => {
    expect(fileNameFromContentDisposition('attachment; filename=model.zip')).toBe('model.zip')
    expect(fileNameFromContentDisposition('attachment; filename="my model.zip"; size=3')).toBe('my model.zip')
    expect(fileNameFromContentDisposition("attachment; filename=\"fallback.zip\"; filename*=UTF-8''mod%C3%A8le.zip")).toBe('modèle.zip')
    expect(fileNameFromContentDisposition('attachment')).toBeUndefined()
    expect(fileNameFromContentDisposition(null)).toBeUndefined()
  })
})
