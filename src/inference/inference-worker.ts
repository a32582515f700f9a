/**
 * The inference worker: owns one ModelRunner (one session) and serves requests one at a time, so
 * the main thread never blocks on decoding, preprocessing or `session.run`.
 */
import { ImageInputError, serializeError } from './inference-errors.ts'
import { ModelRunner } from './model-runner.ts'
import type { DetectionOutput, WorkerRequest, WorkerResponse } from './worker-protocol.ts'

declare const self: Worker

let runner: ModelRunner | undefined
let queue: Promise<void> = Promise.resolve()

const reply = (message: WorkerResponse) => self.postMessage(message)

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
        runner = await ModelRunner.load(request.options)
        reply({
          type: 'loaded', backend: runner.backend, rejected: runner.rejected, model: runner.information,
          inputSize: { width: runner.spec.preprocessing.width, height: runner.spec.preprocessing.height },
        })
      } catch (error) {
        reply({ type: 'load-failed', error: serializeError(error) })
      }
      return
    case 'detect': {
      if (!runner) {
        reply({ type: 'detect-failed', id: request.id, error: { name: 'InferenceUnavailableError', message: 'no model is loaded' } })
        return
      }
      const outputs: DetectionOutput[] = []
      try {
        for (const [index, image] of request.images.entries()) {
          try {
            outputs.push(await runner.detect(image, { keepDecoded: request.keepDecoded }))
          } catch (error) {
            if (error instanceof ImageInputError && request.images.length > 1) throw new ImageInputError(`image ${index}: ${error.message}`)
            throw error
          }
        }
        replyDetected(request.id, outputs)
      } catch (error) {
        reply({ type: 'detect-failed', id: request.id, error: serializeError(error) })
      }
      return
    }
    case 'dispose':
      await runner?.release().catch(() => undefined)
      runner = undefined
      reply({ type: 'disposed' })
  }
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  queue = queue.then(() => handle(event.data))
}
