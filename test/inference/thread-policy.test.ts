import { describe, expect, test } from 'bun:test'
import {
  choosePoolPlan, concurrentLoads, countCpuList, firstWorkerThreads, MAX_AUTO_THREADS, MAX_AUTO_WORKERS, needsSingleThreadRun, parseCfsQuota, parseCpuMax, usableCores,
} from '../../src/inference/thread-policy.ts'

describe('usable cores', () => {
  test('the least of host cores, affinity and quota; a fractional quota is rounded up; never below 1', () => {
    expect(usableCores({ hostCores: 16 })).toBe(16)
    expect(usableCores({ hostCores: 16, affinityCores: 4 })).toBe(4)
    expect(usableCores({ hostCores: 16, affinityCores: 8, quotaCores: 1.5 })).toBe(2)
    expect(usableCores({ hostCores: 2, quotaCores: 6 })).toBe(2)
    expect(usableCores({ hostCores: 8, quotaCores: 0.2 })).toBe(1)
    expect(usableCores({ hostCores: 0 })).toBe(1)
  })

  test('CPU lists, cgroup v2 cpu.max and v1 CFS quota are read as Linux writes them', () => {
    expect(countCpuList('0-1')).toBe(2)
    expect(countCpuList('0-3,8,10-11\n')).toBe(7)
    expect(countCpuList('5')).toBe(1)
    expect(countCpuList('')).toBeUndefined()
    expect(countCpuList('3-1')).toBeUndefined()
    expect(countCpuList('zero')).toBeUndefined()
    expect(parseCpuMax('max 100000\n')).toBeUndefined()
    expect(parseCpuMax('150000 100000\n')).toBe(1.5)
    expect(parseCpuMax('400000 100000')).toBe(4)
    expect(parseCpuMax('garbage')).toBeUndefined()
    expect(parseCfsQuota('-1\n', '100000\n')).toBeUndefined()
    expect(parseCfsQuota('50000', '100000')).toBe(0.5)
    expect(parseCfsQuota('200000', '0')).toBeUndefined()
  })
})

const cpu = 'cpu' as const
const measured = (threads: number, runMs: number, singleThreadRunMs: number) => ({ threads, runMs, singleThreadRunMs })

describe('workers × threads', () => {
  test('threads that do not make a run faster give way to more single-threaded workers', () => {
    const plan = choosePoolPlan({ cores: 16, backend: cpu, overrides: {}, measurement: measured(4, 6.4, 6.6) })
    expect(plan).toMatchObject({ workers: MAX_AUTO_WORKERS, threadsPerWorker: 1, usableCores: 16 })
    expect(plan.reason).toContain('1.03×')
  })

  test('threads that make a run even 8 % faster are kept: a lone client then waits no longer than on one worker (the 16-core case of issue 12)', () => {
    expect(choosePoolPlan({ cores: 16, backend: cpu, overrides: {}, measurement: measured(4, 6.4, 6.9) })).toMatchObject({ workers: 4, threadsPerWorker: 4 })
  })

  test('threads that pay are kept, and the cores are shared among as many such workers as fit', () => {
    expect(choosePoolPlan({ cores: 16, backend: cpu, overrides: {}, measurement: measured(4, 30, 90) })).toMatchObject({ workers: 4, threadsPerWorker: 4 })
    expect(choosePoolPlan({ cores: 6, backend: cpu, overrides: {}, measurement: measured(2, 50, 90) })).toMatchObject({ workers: 3, threadsPerWorker: 2 })
    // 2 cores: one two-threaded worker when two threads nearly halve a run, else a worker per core
    expect(choosePoolPlan({ cores: 2, backend: cpu, overrides: {}, measurement: measured(2, 55, 100) })).toMatchObject({ workers: 1, threadsPerWorker: 2 })
    expect(choosePoolPlan({ cores: 2, backend: cpu, overrides: {}, measurement: measured(2, 1.7, 1.6) })).toMatchObject({ workers: 2, threadsPerWorker: 1 })
  })

  test('no automatic choice ever gives a worker more than MAX_AUTO_THREADS threads or uses more cores than there are', () => {
    for (let cores = 1; cores <= 256; cores++) {
      const first = firstWorkerThreads(cores, {})
      expect(first).toBeLessThanOrEqual(Math.min(cores, MAX_AUTO_THREADS))
      for (const speedup of [0.5, 1, 1.2, 3]) {
        const plan = choosePoolPlan({ cores, backend: cpu, overrides: {}, measurement: first > 1 ? measured(first, 10 / speedup, 10) : { threads: 1, runMs: 10 } })
        expect(plan.threadsPerWorker).toBeLessThanOrEqual(MAX_AUTO_THREADS)
        expect(plan.workers).toBeGreaterThanOrEqual(1)
        expect(plan.workers).toBeLessThanOrEqual(MAX_AUTO_WORKERS)
        expect(plan.workers * plan.threadsPerWorker).toBeLessThanOrEqual(cores)
      }
    }
  })

  test('one core: one single-threaded worker, nothing to compare', () => {
    expect(firstWorkerThreads(1, {})).toBe(1)
    expect(needsSingleThreadRun(cpu, 1, {})).toBe(false)
    expect(choosePoolPlan({ cores: 1, backend: cpu, overrides: {}, measurement: { threads: 1, runMs: 5 } })).toMatchObject({ workers: 1, threadsPerWorker: 1 })
  })

  test('a GPU backend gets one worker (batching, not more sessions, fills the device); the settings still decide when given', () => {
    for (const backend of ['cuda', 'webgpu', 'webgpu-native'] as const) {
      expect(needsSingleThreadRun(backend, 4, {})).toBe(false)
      expect(choosePoolPlan({ cores: 16, backend, overrides: {} })).toMatchObject({ workers: 1 })
    }
    expect(choosePoolPlan({ cores: 16, backend: 'cuda', overrides: { workers: 2 } })).toMatchObject({ workers: 2 })
  })

  test('INFERENCE_WORKERS and INFERENCE_THREADS override the choice and skip the comparison', () => {
    expect(needsSingleThreadRun(cpu, 4, { workers: 1 })).toBe(false)
    expect(needsSingleThreadRun(cpu, 4, { threads: 4 })).toBe(false)
    // one worker gets the cores, but never more than MAX_AUTO_THREADS of them
    expect(firstWorkerThreads(16, { workers: 1 })).toBe(MAX_AUTO_THREADS)
    expect(firstWorkerThreads(2, { workers: 1 })).toBe(2)
    expect(choosePoolPlan({ cores: 16, backend: cpu, overrides: { workers: 1 } })).toMatchObject({ workers: 1, threadsPerWorker: 4 })
    expect(choosePoolPlan({ cores: 16, backend: cpu, overrides: { workers: 3, threads: 2 } })).toMatchObject({ workers: 3, threadsPerWorker: 2 })
    expect(choosePoolPlan({ cores: 16, backend: cpu, overrides: { threads: 16 } })).toMatchObject({ workers: 1, threadsPerWorker: 16 })
    expect(choosePoolPlan({ cores: 12, backend: cpu, overrides: { threads: 3 } })).toMatchObject({ workers: 4, threadsPerWorker: 3 })
    expect(choosePoolPlan({ cores: 2, backend: cpu, overrides: { workers: 12 } })).toMatchObject({ workers: 12, threadsPerWorker: 1 })
  })

  test('a new pool loads its workers one at a time on small machines (a hot swap shares their cores), a few at once on big ones', () => {
    expect([1, 2, 4, 7, 8, 16, 64].map(concurrentLoads)).toEqual([1, 1, 1, 1, 2, 4, 16])
  })

  test('without a measurement (the model could not be timed) the cores decide alone', () => {
    expect(choosePoolPlan({ cores: 4, backend: cpu, overrides: {} })).toMatchObject({ workers: 4, threadsPerWorker: 1 })
  })
})
