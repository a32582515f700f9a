/**
 * A detector with its own DetectorLogic (README example): marks the brightest 32×32 patch of every image.
 * The node around it is the full detector: REST + socket.io, model versions from the Loop, outbox, and an
 * embedded local loop when LOOP_HOST is unset. Run: PORT=8004 bun detector-app.ts
 */
import {
  DetectorNode, decodeImageInWorker, loadNodeConfig,
  type DetectorLogic, type DetectorLogicFactory, type ImageInput, type LogicOutput, type ModelInformation,
} from 'learning-loop-node'

const PATCH = 32

class BrightestPatchLogic implements DetectorLogic {
  readonly backend = 'brightest-patch'
  constructor(readonly modelInfo: ModelInformation) {}

  async detect(image: ImageInput): Promise<LogicOutput> {
    // 8-bit RGB, row-major, decoded in a worker pool: the event loop stays free for the other requests
    const { width, height, data } = await decodeImageInWorker(image)
    let best = { x: 0, y: 0, sum: -1 }
    for (let y = 0; y + PATCH <= height; y += PATCH) {
      for (let x = 0; x + PATCH <= width; x += PATCH) {
        let sum = 0
        for (let row = y; row < y + PATCH; row++) {
          for (let i = (row * width + x) * 3; i < (row * width + x + PATCH) * 3; i++) sum += data[i]!
        }
        if (sum > best.sum) best = { x, y, sum }
      }
    }
    return {
      box_detections: [{
        category_name: 'bright', category_id: 'bright', model_name: this.modelInfo.version,
        confidence: best.sum / (PATCH * PATCH * 3 * 255), x: best.x, y: best.y, width: PATCH, height: PATCH,
      }],
      point_detections: [], segmentation_detections: [], classification_detections: [],
      width, height,
    }
  }

  detectBatch(images: ImageInput[]): Promise<LogicOutput[]> {
    return Promise.all(images.map((image) => this.detect(image)))
  }

  async dispose(): Promise<void> {}
}

// called with each model folder the Loop deploys (model.json + files in `modelFormat`)
const factory: DetectorLogicFactory = {
  modelFormat: 'brightest_patch',
  build: async (modelDir) => new BrightestPatchLogic({
    id: 'brightest-patch', host: null, organization: 'local', project: 'demo', version: '1.0',
    categories: [], resolution: null, model_root_path: modelDir, model_size: null,
  }),
}

// config from the environment, as the CLI reads it (PORT, LOOP_HOST, DATA_FOLDER, …)
const node = await DetectorNode.start({ config: loadNodeConfig(process.env), factory, fallbackModelDir: import.meta.dir })
console.log(`detector listening on ${node.url}`)
process.once('SIGTERM', () => void node.stop().then(() => process.exit(0)))
