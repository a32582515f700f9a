import type { DetectorStatus, ModelVersionResponse, OperationMode } from '../contract/index.ts'
import type { DataExchange } from '../loop/data-exchange.ts'
import { errorMessage, quoteInput, type Logger } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import type { ActiveDetector } from './active-detector.ts'
import type { DetectorLogicFactory } from './detector-logic.ts'
import type { ModelStore } from './model-store.ts'
import { isValidVersion, parseVersionModeRequest, updateRetryDelayMs, type VersionControlMode } from './version-control.ts'

/** A rejected version-mode request; `status` is the HTTP status to answer with. Nothing was changed. */
export class VersionModeError extends Error {
  constructor(message: string, readonly status: number) {
    super(message)
    this.name = 'VersionModeError'
  }
}

export interface ModelTarget {
  id: string
  version: string
}

export interface ModelUpdaterOptions {
  store: ModelStore
  active: ActiveDetector
  factory: DetectorLogicFactory
  exchange: DataExchange
  log: Logger
  metrics: MetricsRegistry
  versionControlDefault: 'follow_loop' | 'pause'
  syncCycles: number
  exclusiveModelBuild: boolean
  operationMode: () => OperationMode
  /** the node's status errors (`update_model` lives here) */
  errors: Record<string, string>
  /** the DetectorStatus to send, minus what this class knows */
  statusBase: () => Omit<DetectorStatus, 'current_model' | 'target_model' | 'model_format' | 'errors'>
  now?: () => number
}

/**
 * Model version control and the update loop of §7.6, with upstream's quirks fixed (§15.11): a failed
 * download or build keeps the target and is retried with a growing delay (5 s → 5 min), and an invalid or
 * unknown version leaves the mode as it was.
 */
export class ModelUpdater {
  mode: VersionControlMode
  target: ModelTarget | null = null
  loopTarget: ModelTarget | null = null
  private cyclesToNextSync = 0
  private failures = 0
  private nextAttemptAt = 0
  private updating: Promise<void> | undefined
  private readonly swaps
  private readonly updateFailures
  private readonly disposeFailures
  private readonly now: () => number

  constructor(private readonly options: ModelUpdaterOptions) {
    this.mode = options.versionControlDefault
    this.now = options.now ?? Date.now
    this.swaps = options.metrics.counter('detector_model_swaps_total', 'model versions switched to')
    this.updateFailures = options.metrics.counter('detector_model_update_failures_total', 'failed model downloads or builds')
    this.disposeFailures = options.metrics.counter('detector_model_dispose_failures_total', 'replaced models whose dispose failed')
  }

  /** At start: the model `current_model` points at (or a 0.18 `model` link), else `fallbackDir` (the built-in model). */
  async loadInitialModel(fallbackDir: string | undefined): Promise<void> {
    const { store, active, factory, log } = this.options
    const current = await store.currentModelFolder()
    for (const folder of [current, fallbackDir]) {
      if (!folder) continue
      try {
        await active.swap(await factory.build(folder))
        log.info('model loaded', { folder, version: active.version })
        return
      } catch (error) {
        log.error('could not load model', { folder, error: errorMessage(error) })
        this.options.errors.load_model = `Could not load model from ${folder}: ${errorMessage(error)}`
      }
    }
  }

  /** One repeat cycle: the status every `syncCycles` cycles (first one now), then the update check. */
  async cycle(): Promise<void> {
    this.cyclesToNextSync--
    if (this.cyclesToNextSync <= 0) {
      this.cyclesToNextSync = this.options.syncCycles
      await this.syncStatus()
    }
    await this.updateIfRequired()
  }

  /** POSTs the DetectorStatus (#12); failures are logged, never thrown. */
  async syncStatus(): Promise<void> {
    const status: DetectorStatus = {
      ...this.options.statusBase(),
      model_format: this.options.factory.modelFormat,
      current_model: this.options.active.version ?? null,
      target_model: this.target?.version ?? null,
      errors: { ...this.options.errors },
    }
    try {
      await this.options.exchange.sendDetectorStatus(status)
    } catch (error) {
      this.options.log.warn('could not send the detector status', { error: errorMessage(error) })
    }
  }

  /** `follow_loop`, `pause` or a version; throws VersionModeError (and changes nothing) when it cannot be honoured. */
  async setVersionMode(raw: unknown): Promise<void> {
    const request = parseVersionModeRequest(raw)
    if ('error' in request) throw new VersionModeError(request.error, 400)
    if (request.mode !== 'specific_version') {
      this.mode = request.mode
      this.options.log.info('version control mode set', { mode: this.mode })
      return
    }
    const { version } = request
    if (this.target?.version !== version) {
      let models
      try {
        models = await this.options.exchange.fetchModels()
      } catch (error) {
        throw new VersionModeError(`Failed to load models from learning loop: ${errorMessage(error)}`, 502)
      }
      const matches = models.filter((m) => m.version === version)
      if (matches.length === 0) throw new VersionModeError(`No Model with version ${version}`, 404)
      if (matches.length > 1) throw new VersionModeError(`Multiple models with version ${version}`, 409)
      this.target = { id: matches[0]!.id, version }
      this.failures = 0
      this.nextAttemptAt = 0
    }
    this.mode = 'specific_version'
    this.options.log.info('version control mode set', { mode: this.mode, version })
  }

  versionResponse(localVersions: string[]): ModelVersionResponse {
    return {
      current_version: this.options.active.version ?? 'None',
      target_version: this.target?.version ?? 'None',
      loop_version: this.loopTarget?.version ?? 'None',
      local_versions: localVersions,
      version_control: this.mode,
    }
  }

  /** Resolves when a model update running now has finished (tests and shutdown). */
  async settled(): Promise<void> {
    await this.updating
  }

  private async updateIfRequired(): Promise<void> {
    if (this.options.operationMode() !== 'idle') return
    await this.refreshLoopTarget()
    if (this.mode === 'follow_loop' && this.loopTarget && (this.target?.id !== this.loopTarget.id || this.target.version !== this.loopTarget.version)) {
      this.target = this.loopTarget
      this.failures = 0
      this.nextAttemptAt = 0
    }
    const target = this.target
    if (!target || this.options.active.updatingTo || this.updating) return
    if (this.options.active.version === target.version) {
      delete this.options.errors.update_model
      return
    }
    if (this.now() < this.nextAttemptAt) return
    this.updating = this.update(target).finally(() => {
      this.updating = undefined
    })
    await this.updating
  }

  private async refreshLoopTarget(): Promise<void> {
    try {
      const target = await this.options.exchange.fetchDeploymentTargetIfSet()
      // the version names a folder under models/: "../.." from a broken or hostile Loop must not
      if (target && !isValidVersion(target.version)) throw new Error(`the Loop's deployment target has the version ${quoteInput(target.version)}, which is not a version number such as 1.3`)
      this.loopTarget = target && { id: target.model_uuid, version: target.version }
    } catch (error) {
      // the cycle goes on with the target it had
      this.options.log.warn('could not check the deployment target', { error: errorMessage(error) })
    }
  }

  private async update(target: ModelTarget): Promise<void> {
    const { store, active, factory, exchange, log, errors } = this.options
    const started = this.now()
    log.info('updating model', { from: active.version ?? null, to: target.version })
    try {
      if (!(await store.isInstalled(target.version))) {
        const folder = await store.prepareVersionFolder(target.version)
        await exchange.downloadModel(target.id, factory.modelFormat, folder)
      }
      if (this.options.exclusiveModelBuild) await active.clearForUpdate(target.version)
      const logic = await factory.build(store.versionFolder(target.version))
      await store.pointCurrentAt(target.version)
      // swap() switches at once and then waits for the old model to drain and be disposed; a failure to free
      // the old model must not count as a failed update (that would delete the folder now being served)
      await active.swap(logic).catch((error: unknown) => {
        this.disposeFailures.inc()
        log.error('the previous model could not be disposed', { version: target.version, error: errorMessage(error) })
      })
      this.swaps.inc()
      this.failures = 0
      this.nextAttemptAt = 0
      delete errors.update_model
      delete errors.load_model
      log.info('model updated', { version: target.version, backend: logic.backend, ms: Math.round(this.now() - started) })
    } catch (error) {
      this.failures++
      const delay = updateRetryDelayMs(this.failures)
      this.nextAttemptAt = this.now() + delay
      this.updateFailures.inc()
      errors.update_model = `Could not update model: ${errorMessage(error)}`
      active.markInitializing()
      await store.removeVersion(target.version).catch(() => undefined)
      log.error('model update failed; the target is kept and retried', { version: target.version, error: errorMessage(error), retryInMs: delay, failures: this.failures })
    }
    await this.syncStatus()
  }
}
