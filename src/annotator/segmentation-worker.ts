/**
 * The segmentation worker: decodes photos (cached) and runs box segmentation one request at a time,
 * off the main thread.
 */
import { segmentBox } from './box-segmentation.ts'
import { DecodedImageCache, serializeSegmenterError, type SegmenterRequest, type SegmenterResponse } from './segmenter.ts'

declare const self: Worker

const cache = new DecodedImageCache()
let queue: Promise<void> = Promise.resolve()
const reply = (message: SegmenterResponse) => self.postMessage(message)

async function handle(request: SegmenterRequest): Promise<void> {
  try {
    const image = await cache.get(request.imagePath)
    if (request.type === 'size') reply({ type: 'size', id: request.id, size: { width: image.width, height: image.height } })
    else reply({ type: 'segmented', id: request.id, result: segmentBox(image, request.request) })
  } catch (error) {
    reply({ type: 'failed', id: request.id, error: serializeSegmenterError(error) })
  }
}

self.onmessage = (event: MessageEvent<SegmenterRequest>) => {
  queue = queue.then(() => handle(event.data))
}
