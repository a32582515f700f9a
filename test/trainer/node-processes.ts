import type { Child } from '../support/child-process.ts'
import { startNodeProcess } from '../support/node-process.ts'
import { waitFor } from '../support/temp.ts'

/** The local loop as its own child process (`learning-loop-node loop --port P --data D`), driven through its admin API. */
export class LoopProcess {
  private child: Child | undefined

  constructor(readonly port: number, readonly dataFolder: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.child !== undefined
  }

  async start(): Promise<void> {
    this.child = (await startNodeProcess(['loop', '--port', String(this.port), '--data', this.dataFolder], { env: { LOG_LEVEL: 'warn' } })).child
  }

  async stop(): Promise<void> {
    const child = this.child
    this.child = undefined
    await child?.kill('SIGTERM')
  }

  async admin<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.url}/admin${path}`, {
      method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`${method} /admin${path} failed with ${response.status}: ${text}`)
    return JSON.parse(text) as T
  }

  createProject(project: string, counts: Record<string, number>): Promise<unknown> {
    return this.admin('POST', '/projects', { organization: 'local', project_name: project, box_categories: 2, image_style: 'plain', ...counts })
  }

  startTraining(project: string, node: string, hyperparameters: Record<string, unknown>): Promise<{ ack: { success: boolean } }> {
    return this.admin('POST', `/projects/local/${project}/trainings`, { node, model_variant: 'small', hyperparameters })
  }

  async states(nodeId: string): Promise<string[]> {
    const { statuses } = await this.admin<{ statuses: { status: { state: string } }[] }>('GET', `/nodes/statuses?node=${nodeId}`)
    return statuses.map((s) => s.status.state)
  }

  async models(project: string): Promise<{ id: string; version: string; formats: string[]; training_number: number }[]> {
    return (await this.admin<{ models: { id: string; version: string; formats: string[]; training_number: number }[] }>('GET', `/projects/local/${project}/models`)).models
  }

  async imagesWithoutTrainerDetections(project: string): Promise<{ total: number; without: number }> {
    const { images } = await this.admin<{ images: { state: string; has_trainer_detections: boolean }[] }>('GET', `/projects/local/${project}/images`)
    const live = images.filter((i) => i.state !== 'trash')
    return { total: live.length, without: live.filter((i) => !i.has_trainer_detections).length }
  }

  /** Requests the loop answered, by route (since this loop process started). */
  async requestCounts(): Promise<{ modelUploads: number; detectionUploads: number }> {
    const stats = await this.admin<{ requests: { by_route: Record<string, number> } }>('GET', '/stats')
    const routes = stats.requests.by_route
    return {
      modelUploads: routes['PUT /api/:org/projects/:project/trainings/:number/models/latest/:format/file'] ?? 0,
      detectionUploads: routes['POST /api/:org/projects/:project/detections'] ?? 0,
    }
  }
}

export interface TrainerProcess {
  child: Child
  uuid: string
  url: string
}

/**
 * `learning-loop-node trainer --logic testing` as a child process with short timings; resolves once it is ready
 * (connected to the Loop), or with `waitReady: false` once it listens.
 */
export async function startTrainerProcess(loopUrl: string, dataFolder: string, options: { env?: Record<string, string>; flags?: string[]; waitReady?: boolean } = {}): Promise<TrainerProcess> {
  const { child, url, line } = await startNodeProcess([
    'trainer', '--logic', 'testing',
    '--status-interval-ms', '200', '--retry-attempts', '3', '--retry-base-ms', '100', '--retry-max-ms', '500',
    '--loop-wait-max-ms', '300', '--cancel-grace-ms', '500', '--stop-grace-ms', '3000',
    ...(options.flags ?? []),
  ], {
    env: { LOOP_HOST: loopUrl, DATA_FOLDER: dataFolder, LOG_LEVEL: 'warn', KEEP_OLD_TRAININGS: '1', ...options.env },
  })
  const [, uuid] = /^trainer (\S+) listening on /.exec(line)!
  if (options.waitReady !== false) {
    await waitFor(async () => (await fetch(`${url}/ready`)).status === 200, 20_000, `the trainer connected to the loop; output:\n${child.output()}`)
  }
  return { child, uuid: uuid!, url }
}
