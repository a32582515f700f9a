import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import type { Browser } from 'playwright-core'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import { chromiumAvailable, launchChromium } from '../support/browser.ts'
import { waitFor } from '../support/temp.ts'
import { FFMPEG, makeAstronautVideo } from '../support/camera-sources.ts'
import { startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

setDefaultTimeout(90_000)

const available = chromiumAvailable('the status page browser test')

let testLoop: TestLoop
let loop: LocalLoop
let detector: DetectorNode
let browser: Browser | undefined

beforeAll(async () => {
  if (!available) return
  testLoop = await startTestLoop()
  loop = testLoop.loop
  detector = await startTestDetector(loop.url, join(testLoop.folder, 'detector'))
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await detector?.stop()
  await testLoop?.cleanup()
})

test.skipIf(!available)('the status page shows model, backend, the last detections over the image, and its controls work', async () => {
  const form = new FormData()
  form.append('file', new File([new Uint8Array(await readFile(join(import.meta.dir, '../fixtures/astronaut.jpg')))], 'a.jpg', { type: 'image/jpeg' }))
  expect((await fetch(`${detector.url}/detect`, { method: 'POST', body: form, headers: { autoupload: 'disabled' } })).status).toBe(200)

  const page = await browser!.newPage()
  const external: string[] = []
  page.on('request', (request) => {
    if (!request.url().startsWith(detector.url)) external.push(request.url())
  })
  await page.goto(`${detector.url}/`)
  await page.waitForFunction(() => document.getElementById('model')?.textContent === 'builtin-blazeface-1')
  expect(await page.textContent('#backend')).toBe('cpu')
  expect(await page.textContent('#outbox-mode')).toBe('continuous_upload')
  await page.waitForFunction(() => document.getElementById('last-info')?.textContent?.startsWith('1 boxes, 6 points'))
  // the canvas holds the photo at its own size with the face box drawn in green
  const canvas = await page.evaluate(() => {
    const c = document.getElementById('last') as HTMLCanvasElement
    const ctx = c.getContext('2d')!
    const pixels = ctx.getImageData(0, 0, c.width, c.height).data
    let green = 0
    for (let i = 0; i < pixels.length; i += 4) if (pixels[i]! < 40 && pixels[i + 1]! > 200 && pixels[i + 2]! > 90 && pixels[i + 2]! < 140) green++
    return { width: c.width, height: c.height, green }
  })
  expect(canvas.width).toBe(512)
  expect(canvas.height).toBe(512)
  expect(canvas.green).toBeGreaterThan(100)
  await page.screenshot({ path: process.env.STATUS_PAGE_SCREENSHOT ?? join(testLoop.folder, 'status-page.png') })

  await page.click('#toggle-outbox')
  await page.waitForFunction(() => document.getElementById('outbox-mode')?.textContent === 'stopped')
  expect(await (await fetch(`${detector.url}/outbox_mode`)).text()).toBe('stopped')
  await page.selectOption('#version-mode', 'pause')
  await page.click('#set-version')
  await waitFor(async () => (await (await fetch(`${detector.url}/model_version`)).json()).version_control === 'pause', 10_000, 'pause mode')
  await page.selectOption('#version-mode', 'version')
  await page.fill('#version', 'not a version')
  await page.click('#set-version')
  await page.waitForFunction(() => document.getElementById('message')?.textContent?.includes('Invalid version number'))
  expect(external).toEqual([])
  await page.close()
})

test.skipIf(!available || !FFMPEG)('the status page shows each camera: its state and its last frame with the boxes', async () => {
  const video = join(testLoop.folder, 'status-page-camera.mp4')
  makeAstronautVideo(video, { seconds: 2, fps: 4, width: 256, height: 256 })
  const put = await fetch(`${detector.url}/cameras/porch`, { method: 'PUT', body: JSON.stringify({ url: video, fps: 2, loop: true, autoupload: 'disabled' }) })
  expect(put.status).toBe(201)
  const broken = await fetch(`${detector.url}/cameras/gate`, { method: 'PUT', body: JSON.stringify({ url: 'rtsp://127.0.0.1:9/none', fps: 1 }) })
  expect(broken.status).toBe(201)
  const page = await browser!.newPage()
  try {
    await page.goto(`${detector.url}/`)
    await page.waitForFunction(() => document.querySelector('#camera-porch .state')?.textContent === 'streaming', undefined, { timeout: 30_000 })
    await page.waitForFunction(() => (document.querySelector('#camera-porch canvas') as HTMLCanvasElement | null)?.width === 256, undefined, { timeout: 30_000 })
    const green = await page.evaluate(() => {
      const c = document.querySelector('#camera-porch canvas') as HTMLCanvasElement
      const pixels = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
      let count = 0
      for (let i = 0; i < pixels.length; i += 4) if (pixels[i]! < 40 && pixels[i + 1]! > 200 && pixels[i + 2]! > 90 && pixels[i + 2]! < 140) count++
      return count
    })
    expect(green).toBeGreaterThan(50)
    await page.waitForFunction(() => /refused/i.test(document.querySelector('#camera-gate .error')?.textContent ?? ''), undefined, { timeout: 30_000 })
    expect(['stalled', 'connecting']).toContain((await page.textContent('#camera-gate .state')) ?? '')
    await page.screenshot({ path: process.env.STATUS_PAGE_CAMERAS_SCREENSHOT ?? join(testLoop.folder, 'status-page-cameras.png') })
  } finally {
    await page.close()
    await fetch(`${detector.url}/cameras/porch`, { method: 'DELETE' })
    await fetch(`${detector.url}/cameras/gate`, { method: 'DELETE' })
  }
})
