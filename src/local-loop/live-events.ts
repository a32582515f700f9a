import type { LiveSnapshot } from '../contract/index.ts'
import type { LocalLoopAdmin } from './local-loop-admin.ts'
import type { LoopStore } from './loop-store.ts'

/**
 * The web page's live view of a project as server-sent events: a `snapshot` (connected nodes with their latest
 * status, detector statuses, trainings, trainers' progress, the deployment target) whenever it changed, checked
 * once a second on the server, so the browser never polls. The stream ends with a `logout` event when the session
 * it was opened with is gone.
 */
const MAX_PROGRESS_POINTS = 200
const MAX_TRAININGS = 20
const KEEPALIVE_MS = 15_000

export type LiveSources = Pick<LocalLoopAdmin, 'connectedNodes' | 'statusHistory' | 'detectorStatuses' | 'operations'>

export function liveSnapshot(admin: LiveSources, store: LoopStore, organization: string, project: string): LiveSnapshot {
  const nodes = admin.connectedNodes()
  const progress: LiveSnapshot['progress'] = {}
  for (const node of nodes) {
    if (node.nodeType !== 'trainer' || !node.nodeId) continue
    progress[node.nodeId] = admin.statusHistory(node.nodeId).slice(-MAX_PROGRESS_POINTS).map((entry) => {
      const status = entry.status as { progress?: number | null; state?: string | null }
      return { t: entry.receivedAt, progress: status.progress ?? null, state: status.state ?? null }
    })
  }
  const trainings = (admin.operations.trainingsListing(organization, project).trainings as Record<string, unknown>[]).slice(0, MAX_TRAININGS)
  const target = store.deploymentTarget(organization, project)
  return {
    nodes: nodes.map((node) => ({
      sid: node.sid, node_type: node.nodeType, name: node.name, node_id: node.nodeId, organization: node.organization, project: node.project,
      connected_at: node.connectedAt, status: node.lastStatus, status_at: node.lastStatusAt,
    })),
    detectors: admin.detectorStatuses(organization, project).map((d) => ({ uuid: d.uuid, status: d.status, received_at: d.receivedAt })),
    trainings,
    progress,
    deployment_target: target ? { model_uuid: target.id, version: target.version } : null,
    categories: store.categories(organization, project),
  }
}

/** A text/event-stream response sending `snapshot()` when it changes (checked every `intervalMs`) until `alive()` is false. */
export function liveEventStream(snapshot: () => unknown, alive: () => boolean, intervalMs = 1_000): Response {
  const encoder = new TextEncoder()
  let timer: ReturnType<typeof setInterval> | undefined
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let last = ''
      let lastSent = 0
      const send = (text: string) => {
        try {
          controller.enqueue(encoder.encode(text))
          lastSent = Date.now()
        } catch {
          // the browser went away between two ticks
          clearInterval(timer)
        }
      }
      const tick = () => {
        try {
          if (!alive()) {
            send('event: logout\ndata: {}\n\n')
            clearInterval(timer)
            controller.close()
            return
          }
          const text = JSON.stringify(snapshot())
          if (text !== last) {
            last = text
            send(`event: snapshot\ndata: ${text}\n\n`)
          } else if (Date.now() - lastSent > KEEPALIVE_MS) {
            send(': keepalive\n\n')
          }
        } catch (error) {
          send(`event: problem\ndata: ${JSON.stringify({ detail: (error as Error).message })}\n\n`)
        }
      }
      send('retry: 2000\n\n')
      tick()
      timer = setInterval(tick, intervalMs)
    },
    cancel() {
      clearInterval(timer)
    },
  })
  return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' } })
}
