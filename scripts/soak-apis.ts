/**
 * What the soak benchmark (scripts/soak.ts) reads and changes on its nodes over HTTP: the local Loop's admin API
 * (models, deployment target, images) and the detector's REST API and /metrics; and the outbox left on disk.
 */
import { OutboxStore } from '../src/detector/outbox-store.ts'
import { parseMetrics, sumOf } from './prometheus-text.ts'

const ADMIN_PROJECT = '/admin/projects/local/demo'

async function ok(response: Response, what: string): Promise<Response> {
  if (!response.ok) throw new Error(`${what} answered ${response.status}: ${(await response.text()).slice(0, 300)}`)
  return response
}

export interface LoopImage {
  id: string
  file_name: string | null
  source: string | null
}

export class SoakLoopApi {
  constructor(private readonly url: string) {}

  async uploadModel(zip: Uint8Array): Promise<{ id: string; version: string }> {
    const response = await fetch(`${this.url}${ADMIN_PROJECT}/models?format=onnx`, { method: 'POST', body: zip as Uint8Array<ArrayBuffer> })
    return (await ok(response, 'model upload')).json() as Promise<{ id: string; version: string }>
  }

  async setTarget(modelId: string): Promise<void> {
    const response = await fetch(`${this.url}${ADMIN_PROJECT}/deployment-target`, {
      method: 'PUT', body: JSON.stringify({ model_id: modelId }), headers: { 'content-type': 'application/json' },
    })
    await ok(response, 'setting the deployment target')
  }

  /** Images of local/demo, all states (from /admin/projects). */
  async imageCount(): Promise<number> {
    const { projects } = await (await ok(await fetch(`${this.url}/admin/projects`), 'project list')).json() as {
      projects: { organization: string; project: string; counts: Record<string, number> }[]
    }
    const demo = projects.find((p) => p.organization === 'local' && p.project === 'demo')
    return Object.values(demo?.counts ?? {}).reduce((sum, n) => sum + n, 0)
  }

  async images(): Promise<LoopImage[]> {
    return ((await (await ok(await fetch(`${this.url}${ADMIN_PROJECT}/images`), 'image list')).json()) as { images: LoopImage[] }).images
  }
}

/** The detector's counters of one life (they start at 0 when the process starts). */
export interface LifeCounters {
  /** lln_outbox_dropped_total, every reason */
  dropped: number
  /** …of those, queued items displaced by the cap (limit, disk_low) */
  displaced: number
  droppedByReason: Record<string, number>
  saveFailures: number
  quarantined: number
  /** autoupload exceptions (encoding): detector_failures_total{autoupload,upload} less the outbox's refusals and save failures */
  autouploadErrors: number
  saved: number
  uploaded: number
  /** lln_outbox_items now */
  items: number
  /** lln_outbox_write_backlog_items now */
  backlog: number
}

export class SoakDetectorApi {
  constructor(readonly url: string) {}

  async metricsText(): Promise<string> {
    return (await ok(await fetch(`${this.url}/metrics`), 'detector /metrics')).text()
  }

  async setOutboxMode(mode: 'stopped' | 'continuous_upload'): Promise<void> {
    await ok(await fetch(`${this.url}/outbox_mode`, { method: 'PUT', body: mode }), `PUT /outbox_mode ${mode}`)
  }

  async currentVersion(): Promise<string> {
    return ((await (await ok(await fetch(`${this.url}/model_version`), 'GET /model_version')).json()) as { current_version: string }).current_version
  }

  /** Resolves when the detector serves `version` (polled; errors while it is down are waited out). */
  async waitForVersion(version: string, timeoutMs: number): Promise<void> {
    const giveUpAt = performance.now() + timeoutMs
    while (performance.now() < giveUpAt) {
      if (await this.currentVersion().catch(() => undefined) === version) return
      await Bun.sleep(250)
    }
    throw new Error(`the detector did not switch to ${version} within ${timeoutMs} ms`)
  }

  /** Sources of the items left in the outbox of a (stopped) detector's data folder. */
  static async queuedSources(dataFolder: string): Promise<string[]> {
    const store = new OutboxStore(dataFolder)
    const { items } = await store.scan()
    const sources: string[] = []
    for (const item of items) {
      const read = await store.readItem(item.queue, item.id)
      if (read.ok) sources.push(String(JSON.parse(new TextDecoder().decode(read.json)).source))
    }
    return sources
  }
}

export async function readCounters(detector: SoakDetectorApi): Promise<LifeCounters> {
  const samples = parseMetrics(await detector.metricsText())
  const isDisplacement = (labels: string) => /reason="(limit|disk_low)"/.test(labels)
  const dropped = sumOf(samples, 'lln_outbox_dropped_total')
  const displaced = sumOf(samples, 'lln_outbox_dropped_total', isDisplacement)
  const saveFailures = sumOf(samples, 'lln_outbox_save_failures_total')
  const failures = sumOf(samples, 'lln_detector_failures_total', (labels) => /kind="(autoupload|upload)"/.test(labels))
  const droppedByReason: Record<string, number> = {}
  for (const { labels, value } of samples.get('lln_outbox_dropped_total') ?? []) {
    if (labels === '') continue // the counter before its first drop
    const reason = /reason="([^"]*)"/.exec(labels)?.[1] ?? '?'
    droppedByReason[reason] = (droppedByReason[reason] ?? 0) + value
  }
  return {
    dropped, displaced, droppedByReason, saveFailures,
    quarantined: sumOf(samples, 'lln_outbox_rejected_total'),
    autouploadErrors: failures - (dropped - displaced) - saveFailures,
    saved: sumOf(samples, 'lln_outbox_saved_total'),
    uploaded: sumOf(samples, 'lln_outbox_uploaded_total'),
    items: sumOf(samples, 'lln_outbox_items'),
    backlog: sumOf(samples, 'lln_outbox_write_backlog_items'),
  }
}

/** The counters of all lives together (the gauges: of the last one). */
export function sumCounters(lives: readonly LifeCounters[]): LifeCounters {
  const last = lives.at(-1)
  const sum = (pick: (c: LifeCounters) => number) => lives.reduce((total, c) => total + pick(c), 0)
  const droppedByReason: Record<string, number> = {}
  for (const life of lives) for (const [reason, n] of Object.entries(life.droppedByReason)) droppedByReason[reason] = (droppedByReason[reason] ?? 0) + n
  return {
    dropped: sum((c) => c.dropped), displaced: sum((c) => c.displaced), droppedByReason, saveFailures: sum((c) => c.saveFailures),
    quarantined: sum((c) => c.quarantined), autouploadErrors: sum((c) => c.autouploadErrors), saved: sum((c) => c.saved),
    uploaded: sum((c) => c.uploaded), items: last?.items ?? 0, backlog: last?.backlog ?? 0,
  }
}
