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
            outputs.push(await runner.detect(image))
          } catch (error) {
            if (error instanceof ImageInputError && request.images.length > 1) throw new ImageInputError(`image ${index}: ${error.message}`)
            throw error
          }
        }
        reply({ type: 'detected', id: request.id, outputs })
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
