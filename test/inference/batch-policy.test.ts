import { describe, expect, test } from 'bun:test'
import { batchingEnabled, decideBatch, nextArrivalGap, splitBatchOutputs, stackBatch } from '../../src/inference/batch-policy.ts'

const settings = { windowMs: 2, maxBatch: 4 }

describe('when a batch runs', () => {
  test('nothing queued or a run in flight: wait for an event', () => {
    expect(decideBatch({ queued: 0, running: false, oldestWaitedMs: 0, arrivalGapMs: 0 }, settings)).toEqual({ action: 'idle' })
    expect(decideBatch({ queued: 9, running: true, oldestWaitedMs: 50, arrivalGapMs: 0 }, settings)).toEqual({ action: 'idle' })
  })

  test('a full batch runs at once; a partial one when the oldest image has waited its window', () => {
    expect(decideBatch({ queued: 4, running: false, oldestWaitedMs: 0, arrivalGapMs: 0 }, settings)).toEqual({ action: 'run', size: 4 })
    expect(decideBatch({ queued: 9, running: false, oldestWaitedMs: 0, arrivalGapMs: 0 }, settings)).toEqual({ action: 'run', size: 4 })
    expect(decideBatch({ queued: 3, running: false, oldestWaitedMs: 2, arrivalGapMs: 0 }, settings)).toEqual({ action: 'run', size: 3 })
    expect(decideBatch({ queued: 1, running: false, oldestWaitedMs: 0.5, arrivalGapMs: 0 }, settings)).toEqual({ action: 'wait', ms: 1.5 })
  })

  test('images arriving further apart than the window (one client) run at once; close together they wait', () => {
    expect(decideBatch({ queued: 1, running: false, oldestWaitedMs: 0, arrivalGapMs: 5 }, settings)).toEqual({ action: 'run', size: 1 })
    expect(decideBatch({ queued: 1, running: false, oldestWaitedMs: 0, arrivalGapMs: 0.3 }, settings)).toEqual({ action: 'wait', ms: 2 })
    // a client sending every 4 ms: from waiting to running at once within a few images
    let gap = 0
    const decisions = Array.from({ length: 6 }, () => {
      gap = nextArrivalGap(gap, 4)
      return decideBatch({ queued: 1, running: false, oldestWaitedMs: 0, arrivalGapMs: gap }, settings).action
    })
    expect(decisions.slice(0, 2)).toEqual(['wait', 'wait'])
    expect(decisions.slice(3)).toEqual(['run', 'run', 'run'])
  })

  test('batching needs a dynamic batch dimension, a window and room for two', () => {
    expect(batchingEnabled(true, settings)).toBe(true)
    expect(batchingEnabled(false, settings)).toBe(false)
    expect(batchingEnabled(true, { windowMs: 0, maxBatch: 4 })).toBe(false)
    expect(batchingEnabled(true, { windowMs: 2, maxBatch: 1 })).toBe(false)
  })
})

describe('stacking and splitting', () => {
  test('tensors stack along the batch dimension; one tensor goes as it is', () => {
    const a = Float32Array.of(1, 2), b = Float32Array.of(3, 4)
    expect(stackBatch([a], [1, 2])).toEqual({ data: a, dims: [1, 2] })
    const stacked = stackBatch([a, b], [1, 2])
    expect([...stacked.data]).toEqual([1, 2, 3, 4])
    expect(stacked.dims).toEqual([2, 2])
  })

  test('outputs split back per image as batch-1 outputs', () => {
    const parts = splitBatchOutputs({ boxes: { data: Float32Array.of(1, 2, 3, 4, 5, 6), dims: [3, 2] }, scores: { data: Float32Array.of(7, 8, 9), dims: [3, 1, 1] } }, 3)
    expect(parts.map((p) => [...p.boxes!.data])).toEqual([[1, 2], [3, 4], [5, 6]])
    expect(parts.map((p) => [...p.scores!.data])).toEqual([[7], [8], [9]])
    expect(parts[0]!.boxes!.dims).toEqual([1, 2])
    expect(parts[2]!.scores!.dims).toEqual([1, 1, 1])
  })

  test('an output that does not lead with the batch is refused', () => {
    expect(() => splitBatchOutputs({ pooled: { data: Float32Array.of(1, 2), dims: [1, 2] } }, 2)).toThrow('does not lead with the batch dimension')
  })
})
