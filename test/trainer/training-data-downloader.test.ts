import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encode } from 'jpeg-js'
import type { ImageData } from '../../src/contract/index.ts'
import { checkJpeg } from '../../src/trainer/jpeg-check.ts'
import { DownloadError, StepCancelledError } from '../../src/trainer/training-errors.ts'
import { downloadTrainingData, type TrainingDataSource } from '../../src/trainer/training-data-downloader.ts'
import { jpegClaimingSize } from '../support/image-bombs.ts'
import { makeTempDir } from '../support/temp.ts'

function makeJpeg(seed: number, size = 16): Uint8Array {
  const data = Buffer.alloc(size * size * 4)
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31) % 256
  return new Uint8Array(encode({ data, width: size, height: size }, 80).data)
}

/** A small Loop stand-in: ids, image data and image files, with knobs for failures, and request accounting. */
class ImagePeer {
  readonly server: ReturnType<typeof Bun.serve>
  readonly idsChunks: number[] = []
  readonly fileRequests: string[] = []
  inFlight = 0
  maxInFlight = 0
  /** id → number of 500 answers before the real one (Infinity: always) */
  readonly failuresLeft = new Map<string, number>()
  readonly bodies = new Map<string, Uint8Array>()
  readonly missing = new Set<string>()
  imageDataFailures = 0

  constructor(readonly ids: string[]) {
    ids.forEach((id, i) => this.bodies.set(id, makeJpeg(i)))
    this.server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: async (request) => {
        const url = new URL(request.url)
        if (url.pathname === '/data') return Response.json({ image_ids: this.ids })
        if (url.pathname === '/images') {
          if (this.imageDataFailures-- > 0) return new Response('busy', { status: 503 })
          const chunk = (url.searchParams.get('ids') ?? '').split(',').filter(Boolean)
          this.idsChunks.push(chunk.length)
          const images: ImageData[] = chunk.map((id) => ({ id, set: 'train', width: 16, height: 16, box_annotations: [], point_annotations: [] }))
          return Response.json({ images })
        }
        const match = /^\/images\/([^/]+)\/main$/.exec(url.pathname)
        if (!match) return new Response('no such route', { status: 404 })
        const id = decodeURIComponent(match[1]!)
        this.fileRequests.push(id)
        this.inFlight++
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
        try {
          await Bun.sleep(5)
          if (this.missing.has(id)) return new Response('gone', { status: 404 })
          const left = this.failuresLeft.get(id) ?? 0
          if (left > 0) {
            this.failuresLeft.set(id, left - 1)
            return new Response('oops', { status: 500 })
          }
          return new Response(new Uint8Array(this.bodies.get(id) ?? new Uint8Array()), { headers: { 'content-type': 'image/jpeg' } })
        } finally {
          this.inFlight--
        }
      },
    })
  }

  /** The injected Loop interface, over plain fetch; a non-2xx answer throws an error carrying its status. */
  source(): TrainingDataSource {
    const base = `http://127.0.0.1:${this.server.port}`
    const get = async (path: string, signal?: AbortSignal) => {
      const response = await fetch(base + path, signal ? { signal } : {})
      if (!response.ok) throw Object.assign(new Error(`GET ${path} answered ${response.status}`), { status: response.status })
      return response
    }
    return {
      fetchImageIds: async (query) => ((await (await get(`/data?${query}`)).json()) as { image_ids: string[] }).image_ids,
      fetchImageData: async (ids) => ((await (await get(`/images?ids=${ids.join(',')}`)).json()) as { images: ImageData[] }).images,
      downloadImage: async (id, signal) => new Uint8Array(await (await get(`/images/${id}/main`, signal)).arrayBuffer()),
    }
  }
}

let temp: Awaited<ReturnType<typeof makeTempDir>>
let peer: ImagePeer | undefined
beforeEach(async () => {
  temp = await makeTempDir('lln-downloader-')
})
afterEach(async () => {
  peer?.server.stop(true)
  peer = undefined
  await temp.cleanup()
})

const quiet = { progressOutput: null, retryBaseMs: 5, minRequestSpacingMs: 0 }

describe('checkJpeg', () => {
  test('accepts a complete JPEG and rejects truncated, foreign and tiny data with a reason', async () => {
    const jpeg = makeJpeg(1)
    expect(await checkJpeg(jpeg)).toEqual({ ok: true, width: 16, height: 16 })
    expect(await checkJpeg(jpeg.subarray(0, jpeg.length - 40))).toEqual({ ok: false, reason: 'truncated (no end-of-image marker)' })
    expect((await checkJpeg(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]))).ok).toBe(false)
    expect(await checkJpeg(new Uint8Array([0xff, 0xd8]))).toEqual({ ok: false, reason: 'only 2 bytes' })
    // markers intact but the frame header destroyed
    const broken = jpeg.slice()
    const sof = broken.findIndex((b, i) => b === 0xff && broken[i + 1] === 0xc0)
    broken.fill(0, sof + 4, sof + 12)
    expect((await checkJpeg(broken)).ok).toBe(false)
  })

  test('a JPEG claiming more pixels than the budget (a decompression bomb for the training program) is refused', async () => {
    expect(await checkJpeg(jpegClaimingSize(40_000, 40_000))).toEqual({ ok: false, reason: '40000×40000 pixels, more than the pixel budget of 50000000 (MAX_IMAGE_PIXELS)' })
    expect(await checkJpeg(jpegClaimingSize(9_000, 9_000))).toEqual({ ok: false, reason: '9000×9000 pixels, more than the pixel budget of 50000000 (MAX_IMAGE_PIXELS)' })
    expect(await checkJpeg(makeJpeg(2), 255)).toEqual({ ok: false, reason: '16×16 pixels, more than the pixel budget of 255 (MAX_IMAGE_PIXELS)' })
    expect(await checkJpeg(makeJpeg(2), 256)).toEqual({ ok: true, width: 16, height: 16 })
  })
})

describe('downloadTrainingData', () => {
  test('fetches image data in chunks of ≤100 and the files with bounded parallelism; progress reaches 1', async () => {
    peer = new ImagePeer(Array.from({ length: 250 }, (_, i) => `img${i}`))
    const progress: number[] = []
    const result = await downloadTrainingData(peer.source(), { ...quiet, imagesFolder: temp.path, concurrency: 3, onProgress: (p) => progress.push(p) })
    expect(peer.idsChunks).toEqual([100, 100, 50])
    expect(peer.maxInFlight).toBeLessThanOrEqual(3)
    expect(peer.maxInFlight).toBeGreaterThan(1)
    expect(result.imageData).toHaveLength(250)
    expect(result).toMatchObject({ downloaded: 250, alreadyCached: 0, corrupt: 0, missing: 0, skippedImageCount: 0 })
    expect(readFileSync(join(temp.path, 'img7.jpg'))).toEqual(Buffer.from(peer.bodies.get('img7')!))
    expect(progress.at(-1)).toBe(1)
    expect(progress.every((p, i) => i === 0 || p >= progress[i - 1]!)).toBe(true)
    expect(progress.some((p) => p === 0.5)).toBe(true)
  })

  test('cached files are kept; empty or non-JPEG leftovers are fetched again', async () => {
    peer = new ImagePeer(['a', 'b', 'c', 'd'])
    await writeFile(join(temp.path, 'a.jpg'), peer.bodies.get('a')!)
    await writeFile(join(temp.path, 'b.jpg'), peer.bodies.get('b')!)
    await writeFile(join(temp.path, 'c.jpg'), '')
    await writeFile(join(temp.path, 'd.jpg'), '<html>proxy error</html>')
    const result = await downloadTrainingData(peer.source(), { ...quiet, imagesFolder: temp.path })
    expect(peer.fileRequests.sort()).toEqual(['c', 'd'])
    expect(result).toMatchObject({ downloaded: 2, alreadyCached: 2, skippedImageCount: 0 })
    expect(readFileSync(join(temp.path, 'd.jpg'))).toEqual(Buffer.from(peer.bodies.get('d')!))
  })

  test('corrupt JPEGs are dropped and counted, 404s skipped and counted; the rest is used', async () => {
    peer = new ImagePeer(['good', 'truncated', 'garbage', 'gone'])
    const good = peer.bodies.get('good')!
    peer.bodies.set('truncated', good.subarray(0, good.length - 50))
    peer.bodies.set('garbage', new TextEncoder().encode('not an image at all'))
    peer.missing.add('gone')
    const result = await downloadTrainingData(peer.source(), { ...quiet, imagesFolder: temp.path })
    expect(result).toMatchObject({ downloaded: 1, corrupt: 2, missing: 1, skippedImageCount: 3 })
    expect(result.imageData.map((d) => d.id)).toEqual(['good'])
    expect(existsSync(join(temp.path, 'truncated.jpg'))).toBe(false)
    expect(existsSync(join(temp.path, 'garbage.jpg'))).toBe(false)
    // a 404 is not retried
    expect(peer.fileRequests.filter((id) => id === 'gone')).toHaveLength(1)
  })

  test('transient failures are retried with backoff; one that persists fails the step but keeps what was downloaded', async () => {
    peer = new ImagePeer(['flaky', 'down', 'fine'])
    peer.failuresLeft.set('flaky', 2)
    peer.failuresLeft.set('down', Infinity)
    peer.imageDataFailures = 1
    const attempt = downloadTrainingData(peer.source(), { ...quiet, imagesFolder: temp.path, attempts: 3 })
    await expect(attempt).rejects.toBeInstanceOf(DownloadError)
    await expect(attempt).rejects.toThrow('1 of 3 images could not be downloaded (first: down: GET /images/down/main answered 500)')
    expect(peer.fileRequests.filter((id) => id === 'flaky')).toHaveLength(3)
    expect(peer.fileRequests.filter((id) => id === 'down')).toHaveLength(3)
    expect(existsSync(join(temp.path, 'flaky.jpg'))).toBe(true)
    expect(existsSync(join(temp.path, 'fine.jpg'))).toBe(true)

    // the retried step only asks for what is still missing
    peer.failuresLeft.set('down', 0)
    peer.fileRequests.length = 0
    const result = await downloadTrainingData(peer.source(), { ...quiet, imagesFolder: temp.path })
    expect(peer.fileRequests).toEqual(['down'])
    expect(result.imageData).toHaveLength(3)
  })

  test('an abort cancels the download', async () => {
    peer = new ImagePeer(Array.from({ length: 50 }, (_, i) => `img${i}`))
    const controller = new AbortController()
    const attempt = downloadTrainingData(peer.source(), {
      ...quiet, imagesFolder: temp.path, signal: controller.signal, concurrency: 1,
      onProgress: (p) => p > 0.6 && controller.abort(),
    })
    await expect(attempt).rejects.toBeInstanceOf(StepCancelledError)
    expect(peer.fileRequests.length).toBeLessThan(50)
  })

  test('a TTY gets a redrawn progress bar, anything else plain lines', async () => {
    peer = new ImagePeer(Array.from({ length: 20 }, (_, i) => `img${i}`))
    let tty = ''
    await downloadTrainingData(peer.source(), { ...quiet, imagesFolder: join(temp.path, 'tty'), progressOutput: { isTTY: true, write: (t) => (tty += t) } })
    expect(tty).toContain('\rimages [')
    expect(tty).toContain('100% 20/20\n')
    let plain = ''
    await downloadTrainingData(peer.source(), { ...quiet, imagesFolder: join(temp.path, 'plain'), progressOutput: { write: (t) => (plain += t) } })
    expect(plain).not.toContain('\r')
    expect(plain).toContain('images: 20/20 (100%)\n')
  })
})
