/**
 * The /docs page in a real browser (Debian's chromium through playwright-core, as the status page test): it
 * renders one entry per operation of /openapi.json, expands a named schema, and asks nothing of another host.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { chromiumAvailable, launchChromium } from '../support/browser.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

const available = chromiumAvailable('the API docs browser test')

let testLoop: TestLoop
let browser: Browser

beforeAll(async () => {
  testLoop = await startTestLoop()
  if (!available) return
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await testLoop?.cleanup()
})

test.skipIf(!available)('the page renders every operation of the document and loads nothing from elsewhere', async () => {
  const { url } = testLoop.loop
  const document = await (await fetch(`${url}/openapi.json`)).json() as { paths: Record<string, Record<string, unknown>> }
  const operations = Object.values(document.paths).reduce((sum, methods) => sum + Object.keys(methods).length, 0)
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  const hosts = new Set<string>()
  const errors: string[] = []
  page.on('request', (request) => hosts.add(new URL(request.url()).host))
  page.on('pageerror', (error) => errors.push(error.message))
  await page.goto(`${url}/docs`)
  await page.waitForSelector('details')
  expect(await page.locator('details').count()).toBe(operations)
  expect(await page.title()).toContain('local loop')
  const generator = page.locator('details', { hasText: '/api/{org}/projects/generator' })
  await generator.locator('summary').click()
  // the request body's named schema is shown with its fields
  expect(await generator.textContent()).toContain('project_name: string')
  await page.screenshot({ path: process.env.API_DOCS_SCREENSHOT ?? join(testLoop.folder, 'api-docs.png') })
  expect([...hosts]).toEqual([new URL(url).host])
  expect(errors).toEqual([])
})
