import { ConfigError, readSettings, type RawSettings } from './read-settings.ts'
import { resolveLoopUrls, type LoopUrls } from './loop-url.ts'
import { BACKEND_CHOICES, DEFAULT_MAX_BATCH, DEFAULT_MAX_IMAGE_PIXELS } from './inference-settings.ts'

export interface LoopConnectionConfig {
  /** undefined: no LOOP_HOST; the CLI starts an embedded local loop */
  urls: LoopUrls | undefined
  username: string
  password: string
  organization: string
  project: string
  sslCertPath: string | undefined
  requestTimeoutMs: number
  /** port of the embedded local loop when `urls` is undefined; 0 = any free port */
  localLoopPort: number
}

export interface NodeConfig {
  loop: LoopConnectionConfig
  /** as configured; resolved (with the /data fallback) by resolveDataFolder at start */
  dataFolder: string | undefined
  port: number | undefined
  hostname: string
  logLevel: string
  skipRepeatOnStart: boolean
  useBackdoorControls: boolean
  detector: {
    versionControlDefault: 'follow_loop' | 'pause'
    syncCycles: number
    exclusiveModelBuild: boolean
    minUncertainThreshold: number
    maxUncertainThreshold: number
    modelFormat: string
    /** OUTBOX_MAX_ITEMS / OUTBOX_MAX_BYTES; those unset keep the outbox's defaults */
    outboxLimits: { maxItems?: number; maxBytes?: number }
    /** CAMERAS_FILE / --cameras */
    camerasFile?: string
  }
  trainer: {
    idleTimeoutSec: number
    restartAfterTraining: boolean
    keepOldTrainings: boolean
    inferenceBatchSize: number
  }
  inference: {
    backend: string
    /** INFERENCE_THREADS and INFERENCE_WORKERS; unset: chosen at model load (inference/thread-policy.ts) */
    threads: number | undefined
    workers: number | undefined
    ortLibDir: string | undefined
    spinWait: boolean
    /** INFERENCE_BATCH_WINDOW_MS / INFERENCE_MAX_BATCH: dynamic batching of models with a dynamic batch dimension */
    /** undefined: the inference engine's default (on for GPU backends only) */
    batchWindowMs: number | undefined
    maxBatch: number
    /** MAX_IMAGE_PIXELS: most pixels per image, checked from the header before decoding */
    maxImagePixels: number
  }
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback
  if (!(v > 0)) throw new ConfigError(`${name} must be greater than 0, got ${v}`)
  return v
}

function notNegative(name: string, value: number): number {
  if (!(value >= 0)) throw new ConfigError(`${name} must be 0 or more, got ${value}`)
  return value
}

function atLeastOne(name: string, value: number | undefined): number | undefined {
  if (value !== undefined && !(value >= 1)) throw new ConfigError(`${name} must be at least 1, got ${value}`)
  return value
}

/** Typed config with defaults from raw settings. Pure. */
export function buildNodeConfig(raw: RawSettings): NodeConfig {
  const min = raw.minUncertainThreshold ?? 0.3
  const max = raw.maxUncertainThreshold ?? 0.6
  if (min > max) throw new ConfigError(`MIN_UNCERTAIN_THRESHOLD (${min}) is greater than MAX_UNCERTAIN_THRESHOLD (${max})`)
  if (raw.port !== undefined && (raw.port < 0 || raw.port > 65535)) throw new ConfigError(`port ${raw.port} is outside 0–65535`)
  const backend = raw.inferenceBackend ?? 'auto'
  if (!(BACKEND_CHOICES as readonly string[]).includes(backend)) {
    throw new ConfigError(`INFERENCE_BACKEND=${JSON.stringify(backend)} is not one of ${BACKEND_CHOICES.join(', ')}`)
  }
  const outboxMaxItems = atLeastOne('OUTBOX_MAX_ITEMS', raw.outboxMaxItems)
  const outboxMaxBytes = atLeastOne('OUTBOX_MAX_BYTES', raw.outboxMaxBytes)
  return {
    loop: {
      urls: raw.loopHost ? resolveLoopUrls(raw.loopHost) : undefined,
      username: raw.username ?? '',
      password: raw.password ?? '',
      organization: (raw.organization ?? '').toLowerCase(),
      project: (raw.project ?? '').toLowerCase(),
      sslCertPath: raw.sslCertPath,
      requestTimeoutMs: positive('LOOP_REQUEST_TIMEOUT_MS', raw.requestTimeoutMs, 60_000),
      localLoopPort: raw.localLoopPort ?? 0,
    },
    dataFolder: raw.dataFolder,
    port: raw.port,
    hostname: raw.hostname ?? '0.0.0.0',
    logLevel: raw.logLevel ?? 'info',
    skipRepeatOnStart: raw.skipRepeatOnStart ?? false,
    useBackdoorControls: raw.useBackdoorControls ?? false,
    detector: {
      versionControlDefault: raw.versionControlDefault?.toLowerCase() === 'pause' ? 'pause' : 'follow_loop',
      syncCycles: Math.round(positive('SYNC_CYCLES', raw.syncCycles, 6)),
      exclusiveModelBuild: raw.exclusiveModelBuild ?? false,
      minUncertainThreshold: min,
      maxUncertainThreshold: max,
      modelFormat: raw.modelFormat ?? 'onnx',
      outboxLimits: {
        ...(outboxMaxItems === undefined ? {} : { maxItems: outboxMaxItems }),
        ...(outboxMaxBytes === undefined ? {} : { maxBytes: outboxMaxBytes }),
      },
      ...(raw.camerasFile === undefined ? {} : { camerasFile: raw.camerasFile }),
    },
    trainer: {
      idleTimeoutSec: raw.trainerIdleTimeoutSec ?? 0,
      restartAfterTraining: raw.restartAfterTraining ?? false,
      keepOldTrainings: raw.keepOldTrainings ?? false,
      inferenceBatchSize: Math.round(positive('INFERENCE_BATCH_SIZE', raw.inferenceBatchSize, 10)),
    },
    inference: {
      backend,
      threads: atLeastOne('INFERENCE_THREADS', raw.inferenceThreads),
      workers: atLeastOne('INFERENCE_WORKERS', raw.inferenceWorkers),
      ortLibDir: raw.ortLibDir,
      spinWait: raw.inferenceSpinWait ?? false,
      batchWindowMs: raw.inferenceBatchWindowMs === undefined ? undefined : notNegative('INFERENCE_BATCH_WINDOW_MS', raw.inferenceBatchWindowMs),
      maxBatch: atLeastOne('INFERENCE_MAX_BATCH', raw.inferenceMaxBatch) ?? DEFAULT_MAX_BATCH,
      maxImagePixels: positive('MAX_IMAGE_PIXELS', raw.maxImagePixels, DEFAULT_MAX_IMAGE_PIXELS),
    },
  }
}

/** Env + flags → typed config. Throws ConfigError with a message naming the setting. */
export function loadNodeConfig(env: Record<string, string | undefined>, flags: Record<string, string> = {}): NodeConfig {
  return buildNodeConfig(readSettings(env, flags))
}
