import { describe, expect, test } from 'bun:test'
import { ConfigError, readEnvSetting, readSettings } from '../../src/config/read-settings.ts'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import { resolveLoopUrls } from '../../src/config/loop-url.ts'
import { SETTINGS } from '../../src/config/settings.ts'

describe('alias lookup (§3.1)', () => {
  test('reads a name or its alias; empty values count as unset', () => {
    expect(readEnvSetting(SETTINGS.loopHost, { HOST: 'loop.local' })).toBe('loop.local')
    expect(readEnvSetting(SETTINGS.loopHost, { LOOP_HOST: '', HOST: 'loop.local' })).toBe('loop.local')
    expect(readEnvSetting(SETTINGS.loopHost, {})).toBeUndefined()
  })
  test('equal values under both names are fine', () => {
    expect(readEnvSetting(SETTINGS.username, { LOOP_USERNAME: 'admin', USERNAME: 'admin' })).toBe('admin')
  })
  test('a conflict between a name and its alias is an error naming both (upstream silently unsets it)', () => {
    expect(() => readEnvSetting(SETTINGS.username, { LOOP_USERNAME: 'admin', USERNAME: 'root' }))
      .toThrow('LOOP_USERNAME="admin" conflicts with USERNAME="root"')
  })
})

describe('typed settings', () => {
  test('flags win over the environment and are converted by type', () => {
    const raw = readSettings({ SYNC_CYCLES: '3', KEEP_OLD_TRAININGS: 'TRUE' }, { 'sync-cycles': '9', port: '8004' })
    expect(raw.syncCycles).toBe(9)
    expect(raw.port).toBe(8004)
    expect(raw.keepOldTrainings).toBe(true)
  })
  test('bad numbers and booleans name the setting', () => {
    expect(() => readSettings({ SYNC_CYCLES: 'often' })).toThrow('SYNC_CYCLES="often" is not an integer')
    expect(() => readSettings({}, { port: '80.5' })).toThrow('--port="80.5" is not an integer')
    expect(() => readSettings({ RESTART_AFTER_TRAINING: 'perhaps' })).toThrow(ConfigError)
  })
  test('defaults match upstream', () => {
    const config = loadNodeConfig({})
    expect(config.loop.urls).toBeUndefined()
    expect(config.detector).toEqual({ versionControlDefault: 'follow_loop', syncCycles: 6, exclusiveModelBuild: false, minUncertainThreshold: 0.3, maxUncertainThreshold: 0.6, modelFormat: 'onnx', outboxLimits: {} })
    expect(config.trainer).toEqual({ idleTimeoutSec: 0, restartAfterTraining: false, keepOldTrainings: false, inferenceBatchSize: 10 })
    expect(config.loop.requestTimeoutMs).toBe(60_000)
  })
  test('VERSION_CONTROL_DEFAULT: pause (any case) pauses, anything else follows the loop', () => {
    expect(loadNodeConfig({ VERSION_CONTROL_DEFAULT: 'PAUSE' }).detector.versionControlDefault).toBe('pause')
    expect(loadNodeConfig({ VERSION_CONTROL_DEFAULT: 'whatever' }).detector.versionControlDefault).toBe('follow_loop')
  })
  test('organization and project are lower-cased', () => {
    const config = loadNodeConfig({ ORGANIZATION: 'Zauberzeug', LOOP_PROJECT: 'Demo' })
    expect(config.loop.organization).toBe('zauberzeug')
    expect(config.loop.project).toBe('demo')
  })
  test('MAX_IMAGE_PIXELS: 50 MP by default, set by env or flag, and it must be positive', () => {
    expect(loadNodeConfig({}).inference.maxImagePixels).toBe(50_000_000)
    expect(loadNodeConfig({ MAX_IMAGE_PIXELS: '20e6' }).inference.maxImagePixels).toBe(20_000_000)
    expect(loadNodeConfig({ MAX_IMAGE_PIXELS: '1000' }, { 'max-image-pixels': '2000' }).inference.maxImagePixels).toBe(2000)
    expect(() => loadNodeConfig({ MAX_IMAGE_PIXELS: '0' })).toThrow('MAX_IMAGE_PIXELS must be greater than 0')
    expect(() => loadNodeConfig({ MAX_IMAGE_PIXELS: 'lots' })).toThrow('MAX_IMAGE_PIXELS="lots" is not an integer')
  })
  test('INFERENCE_BATCH_WINDOW_MS unset leaves the choice to the engine (GPU backends only); 0 or more; INFERENCE_MAX_BATCH at least 1', () => {
    expect(loadNodeConfig({}).inference).toMatchObject({ batchWindowMs: undefined, maxBatch: 8 })
    expect(loadNodeConfig({ INFERENCE_BATCH_WINDOW_MS: '0.5', INFERENCE_MAX_BATCH: '16' }).inference).toMatchObject({ batchWindowMs: 0.5, maxBatch: 16 })
    expect(loadNodeConfig({ INFERENCE_BATCH_WINDOW_MS: '0' }, { 'max-batch': '1' }).inference).toMatchObject({ batchWindowMs: 0, maxBatch: 1 })
    expect(() => loadNodeConfig({ INFERENCE_BATCH_WINDOW_MS: '-1' })).toThrow('INFERENCE_BATCH_WINDOW_MS must be 0 or more')
    expect(() => loadNodeConfig({ INFERENCE_MAX_BATCH: '0' })).toThrow('INFERENCE_MAX_BATCH must be at least 1')
  })

  test('OUTBOX_MAX_ITEMS / OUTBOX_MAX_BYTES: unset leaves the outbox defaults; set by env or flag; at least 1', () => {
    expect(loadNodeConfig({}).detector.outboxLimits).toEqual({})
    expect(loadNodeConfig({ OUTBOX_MAX_ITEMS: '500', OUTBOX_MAX_BYTES: '1e8' }).detector.outboxLimits).toEqual({ maxItems: 500, maxBytes: 100_000_000 })
    expect(loadNodeConfig({ OUTBOX_MAX_ITEMS: '500' }, { 'outbox-max-items': '20' }).detector.outboxLimits).toEqual({ maxItems: 20 })
    expect(() => loadNodeConfig({ OUTBOX_MAX_ITEMS: '0' })).toThrow('OUTBOX_MAX_ITEMS must be at least 1')
    expect(() => loadNodeConfig({ OUTBOX_MAX_BYTES: '-5' })).toThrow('OUTBOX_MAX_BYTES must be at least 1')
    expect(() => loadNodeConfig({ OUTBOX_MAX_ITEMS: 'many' })).toThrow('OUTBOX_MAX_ITEMS="many" is not an integer')
  })
  test('INFERENCE_WORKERS / INFERENCE_THREADS: unset leaves the choice to the thread policy; set by env or flag; at least 1', () => {
    expect(loadNodeConfig({}).inference).toMatchObject({ workers: undefined, threads: undefined })
    expect(loadNodeConfig({ INFERENCE_WORKERS: '3', INFERENCE_THREADS: '2' }).inference).toMatchObject({ workers: 3, threads: 2 })
    expect(loadNodeConfig({ INFERENCE_WORKERS: '3' }, { workers: '1' }).inference.workers).toBe(1)
    expect(() => loadNodeConfig({ INFERENCE_WORKERS: '0' })).toThrow('INFERENCE_WORKERS must be at least 1')
    expect(() => loadNodeConfig({ INFERENCE_THREADS: '0' })).toThrow('INFERENCE_THREADS must be at least 1')
    expect(() => loadNodeConfig({ INFERENCE_WORKERS: 'all' })).toThrow('INFERENCE_WORKERS="all" is not an integer')
  })
  test('inconsistent thresholds and unknown backends are rejected', () => {
    expect(() => loadNodeConfig({ MIN_UNCERTAIN_THRESHOLD: '0.7' })).toThrow('greater than MAX_UNCERTAIN_THRESHOLD')
    expect(() => loadNodeConfig({ INFERENCE_BACKEND: 'tpu' })).toThrow('INFERENCE_BACKEND="tpu"')
  })
})

describe('LOOP_HOST', () => {
  test('bare hosts keep the upstream scheme rule', () => {
    expect(resolveLoopUrls('learning-loop.ai')).toEqual({ base: 'https://learning-loop.ai', websocket: 'wss://learning-loop.ai' })
    expect(resolveLoopUrls('preview.learning-loop.ai')).toEqual({ base: 'https://preview.learning-loop.ai', websocket: 'wss://preview.learning-loop.ai' })
    expect(resolveLoopUrls('loop.local:8080')).toEqual({ base: 'http://loop.local:8080', websocket: 'ws://loop.local:8080' })
  })
  test('a host with a scheme is used as given (fixes §15.1: custom TLS hosts)', () => {
    expect(resolveLoopUrls('https://loop.factory.internal:8443')).toEqual({ base: 'https://loop.factory.internal:8443', websocket: 'wss://loop.factory.internal:8443' })
    expect(resolveLoopUrls('http://learning-loop.ai.mirror/')).toEqual({ base: 'http://learning-loop.ai.mirror', websocket: 'ws://learning-loop.ai.mirror' })
  })
  test('nonsense is a clear error', () => {
    expect(() => resolveLoopUrls('ftp://x')).toThrow('scheme must be http(s) or ws(s)')
    expect(() => resolveLoopUrls('  ')).toThrow('LOOP_HOST is empty')
  })
})
