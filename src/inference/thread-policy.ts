/**
 * How many inference workers a model version gets, and how many intra-op threads each: from the cores this
 * process may really use (host cores, CPU affinity, cgroup quota) and a short measurement of the model. Pure; the
 * limits are read in cpu-limits.ts and the measurement is taken in inference-engine.ts.
 *
 * Why not one session with every core: a session's intra-op threads synchronise after every operator, so on a small
 * model more threads stop paying early and then cost (measured with the built-in model: one session with 16 threads
 * served 127 req/s, with 4 threads 155). Independent workers do not synchronise: throughput grows with their number.
 */
import { GPU_BACKENDS } from './backend-choice.ts'
import type { BackendName } from '../config/inference-settings.ts'

/** Beyond this the memory per worker (a session and a JS heap each) buys little; INFERENCE_WORKERS may go higher. */
export const MAX_AUTO_WORKERS = 8
/** More intra-op threads than this were measured slower on a small model, so they are never chosen by default. */
export const MAX_AUTO_THREADS = 4
/**
 * Threads per worker are kept when they make one run at least this much faster than a single thread. Below it,
 * single-threaded workers cost a lone client at most this much latency against one worker with those threads (the
 * target of issue 12: 1-client p50 within 5 %) and serve more clients; at or above it the pool keeps the threads, so
 * a lone client is served as fast as by one worker, and concurrent clients by several such workers.
 */
export const MIN_THREAD_SPEEDUP = 1.05

export interface CpuLimits {
  /** logical cores of the machine */
  hostCores: number
  /** cores in the process's CPU affinity mask (taskset, cpuset), when known */
  affinityCores?: number
  /** cgroup CPU quota in cores (quota / period; may be fractional), when one is set */
  quotaCores?: number
}

/** The cores this process can keep busy: the least of the three, a fractional quota rounded up, at least 1. */
export function usableCores(limits: CpuLimits): number {
  const candidates = [limits.hostCores, limits.affinityCores, limits.quotaCores === undefined ? undefined : Math.ceil(limits.quotaCores)]
  const known = candidates.filter((n): n is number => n !== undefined && Number.isFinite(n) && n > 0)
  return known.length > 0 ? Math.max(1, Math.min(...known)) : 1
}

/** A Linux CPU list (`0-3,8,10-11`, as in Cpus_allowed_list) → how many CPUs it names; undefined when unreadable. */
export function countCpuList(text: string): number | undefined {
  let count = 0
  for (const part of text.trim().split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!match) return undefined
    const first = Number(match[1])
    const last = match[2] === undefined ? first : Number(match[2])
    if (last < first) return undefined
    count += last - first + 1
  }
  return count > 0 ? count : undefined
}

/** cgroup v2 `cpu.max` (`max 100000` or `200000 100000`) → cores; undefined for no limit or unreadable text. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/)
  if (quota === undefined || quota === 'max') return undefined
  return quotaInCores(Number(quota), Number(period ?? 100_000))
}

/** cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` → cores; undefined for no limit (-1). */
export function parseCfsQuota(quotaText: string, periodText: string): number | undefined {
  return quotaInCores(Number(quotaText.trim()), Number(periodText.trim()))
}

function quotaInCores(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined
  return quota / period
}

/** INFERENCE_WORKERS and INFERENCE_THREADS, when set. */
export interface PoolOverrides {
  workers?: number
  threads?: number
}

/** What the load measured: the fastest of a few session runs with `threads` and, when compared, with one thread. */
export interface ThreadMeasurement {
  threads: number
  runMs: number
  singleThreadRunMs?: number
}

export interface PoolPlan {
  workers: number
  threadsPerWorker: number
  usableCores: number
  /** why, in words, for the log, /about and the status page */
  reason: string
  measurement?: ThreadMeasurement
}

const clamp = (value: number, low: number, high: number) => Math.max(low, Math.min(high, value))

/** The threads worth trying per worker on this many cores: up to 2 on small machines, 4 from 8 cores. */
export function candidateThreads(cores: number): number {
  return cores <= 2 ? cores : cores < 8 ? 2 : MAX_AUTO_THREADS
}

/** Threads of the first worker, the one the backend is chosen and the model measured on. */
export function firstWorkerThreads(cores: number, overrides: PoolOverrides): number {
  if (overrides.threads !== undefined) return overrides.threads
  if (overrides.workers !== undefined) return clamp(Math.floor(cores / overrides.workers), 1, MAX_AUTO_THREADS)
  return candidateThreads(cores)
}

/** Whether the load should also time the model on one thread (only a choice left open by the settings needs it). */
export function needsSingleThreadRun(backend: BackendName, firstThreads: number, overrides: PoolOverrides): boolean {
  return !GPU_BACKENDS.includes(backend) && overrides.workers === undefined && overrides.threads === undefined && firstThreads > 1
}

/**
 * Workers of a new pool loaded at once. A load keeps about one core busy; during a hot swap the old model still serves
 * on these cores, so a small machine loads one at a time, a big one a quarter of its cores' worth at once (start-up
 * on 16 cores would otherwise wait for 8 loads in a row).
 */
export function concurrentLoads(cores: number): number {
  return Math.max(1, Math.floor(cores / 4))
}

export interface PlanInput {
  cores: number
  backend: BackendName
  overrides: PoolOverrides
  measurement?: ThreadMeasurement
}

export function choosePoolPlan({ cores, backend, overrides, measurement }: PlanInput): PoolPlan {
  const plan = (workers: number, threadsPerWorker: number, reason: string): PoolPlan => ({
    workers, threadsPerWorker, usableCores: cores, reason, ...(measurement ? { measurement } : {}),
  })
  const firstThreads = firstWorkerThreads(cores, overrides)
  if (overrides.workers !== undefined) {
    return plan(overrides.workers, firstThreads, overrides.threads !== undefined ? 'INFERENCE_WORKERS and INFERENCE_THREADS' : `INFERENCE_WORKERS; the ${cores} usable cores shared among them, at most ${MAX_AUTO_THREADS} threads each`)
  }
  if (GPU_BACKENDS.includes(backend)) {
    return plan(1, firstThreads, `${backend} runs on the GPU: one worker feeds it (a model with a dynamic batch axis gets its requests batched there)`)
  }
  if (overrides.threads !== undefined) {
    return plan(clamp(Math.floor(cores / overrides.threads), 1, MAX_AUTO_WORKERS), overrides.threads, `INFERENCE_THREADS; as many workers as fit the ${cores} usable cores, at most ${MAX_AUTO_WORKERS}`)
  }
  const single = measurement?.singleThreadRunMs
  if (!measurement || single === undefined || measurement.threads <= 1) {
    return plan(clamp(cores, 1, MAX_AUTO_WORKERS), 1, `${cores} usable core(s): one single-threaded worker per core, at most ${MAX_AUTO_WORKERS}`)
  }
  const speedup = single / measurement.runMs
  const described = `${measurement.threads} threads ran the model ${speedup.toFixed(2)}× as fast as one (${measurement.runMs.toFixed(1)} vs ${single.toFixed(1)} ms)`
  if (speedup >= MIN_THREAD_SPEEDUP) {
    return plan(clamp(Math.floor(cores / measurement.threads), 1, MAX_AUTO_WORKERS), measurement.threads, `${described}: ${measurement.threads} threads per worker on ${cores} usable cores`)
  }
  return plan(clamp(cores, 1, MAX_AUTO_WORKERS), 1, `${described}, under ${MIN_THREAD_SPEEDUP}×: single-threaded workers, one per usable core`)
}
