/**
 * A decode worker of an ImageDecodePool: decodes images to RGB off the main thread, one at a time, and moves the
 * pixels back (the native decoder's buffers cannot be moved: those are copied once here).
 */
import { decodeImage } from './image-decoding.ts'
import { serializeError } from './inference-errors.ts'
import type { DecodeRequest, DecodeResponse } from './image-decode-pool.ts'

declare const self: Worker

self.onmessage = async (event: MessageEvent<DecodeRequest>) => {
  const { id, image, options } = event.data
  let message: DecodeResponse
  try {
    message = { id, image: await decodeImage(image, options) }
  } catch (error) {
    self.postMessage({ id, error: serializeError(error) } satisfies DecodeResponse)
    return
  }
  const data = message.image!.data
  try {
    self.postMessage(message, [data.buffer as ArrayBuffer])
  } catch (error) {
    if ((error as Error).name !== 'DataCloneError') throw error
    message.image!.data = data.slice()
    self.postMessage(message, [message.image!.data.buffer as ArrayBuffer])
  }
}
