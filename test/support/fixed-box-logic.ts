import type { DetectorLogic, DetectorLogicFactory, LogicOutput } from '../../src/detector/detector-logic.ts'
import type { ImageInput, RgbImage } from '../../src/inference/image-decoding.ts'

/** What the fixed-box model answers for every image: one box. */
export const FIXED_BOX_OUTPUT: LogicOutput = {
  box_detections: [{ category_name: 'thing', category_id: 'thing', model_name: 'fixed-1', confidence: 0.5, x: 10, y: 20, width: 30, height: 40 }],
  point_detections: [], segmentation_detections: [], classification_detections: [],
  width: 640, height: 480,
}

/** A model that answers at once with one fixed box: a stand-in for a fast (GPU) model, so the node around it is what is measured. */
export const fixedBoxLogic: DetectorLogic = {
  modelInfo: { id: 'fixed', version: 'fixed-1', categories: [], resolution: null } as never,
  backend: 'fixed-box',
  detect: async () => structuredClone(FIXED_BOX_OUTPUT),
  detectBatch: async (images) => images.map(() => structuredClone(FIXED_BOX_OUTPUT)),
  dispose: async () => undefined,
}

/** Builds the fixed-box model for any model folder (start the node with `fallbackModelDir` set to any folder). */
export const fixedBoxFactory: DetectorLogicFactory = { modelFormat: 'fixed_box', build: async () => fixedBoxLogic }

/**
 * The fixed-box model of a custom logic that needs pixels: it decodes every image (with `decode`: `decodeImage` on
 * the main thread, or `decodeImageInWorker`) and answers with one box in the image's size. Benchmarks compare the two.
 */
export function decodingFixedBoxFactory(decode: (image: ImageInput) => Promise<RgbImage>, name: string): DetectorLogicFactory {
  const detect = async (image: ImageInput): Promise<LogicOutput> => {
    const { width, height } = await decode(image)
    return { ...structuredClone(FIXED_BOX_OUTPUT), width, height }
  }
  const logic: DetectorLogic = {
    ...fixedBoxLogic, backend: name, detect,
    detectBatch: (images) => Promise.all(images.map(detect)),
  }
  return { modelFormat: 'fixed_box', build: async () => logic }
}
