/**
 * The converter node (§9, REST only): every cycle it asks the Loop for all projects and their models,
 * picks the models that have a version and the source format but lack the target format, downloads
 * the source files, converts them and uploads the result as the target format of the same model.
 * A ledger on disk remembers what was converted and what kept failing (bounded retries with backoff,
 * then skipped and reported), so a restart neither redoes work nor forgets a broken model.
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import {
  LoopModelsResponse, ProjectInfo, ProjectsResponse, decode, ModelInformation, type Category, type ConverterCycleReport, ConverterStatusReport, type LoopModel, type ModelInformation as ModelInformationType,
} from '../contract/index.ts'
import type { NodeConfig } from '../config/node-config.ts'
import { DataExchange } from '../loop/data-exchange.ts'
import { LoopConnection } from '../node/loop-connection.ts'
import { LocalLoop } from '../local-loop/local-loop.ts'
import { createLogger, errorMessage, type Logger } from '../foundation/log.ts'
import { NodeRuntime } from '../node/node-runtime.ts'
import { jsonContent, routeDocs } from '../node/route-docs.ts'
import {
  ConversionLedger, decideConversion, ledgerKey, recordFailure, recordSuccess, DEFAULT_RETRY_POLICY, type RetryPolicy,
} from './conversion-ledger.ts'
import { ModelNotConvertibleError, type ConverterLogic } from './converter-logic.ts'
import { LoopNode } from '../node/loop-node.ts'

/** Upstream checked every 60 s. */
export const DEFAULT_CONVERSION_INTERVAL_MS = 60_000
/** Conversions per cycle, so one cycle stays bounded when many models wait. */
export const DEFAULT_MAX_CONVERSIONS_PER_CYCLE = 5

export interface ConverterNodeOptions {
  name: string
  uuid: string
  config: NodeConfig
  dataFolder: string
  logic: ConverterLogic
  port?: number
  hostname?: string
  /** time between the end of one check and the start of the next */
  intervalMs?: number
  maxConversionsPerCycle?: number
  retryPolicy?: RetryPolicy
  /** only these projects (default: the configured organization/project when both are set, else every project) */
  projectFilter?: (organization: string, project: string) => boolean
  log?: Logger
}

/** A model the Loop lists with the source format and without the target format. */
export interface ConversionCandidate {
  organization: string
  project: string
  model: LoopModel
}

/** Models that have a version and the source format but not the target format (§9). Pure. */
export function selectModelsToConvert(models: readonly LoopModel[], sourceFormat: string, targetFormat: string): LoopModel[] {
  return models.filter((m) => m.version !== '' && m.formats.includes(sourceFormat) && !m.formats.includes(targetFormat))
}

export type { ConverterCycleReport }

export class ConverterNode extends LoopNode {
  readonly runtime: NodeRuntime
  lastCycle: ConverterCycleReport | null = null
  private readonly log: Logger
  private readonly metrics

  private constructor(private readonly options: ConverterNodeOptions, readonly ledger: ConversionLedger) {
    super()
    this.log = options.log ?? createLogger('converter')
    this.runtime = new NodeRuntime({
      name: options.name, uuid: options.uuid, nodeType: 'converter', port: options.port ?? options.config.port ?? 0,
      hostname: options.hostname ?? options.config.hostname, repeatIntervalMs: options.intervalMs ?? DEFAULT_CONVERSION_INTERVAL_MS,
      skipRepeatOnStart: options.config.skipRepeatOnStart, capabilities: [`${options.logic.sourceFormat}->${options.logic.targetFormat}`], log: this.log,
    })
    const m = this.runtime.metrics
    this.metrics = {
      conversions: m.counter('converter_conversions_total', 'model conversions by result (converted, failed, skipped)'),
      cycles: m.counter('converter_cycles_total', 'conversion checks by result'),
      seconds: m.histogram('converter_conversion_seconds', 'download + convert + upload time of one model', [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]),
    }
    const skippedGauge = m.gauge('converter_skipped_models', 'models the converter gave up on')
    skippedGauge.collect(() => skippedGauge.set(this.ledger.records().filter((r) => r.outcome === 'skipped').length))
    this.reportSkippedInStatus()
    this.runtime.app.get('/status', () => this.statusReport(), {
      detail: routeDocs({ summary: 'Converter status: formats, last check, models converted, failed and skipped', tags: ['converter'], responses: { 200: jsonContent(ConverterStatusReport) } }),
    })
    this.runtime.setHooks({
      onRepeat: () => this.runCycle().then(() => undefined),
      onShutdown: () => this.connection.close(),
    })
  }

  /** Opens the ledger and the Loop connection (an embedded local loop when LOOP_HOST is unset). */
  static async create(options: ConverterNodeOptions): Promise<ConverterNode> {
    const ledger = await ConversionLedger.open(options.dataFolder, options.logic.sourceFormat, options.logic.targetFormat)
    const node = new ConverterNode({ ...options, log: options.log ?? createLogger('converter') }, ledger)
    node.loopConnection = await LoopConnection.open({
      config: options.config, dataFolder: options.dataFolder, nodeType: 'converter', socket: false, log: node.log, metrics: node.runtime.metrics,
      startEmbeddedLoop: (loopOptions) => LocalLoop.start(loopOptions),
    })
    return node
  }

  statusReport(): ConverterStatusReport {
    const records = this.ledger.records()
    return {
      id: this.runtime.status.id,
      name: this.runtime.status.name,
      source_format: this.options.logic.sourceFormat,
      target_format: this.options.logic.targetFormat,
      errors: this.runtime.status.errors ?? {},
      last_cycle: this.lastCycle,
      converted: records.filter((r) => r.outcome === 'converted').length,
      failed: records.filter((r) => r.outcome === 'failed'),
      skipped: records.filter((r) => r.outcome === 'skipped'),
    }
  }

  /** One check of every project (the repeat loop calls this; tests may call it directly). */
  async runCycle(): Promise<ConverterCycleReport> {
    const report: ConverterCycleReport = { started_at: new Date().toISOString(), projects: 0, candidates: 0, converted: [], failed: [], waiting: 0, skipped: 0, error: null }
    const budget = this.options.maxConversionsPerCycle ?? DEFAULT_MAX_CONVERSIONS_PER_CYCLE
    try {
      const rest = this.connection.rest
      const { projects } = await rest.getJson('/projects', ProjectsResponse)
      // a project the Loop cannot describe is reported; the projects after it are still checked
      const projectErrors: string[] = []
      for (const entry of projects) {
        if (!this.wantsProject(entry.organization_id, entry.project_id)) continue
        report.projects++
        try {
          await this.checkProject(entry, report, budget)
        } catch (error) {
          projectErrors.push(`${entry.organization_id}/${entry.project_id}: ${errorMessage(error)}`)
        }
      }
      if (projectErrors.length > 0) throw new Error(`${projectErrors.length} of ${report.projects} projects could not be checked (${projectErrors.slice(0, 3).join('; ')})`)
      this.metrics.cycles.inc({ result: 'ok' })
      delete this.statusErrors().loop
    } catch (error) {
      report.error = errorMessage(error)
      this.statusErrors().loop = `could not check the Loop for models: ${report.error}`
      this.metrics.cycles.inc({ result: 'failed' })
      this.log.warn('conversion check failed; retrying next cycle', { error: report.error })
    }
    this.lastCycle = report
    this.reportSkippedInStatus()
    return report
  }

  /** The models of one project that lack the target format: converted within the cycle's budget, or counted. */
  private async checkProject(entry: ProjectsResponse['projects'][number], report: ConverterCycleReport, budget: number): Promise<void> {
    const { sourceFormat, targetFormat } = this.options.logic
    const rest = this.connection.rest
    const info = await rest.getJson(entry.resource, ProjectInfo)
    const { models } = await rest.getJson(`${entry.resource}/models`, LoopModelsResponse)
    for (const model of selectModelsToConvert(models, sourceFormat, targetFormat)) {
      report.candidates++
      const key = ledgerKey(entry.organization_id, entry.project_id, model.id)
      const decision = decideConversion(this.ledger.get(key), Date.now())
      if (decision === 'wait') report.waiting++
      if (decision === 'skipped') report.skipped++
      if (decision !== 'convert') continue
      if (report.converted.length + report.failed.length >= budget) continue
      const outcome = await this.convertModel({ organization: entry.organization_id, project: entry.project_id, model }, info.categories ?? [])
      if (outcome === true) report.converted.push(key)
      else report.failed.push({ model: key, error: outcome })
    }
  }

  /** Downloads, converts and uploads one model; true, or the error message (already logged and recorded). */
  private async convertModel(candidate: ConversionCandidate, projectCategories: Category[]): Promise<true | string> {
    const { organization, project, model } = candidate
    const { sourceFormat, targetFormat } = this.options.logic
    const key = ledgerKey(organization, project, model.id)
    const ref = { organization, project, model_id: model.id, version: model.version }
    const folder = join(this.options.dataFolder, safeSegment(organization), safeSegment(project), safeSegment(model.id))
    const started = performance.now()
    try {
      await rm(folder, { recursive: true, force: true })
      const exchange = new DataExchange(this.connection.rest, { organization, project })
      await exchange.downloadModel(model.id, sourceFormat, folder)
      const information = await this.modelInformation(candidate, folder, projectCategories)
      const files = await this.options.logic.convert(information, folder, join(folder, `converted-${targetFormat}`))
      if (files.length === 0) throw new Error(`the ${sourceFormat} → ${targetFormat} conversion produced no files`)
      const path = `${exchange.projectPath}/models/${encodeURIComponent(model.id)}/${encodeURIComponent(targetFormat)}/file`
      const response = await this.connection.rest.sendMultipart('PUT', path, files.map((file) => ({ path: file })), { timeoutMs: 600_000 })
      await response.body?.cancel()
      await this.ledger.set(key, recordSuccess(this.ledger.get(key), ref, Date.now()))
      await rm(folder, { recursive: true, force: true })
      this.metrics.conversions.inc({ result: 'converted' })
      this.metrics.seconds.observe((performance.now() - started) / 1000)
      this.log.info('model converted', { organization, project, model_id: model.id, version: model.version, from: sourceFormat, to: targetFormat, files: files.length })
      return true
    } catch (error) {
      // a model that keeps failing must not keep a copy of its files on disk
      await rm(folder, { recursive: true, force: true }).catch(() => undefined)
      const message = errorMessage(error)
      const permanent = error instanceof ModelNotConvertibleError
      const record = recordFailure(this.ledger.get(key), ref, message, Date.now(), { permanent, policy: this.options.retryPolicy ?? DEFAULT_RETRY_POLICY })
      await this.ledger.set(key, record).catch((writeError) => this.log.error('could not write the converter ledger', { error: errorMessage(writeError) }))
      this.metrics.conversions.inc({ result: record.outcome })
      const fields = { organization, project, model_id: model.id, version: model.version, attempts: record.attempts, error: message }
      if (record.outcome === 'skipped') this.log.warn('model skipped: it cannot be converted', fields)
      else this.log.warn('model conversion failed; will retry', { ...fields, next_attempt_at: new Date(record.next_attempt_at!).toISOString() })
      return message
    }
  }

  /** What the logic gets to know: the Loop's facts plus `resolution` from the source's model.json, if any. */
  private async modelInformation(candidate: ConversionCandidate, folder: string, projectCategories: Category[]): Promise<ModelInformationType> {
    let resolution: number | null = null
    let modelSize: string | null = null
    const text = await readFile(join(folder, 'model.json'), 'utf8').catch(() => undefined)
    if (text !== undefined) {
      try {
        const parsed = decode(ModelInformation, JSON.parse(text))
        resolution = parsed.resolution ?? null
        modelSize = parsed.model_size ?? null
      } catch (error) {
        this.log.info('ignoring the source model.json', { model_id: candidate.model.id, error: errorMessage(error) })
      }
    }
    return {
      id: candidate.model.id, host: this.connection.rest.baseUrl, organization: candidate.organization, project: candidate.project,
      version: candidate.model.version, categories: projectCategories, resolution, model_root_path: null, model_size: modelSize,
    }
  }

  private wantsProject(organization: string, project: string): boolean {
    if (this.options.projectFilter) return this.options.projectFilter(organization, project)
    const loop = this.options.config.loop
    if (loop.organization && organization !== loop.organization) return false
    if (loop.project && project !== loop.project) return false
    return true
  }

  private statusErrors(): Record<string, string> {
    this.runtime.status.errors ??= {}
    return this.runtime.status.errors
  }

  private reportSkippedInStatus(): void {
    const errors = this.statusErrors()
    for (const name of Object.keys(errors)) if (name.startsWith('skipped:')) delete errors[name]
    for (const record of this.ledger.records()) {
      if (record.outcome === 'skipped') errors[`skipped:${ledgerKey(record.organization, record.project, record.model_id)}`] = record.last_error ?? 'skipped'
    }
  }
}

/** A path segment from a name the Loop sent: no separators, no dot names. */
function safeSegment(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_.-]/g, '_')
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? `_${cleaned}_` : cleaned
}
