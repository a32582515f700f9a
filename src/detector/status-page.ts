import type { Elysia } from 'elysia'
import statusPageFile from './status-page/index.html' with { type: 'file' }
import type { DetectorNode } from './detector-node.ts'

// bun-types types every .html import as an HTML bundle; imported as a file it is a path
const statusPagePath = statusPageFile as unknown as string

/** What the status page polls: model, modes, outbox and the last detection's metadata. */
export async function statusSnapshot(node: DetectorNode) {
  const logic = node.active.logic
  const last = node.detections.lastDetectionMetadata()
  return {
    now: Date.now(),
    model: logic ? { version: logic.modelInfo.version, backend: logic.backend, categories: logic.modelInfo.categories?.length ?? 0 } : null,
    operation_mode: node.operationMode,
    version_control: node.updater.mode,
    target_version: node.updater.target?.version ?? null,
    outbox: {
      mode: node.outbox.getMode(),
      priority: node.outbox.count('priority'),
      normal: node.outbox.count('normal'),
      bytes: node.outbox.bytes(),
      uploaded: node.outbox.totals.uploaded,
      rejected: node.outbox.totals.rejected,
      dropped: node.outbox.totals.dropped,
    },
    last: last ?? null,
  }
}

/** A small status page at `/`, from a file embedded in the binary: no CDN, works offline. */
export function registerStatusPage(app: Elysia<any, any, any, any, any, any, any>, node: DetectorNode): void {
  app
    .get('/', () => new Response(Bun.file(statusPagePath), { headers: { 'content-type': 'text/html; charset=utf-8' } }), { detail: { summary: 'Status page', tags: ['detector'] } })
    .get('/status.json', () => statusSnapshot(node), { detail: { summary: 'Status page data: model, modes, outbox, last detection', tags: ['detector'] } })
    .get('/last_detection.jpg', async ({ set }) => {
      const last = await node.detections.lastDetection()
      if (!last) {
        set.status = 404
        return { detail: 'no detection yet' }
      }
      return new Response(last.jpeg as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'image/jpeg', 'cache-control': 'no-store' } })
    }, { detail: { summary: 'The image of the last detection as JPEG', tags: ['detector'] } })
}
