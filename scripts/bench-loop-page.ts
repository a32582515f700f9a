/**
 * The local Loop's web page with 10 000 images in a project: how long a gallery page takes to answer (target
 * ≤ 200 ms) and how long the page takes to first render its gallery in chromium (target ≤ 1 s).
 *
 *   bun scripts/bench-loop-page.ts [--images 10000] [--requests 30]
 *
 * The images are inserted straight into the loop's SQLite file in one transaction (all rows share one JPEG file),
 * then a real LocalLoop serves them; the gallery is asked for its first, a middle and the last page, with and
 * without filters. The browser part needs Debian's chromium at /usr/bin/chromium (skipped otherwise).
 */
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LocalLoop } from '../src/local-loop/local-loop.ts'
import { LoopStore } from '../src/local-loop/loop-store.ts'
import { SqliteDatabase } from '../src/local-loop/sqlite-database.ts'
import { CHROMIUM, launchChromium } from '../test/support/browser.ts'

const { values } = parseArgs({ options: { images: { type: 'string', default: '10000' }, requests: { type: 'string', default: '30' } } })
const IMAGES = Number(values.images)
const REQUESTS = Number(values.requests)
const USER = { username: 'bench', password: 'bench-secret' }
const STATES = ['inbox', 'annotate', 'review', 'complete'] as const

const folder = await mkdtemp(join(tmpdir(), 'bench-loop-page-'))
try {
  const store = await LoopStore.open(folder)
  store.ensureProject('local', 'demo')
  store.close()
  const file = join('images', 'local', 'demo', 'astronaut.jpg')
  await mkdir(join(folder, 'images', 'local', 'demo'), { recursive: true })
  await copyFile(join(import.meta.dir, '../test/fixtures/astronaut.jpg'), join(folder, file))
  const started = performance.now()
  const db = new SqliteDatabase(join(folder, 'loop.sqlite'))
  const detections = JSON.stringify({ box_detections: [{ category_name: 'face', category_id: null, model_name: 'bench', confidence: 0.9, x: 10, y: 10, width: 50, height: 50 }], point_detections: [], segmentation_detections: [], classification_detections: [] })
  const annotations = JSON.stringify({ box_annotations: [], point_annotations: [], segmentation_annotations: [], classification_annotation: null })
  db.transaction(() => {
    const insert = db.query(`INSERT INTO images (organization, project, id, state, set_name, width, height, created, uploaded_at, source, tags, annotations, detections, file, camera_id)
      VALUES ('local', 'demo', $id, $state, 'train', 512, 512, $created, $at, $source, $tags, $annotations, $detections, $file, $camera)`)
    const day0 = Date.UTC(2026, 0, 1)
    for (let i = 0; i < IMAGES; i++) {
      const at = day0 + i * 60_000
      insert.run({
        id: `bench-${String(i).padStart(6, '0')}`, state: STATES[i % 4]!, created: new Date(at).toISOString().replace('T', '_').slice(0, 23), at,
        source: `camera-rig-${i % 3}`, tags: JSON.stringify([`batch-${i % 10}`]), annotations, detections, file, camera: `cam-${i % 5}`,
      })
    }
  })
  db.close()
  console.log(`inserted ${IMAGES} images in ${Math.round(performance.now() - started)} ms`)

  const loop = await LocalLoop.start({ dataFolder: folder, ...USER })
  try {
    const login = await fetch(`${loop.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(USER) })
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!
    const lastPage = Math.ceil(IMAGES / 48)
    const queries = ['', `page=${Math.ceil(lastPage / 2)}`, `page=${lastPage}`, 'state=complete', 'tag=batch-3&page=5', 'source=camera-rig-1&camera=cam-2', 'from=2026-01-03&to=2026-01-04']
    const timings: Record<string, number[]> = {}
    for (let round = 0; round < REQUESTS; round++) {
      for (const query of queries) {
        const t0 = performance.now()
        const response = await fetch(`${loop.url}/admin/projects/local/demo/gallery?${query}`, { headers: { cookie } })
        const body = await response.json() as { images: unknown[]; total: number }
        const ms = performance.now() - t0
        if (!response.ok || body.images.length === 0) throw new Error(`gallery ?${query} answered ${response.status} with ${body.images.length} images`)
        ;(timings[query || '(first page)'] ??= []).push(ms)
      }
    }
    const percentile = (list: number[], p: number) => [...list].sort((a, b) => a - b)[Math.min(list.length - 1, Math.floor(list.length * p))]!
    let worst = 0
    for (const [query, list] of Object.entries(timings)) {
      worst = Math.max(worst, percentile(list, 0.95))
      console.log(`gallery ${query.padEnd(36)} median ${percentile(list, 0.5).toFixed(1)} ms, p95 ${percentile(list, 0.95).toFixed(1)} ms, first ${list[0]!.toFixed(1)} ms`)
    }
    console.log(`gallery page p95 (worst query): ${worst.toFixed(1)} ms (target ≤ 200 ms) ${worst <= 200 ? 'OK' : 'OVER'}`)

    if (!existsSync(CHROMIUM)) {
      console.log(`first render: skipped (${CHROMIUM} not found)`)
    } else {
      const browser = await launchChromium()
      try {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
        const [name, value] = cookie.split('=') as [string, string]
        await context.addCookies([{ name, value, url: loop.url }])
        const page = await context.newPage()
        for (const label of ['cold thumbnails', 'cached thumbnails']) {
          // measured in the page, from the start of the navigation (performance.timeOrigin)
          await page.goto('about:blank')
          await page.goto(`${loop.url}/#images`, { waitUntil: 'commit' })
          const rendered = await (await page.waitForFunction(() => document.querySelectorAll('.thumb').length === 48 && performance.now(), undefined, { polling: 'raf' })).jsonValue() as number
          const visible = await (await page.waitForFunction(() => [...document.querySelectorAll('.thumb img')].slice(0, 12)
            .every((img) => (img as HTMLImageElement).complete && (img as HTMLImageElement).naturalWidth > 0) && performance.now(), undefined, { timeout: 60_000, polling: 'raf' })).jsonValue() as number
          console.log(`first render (${label}): gallery of 48 after ${rendered.toFixed(0)} ms (target ≤ 1000 ms) ${rendered <= 1000 ? 'OK' : 'OVER'}; first 12 thumbnails shown after ${visible.toFixed(0)} ms`)
        }
      } finally {
        await browser.close()
      }
    }
  } finally {
    await loop.stop()
  }
} finally {
  await rm(folder, { recursive: true, force: true })
}
