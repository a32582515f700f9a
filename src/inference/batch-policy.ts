/**
 * Dynamic batching, the decisions and the tensor arithmetic: when a queue of prepared images runs, how images are
 * stacked into one input and how the outputs are split back per image. Pure.
 */
import { DEFAULT_BATCH_WINDOW_MS } from '../config/inference-settings.ts'
import type { RawOutput } from './output-decoding.ts'

export interface BatchingSettings {
  /** how long the oldest waiting image may wait for others (ms); 0 turns batching off */
  windowMs: number
  /** the most images in one run; 1 turns batching off */
  maxBatch: number
}

export const batchingEnabled = (dynamicBatch: boolean, settings: BatchingSettings) =>
  dynamicBatch && settings.windowMs > 0 && settings.maxBatch > 1

/** The window when none is configured: DEFAULT_BATCH_WINDOW_MS on a GPU backend, off on the CPU (see there why). */
export const defaultBatchWindowMs = (onGpu: boolean) => (onGpu ? DEFAULT_BATCH_WINDOW_MS : 0)

export type BatchDecision = { action: 'run'; size: number } | { action: 'wait'; ms: number } | { action: 'idle' }

export interface QueueState {
  queued: number
  running: boolean
  oldestWaitedMs: number
  /** the usual time between two images arriving (a moving average) */
  arrivalGapMs: number
}

/**
 * What the queue does now. One run at a time (a second run on the same session only contends for its threads);
 * while a run is in flight images gather, and when it ends they have usually waited their window already. When
 * images arrive further apart than the window, waiting would only add latency (one camera, one client): run at once.
 */
export function decideBatch(state: QueueState, settings: BatchingSettings): BatchDecision {
  if (state.queued === 0 || state.running) return { action: 'idle' }
  if (state.queued >= settings.maxBatch) return { action: 'run', size: settings.maxBatch }
  if (state.oldestWaitedMs >= settings.windowMs || state.arrivalGapMs >= settings.windowMs) return { action: 'run', size: state.queued }
  return { action: 'wait', ms: settings.windowMs - state.oldestWaitedMs }
}

/** The moving average of the gaps between arrivals after one more gap (weight 1/4: a few images change it). */
export const nextArrivalGap = (average: number, gapMs: number) => average + (gapMs - average) / 4

/** The input of one run over `tensors` (each one image at batch 1): stacked along the batch dimension. */
export function stackBatch(tensors: Float32Array[], inputDims: readonly number[]): { data: Float32Array; dims: number[] } {
  if (tensors.length === 1) return { data: tensors[0]!, dims: [...inputDims] }
  const size = tensors[0]!.length
  const data = new Float32Array(size * tensors.length)
  tensors.forEach((tensor, i) => data.set(tensor, i * size))
  return { data, dims: [tensors.length, ...inputDims.slice(1)] }
}

/**
 * The outputs of a run over `count` images, one set per image, each shaped as a batch-1 run's (`[1, …]`). Views,
 * not copies. Throws when an output does not lead with the batch: such a model cannot be batched after all.
 */
export function splitBatchOutputs(outputs: Record<string, RawOutput>, count: number): Record<string, RawOutput>[] {
  if (count === 1) return [outputs]
  const perImage: Record<string, RawOutput>[] = Array.from({ length: count }, () => ({}))
  for (const [name, output] of Object.entries(outputs)) {
    if (output.dims[0] !== count || output.data.length % count !== 0) {
      throw new Error(`output ${name} [${output.dims.join(', ')}] of a batch of ${count} does not lead with the batch dimension`)
    }
    const size = output.data.length / count
    const dims = [1, ...output.dims.slice(1)]
    for (let i = 0; i < count; i++) perImage[i]![name] = { data: output.data.subarray(i * size, (i + 1) * size), dims }
  }
  return perImage
}
