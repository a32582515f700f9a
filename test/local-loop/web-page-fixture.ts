/**
 * The whole loop for the web page's browser test: a local loop with a login, and real nodes connected to its
 * project local/demo — a detector (built-in face model), a trainer (the testing trainer) and an annotator (the
 * built-in box-segmentation tool) — plus Debian's chromium driven by playwright-core.
 */
import { mkdir, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from '../support/browser.ts'
import { AnnotatorNode } from '../../src/annotator/annotator-node.ts'
import { BoxSegmentationTool } from '../../src/annotator/box-segmentation-tool.ts'
import { createInProcessSegmenter } from '../../src/annotator/segmenter.ts'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import { waitFor } from '../support/temp.ts'
import { startTestDetector } from '../support/test-detector.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { startTrainer, type StartedTrainer } from '../trainer/trainer-node-fixture.ts'

export const USER = { username: 'web-user', password: 'web-secret' }
export const ORG = 'local'
export const PROJECT = 'demo'
export const CATEGORIES = [
  { id: 'category-face', name: 'face', description: null, hotkey: null, color: '#00c853', point_size: null, type: 'box' },
  { id: 'category-cup', name: 'cup', description: null, hotkey: null, color: '#ff8800', point_size: null, type: 'segmentation' },
]
export const VIEWPORTS = [{ name: 'desktop', width: 1280, height: 800 }, { name: 'phone', width: 390, height: 844 }] as const

export interface WebPageFixture {
  testLoop: TestLoop
  detector: DetectorNode
  trainer: StartedTrainer
  annotator: AnnotatorNode
  browser: Browser
  screenshots: string
  cleanup(): Promise<void>
}

export async function startWebPageFixture(): Promise<WebPageFixture> {
  const testLoop = await startTestLoop(USER)
  const loop = testLoop.loop
  loop.store.setCategories(ORG, PROJECT, CATEGORIES)
  const credentials = { LOOP_USERNAME: USER.username, LOOP_PASSWORD: USER.password }
  const detector = await startTestDetector(loop.url, join(testLoop.folder, 'detector'), credentials)
  const trainer = await startTrainer(loop, join(testLoop.folder, 'trainer'), credentials)
  const annotator = await AnnotatorNode.create({
    name: 'web page annotator', uuid: crypto.randomUUID(), dataFolder: join(testLoop.folder, 'annotator'), port: 0, hostname: '127.0.0.1',
    config: loadNodeConfig({ LOOP_HOST: loop.url, ...credentials, LOOP_ORGANIZATION: ORG, LOOP_PROJECT: PROJECT }),
    logic: new BoxSegmentationTool({ segmenter: createInProcessSegmenter() }), repeatIntervalMs: 500,
  })
  await annotator.start()
  await waitFor(() => loop.connectedNodes().some((n) => n.nodeType === 'annotation_node' && n.nodeId), 10_000, 'the annotator to report')
  const browser = await launchChromium()
  const screenshots = process.env.SCREENSHOT_DIR ?? await mkdtemp(join(tmpdir(), 'loop-web-screens-'))
  await mkdir(screenshots, { recursive: true })
  console.log(`web page screenshots: ${screenshots}`)
  return {
    testLoop, detector, trainer, annotator, browser, screenshots,
    async cleanup() {
      await browser.close()
      await annotator.shutdown()
      await trainer.node.stop()
      await detector.stop()
      await testLoop.cleanup()
    },
  }
}

/** Logs in through the page's dialog. */
export async function logIn(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/`)
  await page.waitForSelector('dialog#login[open]')
  await page.fill('#username', USER.username)
  await page.fill('#password', USER.password)
  await page.click('#login-button')
  await page.waitForFunction(() => !(document.getElementById('login') as HTMLDialogElement).open)
}

/** Screenshots of what the page shows now at both viewport sizes, `<folder>/<name>-<desktop|phone>.png`. */
export async function shoot(page: Page, folder: string, name: string, ready?: () => Promise<unknown>): Promise<void> {
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize({ width: viewport.width, height: viewport.height })
    await ready?.()
    // a resize re-lays out the page; let the browser paint once more
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))))
    await page.screenshot({ path: join(folder, `${name}-${viewport.name}.png`) })
  }
  await page.setViewportSize({ width: VIEWPORTS[0].width, height: VIEWPORTS[0].height })
}
