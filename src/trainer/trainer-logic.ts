import type { Detections, ModelInformation, PretrainedModel, Training, TrainingStateData } from '../contract/index.ts'
import type { Logger } from '../foundation/log.ts'
import type { Executor } from './executor.ts'

/** One start of the training process: what a TrainerLogic needs to launch and watch it. */
export interface TrainingRun {
  training: Readonly<Training>
  /** runs in the training folder and logs to `last_training.log`; call `executor.start(argv, env)` */
  executor: Executor
  /** fires on abort/shutdown; the executor is stopped for you */
  signal: AbortSignal
  log: Logger
}

/** Model files per format, paths absolute or relative to the training folder; a plain list means the logic's own format. */
export type ModelFiles = readonly string[] | Readonly<Record<string, readonly string[]>>

export interface DetectionRequest {
  training: Readonly<Training>
  /** model.json of the model being used (the one just uploaded) */
  modelInfo: ModelInformation
  /** the folder the model was downloaded into */
  modelFolder: string
  /** the images' files (`<images_folder>/<id>.jpg` for the Loop's UUIDs; other ids are encoded, see imageFileName) */
  imagePaths: readonly string[]
  /** the Loop's ids of the same images, in the same order; a detection names its image by one of these (or by its file's stem) */
  imageIds: readonly string[]
  signal: AbortSignal
}

/**
 * What a concrete trainer implements (upstream TrainerLogic, §8.6, in TypeScript). The framework around it
 * (TrainingRunner + the Loop-backed steps) downloads data and models, runs the process through an Executor,
 * syncs metrics, uploads models and detections, and persists the state.
 */
export interface TrainerLogic {
  /** e.g. `yolov5_pytorch`, `onnx`: keys model downloads and uploads */
  readonly modelFormat: string
  /** shown in the trainer status */
  readonly modelArchitecture: string | null
  /** `model_variant` of begin_training names one of these */
  readonly providedPretrainedModels: readonly PretrainedModel[]

  /** 0–1 while the training process runs; null when unknown */
  trainingProgress(): number | null

  /** Start training from scratch, e.g. `run.executor.start([...])`. */
  startTrainingFromScratch(run: TrainingRun): Promise<void>
  /** Start from the base model downloaded into the training folder (`base_model.json` + files). */
  startTrainingFromBaseModel(run: TrainingRun): Promise<void>
  /** True when an interrupted run of this training can be continued (a checkpoint exists). */
  canResume(run: TrainingRun): Promise<boolean>
  resume(run: TrainingRun): Promise<void>

  /** An error the training reported (log or protocol), or null. Checked while it runs and when it ends. */
  errorFromLog(run: TrainingRun): Promise<string | null>

  /** A better training state than the last one published (confusion matrix per category uuid), or null. */
  newBestTrainingState(training: Readonly<Training>): Promise<TrainingStateData | null>
  /** The Loop accepted that state: keep its weights for the upload. */
  onMetricsPublished(state: TrainingStateData, training: Readonly<Training>): Promise<void>
  /** The files of the latest (best) model per format, or null when there is none (the training failed). */
  latestModelFiles(training: Readonly<Training>): Promise<ModelFiles | null>

  /** Detections for a batch of images with the trained model; one entry per image that has any. */
  detect(request: DetectionRequest): Promise<Detections[]>

  /** Remove what the training left in its folder (§8.10). */
  clearTrainingData(trainingFolder: string): Promise<void>
}
