/**
 * A trainer with its own TrainerLogic (README example): runs `python train.py` in the training folder and
 * reads what the script writes there (progress.json, best.json, model.onnx). The framework downloads the
 * images and base model, persists the state machine, syncs metrics, uploads the model and detections, and
 * resumes after a crash.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import {
  TrainerNode, loadNodeConfig,
  type DetectionRequest, type Detections, type ModelFiles, type Training, type TrainerLogic, type TrainingRun, type TrainingStateData,
} from 'learning-loop-node'

class ScriptTrainer implements TrainerLogic {
  readonly modelFormat = 'onnx'
  readonly modelArchitecture = 'my-net'
  readonly providedPretrainedModels = [{ name: 'small', label: 'Small', description: 'fast, less accurate' }]
  private progress: number | null = null

  trainingProgress() {
    return this.progress
  }

  async startTrainingFromScratch(run: TrainingRun) {
    run.executor.start(['python', 'train.py', '--variant', run.training.model_variant])
  }

  async startTrainingFromBaseModel(run: TrainingRun) {
    run.executor.start(['python', 'train.py', '--weights', 'base_model.onnx'])
  }

  async canResume(run: TrainingRun) {
    return existsSync(join(run.training.training_folder, 'last.ckpt'))
  }

  async resume(run: TrainingRun) {
    run.executor.start(['python', 'train.py', '--resume', 'last.ckpt'])
  }

  async errorFromLog(run: TrainingRun) {
    const log = await Bun.file(run.executor.logPath).text().catch(() => '')
    return /Traceback/.test(log) ? log.slice(log.lastIndexOf('Traceback')) : null
  }

  async newBestTrainingState(training: Readonly<Training>): Promise<TrainingStateData | null> {
    const progress = Bun.file(join(training.training_folder, 'progress.json'))
    if (await progress.exists()) this.progress = ((await progress.json()) as { fraction: number }).fraction
    const best = Bun.file(join(training.training_folder, 'best.json'))
    return (await best.exists()) ? ((await best.json()) as TrainingStateData) : null
  }

  async onMetricsPublished() {}

  async latestModelFiles(training: Readonly<Training>): Promise<ModelFiles | null> {
    const model = join(training.training_folder, 'model.onnx')
    return existsSync(model) ? [model] : null
  }

  async detect(request: DetectionRequest): Promise<Detections[]> {
    return request.imagePaths.map(() => ({ box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [], image_id: null }))
  }

  async clearTrainingData(trainingFolder: string) {
    await Bun.$`rm -rf ${join(trainingFolder, 'runs')}`.quiet()
  }
}

const node = await TrainerNode.create({ config: loadNodeConfig(process.env), logic: new ScriptTrainer() })
node.runtime.installSignalHandlers()
await node.runtime.start()
console.log(`trainer listening on ${node.runtime.url}`)
