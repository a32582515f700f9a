import { fileURLToPath } from 'node:url'
import { readFile } from 'node:fs/promises'
import type { Elysia } from 'elysia'
import { DetectorStatusData } from '../contract/index.ts'
import { EMBEDDED_ASSETS } from '../foundation/embedded-assets.ts'
import { bytesContent, ErrorAnswer, htmlContent, jsonContent, routeDocs } from '../node/route-docs.ts'
import type { DetectorApi } from './detector-api.ts'

const statusPagePath = EMBEDDED_ASSETS?.statusPage.path ?? fileURLToPath(new URL('./status-page/index.html', import.meta.url))

/** A small status page at `/`, from a file embedded in the binary: no CDN, works offline. */
export function registerStatusPage(app: Elysia<any, any, any, any, any, any, any>, detector: Pick<DetectorApi, 'statusData' | 'lastDetection'>): void {
  app
    .get('/', async () => new Response(await readFile(statusPagePath), { headers: { 'content-type': 'text/html; charset=utf-8' } }), { detail: routeDocs({ summary: 'Status page', tags: ['detector'], responses: { 200: htmlContent('the status page') } }) })
    .get('/status.json', () => detector.statusData(), { detail: routeDocs({ summary: 'Status page data: model, modes, outbox, last detection', tags: ['detector'], responses: { 200: jsonContent(DetectorStatusData) } }) })
    .get('/last_detection.jpg', async ({ set }) => {
      const last = await detector.lastDetection()
      if (!last) {
        set.status = 404
        return { detail: 'no detection yet' }
      }
      return new Response(last.jpeg as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'image/jpeg', 'cache-control': 'no-store' } })
    }, { detail: routeDocs({ summary: 'The image of the last detection as JPEG', tags: ['detector'], responses: { 200: bytesContent('image/jpeg'), 404: jsonContent(ErrorAnswer, 'no detection yet') } }) })
}
