import { readFile } from 'node:fs/promises'
import type { Elysia } from 'elysia'
import statusPageFile from './status-page/index.html' with { type: 'file' }
import type { DetectorApi } from './detector-api.ts'

// bun-types types every .html import as an HTML bundle; imported as a file it is a path
const statusPagePath = statusPageFile as unknown as string

/** A small status page at `/`, from a file embedded in the binary: no CDN, works offline. */
export function registerStatusPage(app: Elysia<any, any, any, any, any, any, any>, detector: Pick<DetectorApi, 'statusData' | 'lastDetection'>): void {
  app
    .get('/', async () => new Response(await readFile(statusPagePath), { headers: { 'content-type': 'text/html; charset=utf-8' } }), { detail: { summary: 'Status page', tags: ['detector'] } })
    .get('/status.json', () => detector.statusData(), { detail: { summary: 'Status page data: model, modes, outbox, last detection', tags: ['detector'] } })
    .get('/last_detection.jpg', async ({ set }) => {
      const last = await detector.lastDetection()
      if (!last) {
        set.status = 404
        return { detail: 'no detection yet' }
      }
      return new Response(last.jpeg as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'image/jpeg', 'cache-control': 'no-store' } })
    }, { detail: { summary: 'The image of the last detection as JPEG', tags: ['detector'] } })
}
