/**
 * The inference worker: owns one ModelRunner (one session), so the main thread never blocks on decoding,
 * preprocessing or `session.run`. Requests are served one at a time, unless the model has a dynamic batch
 * dimension and batching is on: then each image is prepared as it arrives (while a run is in flight) and waits
 * in a BatchQueue for the run it shares with the images of other requests.
 */
import { DEFAULT_MAX_BATCH } from '../config/inference-settings.ts'
import { GPU_BACKENDS } from './backend-choice.ts'
import { batchingEnabled, defaultBatchWindowMs } from './batch-policy.ts'
import { BatchQueue } from './batch-queue.ts'
import type { ImageInput } from './image-decoding.ts'
import { engineDisposed, ImageInputError, InferenceUnavailableError, serializeError } from './inference-errors.ts'
import { ModelRunner, type PreparedImage } from './model-runner.ts'
import type { DetectionOutput, WorkerRequest, WorkerResponse } from './worker-protocol.ts'
import { currentThreadId } from '../runtime/worker-thread.ts'

declare const self: Worker

let runner: ModelRunner | undefined
let batches: BatchQueue<PreparedImage, DetectionOutput> | undefined
let queue: Promise<void> = Promise.resolve()
/** set as the dispose request arrives: detections not yet started fail instead of running (only the current run finishes) */
let disposing = false

const reply = (message: WorkerResponse) => self.postMessage(message)
const thread = currentThreadId()

/**
 * The detections, with the decoded pixels asked for moved, not copied, to the caller. The native decoder's
 * buffers cannot be moved: then those pixels are copied once here (a clone would copy them twice).
 */
function replyDetected(id: number, outputs: DetectionOutput[]): void {
  const decoded = outputs.flatMap((output) => (output.decoded ? [output.decoded] : []))
  const message: WorkerResponse = { type: 'detected', id, outputs }
  const buffers = () => decoded.map((image) => image.data.buffer as ArrayBuffer)
  try {
    self.postMessage(message, buffers())
  } catch (error) {
    if ((error as Error).name !== 'DataCloneError') throw error
    for (const image of decoded) image.data = image.data.slice()
    self.postMessage(message, buffers())
  }
}

async function handle(request: WorkerRequest): Promise<void> {
  switch (request.type) {
    case 'load':
      try {
        const loaded = runner = await ModelRunner.load(request.options)
        const settings = {
          windowMs: request.options.batchWindowMs ?? defaultBatchWindowMs(GPU_BACKENDS.includes(loaded.backend)), maxBatch: request.options.maxBatch ?? DEFAULT_MAX_BATCH,
        }
        batches = batchingEnabled(loaded.spec.dynamicBatch, settings) ? new BatchQueue(settings, (items) => loaded.detectPrepared(items)) : undefined
        reply({
          type: 'loaded', backend: loaded.backend, rejected: loaded.rejected, model: loaded.information,
          inputSize: { width: loaded.spec.preprocessing.width, height: loaded.spec.preprocessing.height }, dynamicBatch: batches !== undefined,
          ...(thread !== undefined ? { thread } : {}),
        })
      } catch (error) {
        reply({ type: 'load-failed', error: serializeError(error), ...(thread !== undefined ? { thread } : {}) })
      }
      return
    case 'detect': {
      if (disposing || !runner) {
        reply({ type: 'detect-failed', id: request.id, error: serializeError(disposing ? engineDisposed() : new InferenceUnavailableError('no model is loaded')) })
        return
      }
      const outputs: DetectionOutput[] = []
      try {
        for (const [index, image] of request.images.entries()) {
          // a dispose that arrives during a request of several images stops it after the image in progress
          if (disposing) throw engineDisposed()
          outputs.push(await runner.detect(image, { keepDecoded: request.keepDecoded }).catch(naming(index)))
        }
        replyDetected(request.id, outputs)
      } catch (error) {
        reply({ type: 'detect-failed', id: request.id, error: serializeError(error) })
      }
      return
    }
    case 'dispose': {
      // detections arriving from now on queue behind this and find no model
      const draining = batches
      batches = undefined
      await draining?.drain()
      await runner?.release().catch(() => undefined)
      runner = undefined
      reply({ type: 'disposed' })
    }
  }
}

/** An image's error carries the image's place in the request (the pool names it in the message). */
const naming = (index: number) => (error: unknown): never => {
  if (error instanceof ImageInputError) throw new ImageInputError(error.message, index)
  throw error
}

/** Every image of the request goes into the batch queue at once; the request fails with its first bad image. */
async function detectInBatches(batchQueue: BatchQueue<PreparedImage, DetectionOutput>, loaded: ModelRunner, id: number, images: ImageInput[], keepDecoded?: boolean): Promise<void> {
  try {
    const outputs = await Promise.all(images.map((image, index) =>
      batchQueue.run(() => loaded.prepare(image, { keepDecoded })).catch(naming(index))))
    replyDetected(id, outputs)
  } catch (error) {
    reply({ type: 'detect-failed', id, error: serializeError(error) })
  }
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data
  if (request.type === 'dispose') {
    disposing = true
    batches?.close(engineDisposed())
  }
  // loading and disposing stay in order with the requests before them; batched detections start at once
  if (request.type === 'detect' && batches && runner) void detectInBatches(batches, runner, request.id, request.images, request.keepDecoded)
  else queue = queue.then(() => handle(request))
}
