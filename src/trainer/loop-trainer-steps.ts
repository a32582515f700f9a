import { existsSync } from 'node:fs'
import { readFile, rename, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import {
  decodeJson, IMAGE_STATES, imageFileName, fileStemOf, ModelInformation,
  type Detections, type Training, type TrainingOut,
} from '../contract/index.ts'
import { writeFileAtomic } from '../foundation/atomic-file.ts'
import { errorMessage, type Logger } from '../foundation/log.ts'
import { TRAINING_FILE_NAMES } from './active-training-files.ts'
import type { ModelFiles, TrainerLogic } from './trainer-logic.ts'
import { isUuid } from './training-creation.ts'
import { downloadImageFiles, downloadTrainingData, type DownloadOptions, type TrainingDataSource } from './training-data-downloader.ts'
import { CriticalError, throwIfCancelled } from './training-errors.ts'
import { runTrainingProcess, type TrainingProcessOptions } from './training-process-step.ts'
import type { StepContext, TrainerSteps, TrainingUpdate } from './training-runner.ts'
import type { TrainingOutcome } from './training-state-machine.ts'

/**
 * The Loop calls a trainer needs for one project (a DataExchange plus the socket's `update_training`, §4, §5.3).
 * Every method throws on failure; an error with a numeric `status` in 4xx (not 408/429) counts as permanent
 * where that matters (missing images).
 */
export interface TrainerLoopPort extends TrainingDataSource {
  /** #7: the model in `format`, unpacked into `targetDir` (created); returns the files written */
  downloadModel(modelId: string, format: string, targetDir: string, signal: AbortSignal): Promise<string[]>
  /** #8: the files of one format (model.json among them); returns the new model's id */
  uploadModel(trainingNumber: number, format: string, files: readonly string[], signal: AbortSignal): Promise<string>
  /** #9: one batch of at most 100 Detections */
  uploadDetections(batch: readonly Detections[], signal: AbortSignal): Promise<void>
  /** socket `update_training(org, project, TrainingOut)`: resolves on a `{success:true}` ack, throws otherwise */
  updateTraining(out: TrainingOut, signal: AbortSignal): Promise<void>
  /**
   * Resolves once `updateTraining` can reach the Loop, waiting (with backoff) while it cannot; the
   * confusion-matrix step calls it first, so a Loop that is down delays the step instead of failing it.
   * Optional: without it the step fails (and is retried) while the Loop is down.
   */
  waitForConnection?(signal: AbortSignal): Promise<void>
}

export interface LoopTrainerStepsOptions {
  logic: TrainerLogic
  loop: TrainerLoopPort
  /** node uuid and name, for TrainingOut */
  trainerId: string
  trainerName: string
  /** INFERENCE_BATCH_SIZE: images per `detect` call */
  inferenceBatchSize: number
  downloader?: Partial<Omit<DownloadOptions, 'imagesFolder' | 'signal' | 'onProgress'>>
  trainingProcess?: Omit<TrainingProcessOptions, 'syncTraining'>
  /** last part of cleanup, after the files are gone (the node sends its status here, §8.10 step 4) */
  onCleanup?(training: Training, outcome: TrainingOutcome, errors: Record<string, string>): Promise<void>
}

/** The Loop accepts at most this many Detections per request (§8.9). */
export const DETECTIONS_PER_BATCH = 100
const UPLOAD_FOLDER = 'upload'
const MODEL_JSON = 'model.json'

/** Where the post-training detections' model goes: inside the training folder (upstream used /tmp, shared by all nodes). */
export function detectionModelFolder(training: Training, format: string): string {
  return join(training.training_folder, `model_for_auto_detections_${training.model_uuid_for_detecting}_${format}`)
}

function countBySet(training: Training, set: string): number | null {
  return training.image_data ? training.image_data.filter((d) => d.set === set).length : null
}

function normaliseModelFiles(files: ModelFiles | null, format: string): Record<string, string[]> | undefined {
  if (!files) return undefined
  const byFormat: Record<string, string[]> = Array.isArray(files) ? { [format]: [...files] } : Object.fromEntries(Object.entries(files).map(([f, l]) => [f, [...l]]))
  const nonEmpty = Object.entries(byFormat).filter(([, list]) => list.length > 0)
  return nonEmpty.length ? Object.fromEntries(nonEmpty) : undefined
}

/**
 * The steps of §8.5–§8.10 backed by a TrainerLogic and the Loop. Differences from upstream, on purpose:
 * the categories model.json is written per training (not /tmp) and merged with a model.json the trainer
 * provides (no substring assertion); a crash after the last format was uploaded recovers the model id from
 * the progress files (no endless retry); detections are recomputed from scratch when that step is retried.
 */
export function createLoopTrainerSteps(options: LoopTrainerStepsOptions): TrainerSteps {
  const { logic, loop } = options

  async function syncTraining(training: Training, signal: AbortSignal, log: Logger): Promise<void> {
    const state = await logic.newBestTrainingState(training)
    if (!state) return
    const out: TrainingOut = {
      trainer_id: options.trainerId,
      trainer_name: options.trainerName,
      confusion_matrix: state.confusion_matrix ?? {},
      train_image_count: countBySet(training, 'train'),
      test_image_count: countBySet(training, 'test'),
      hyperparameters: training.hyperparameters,
      best_epoch: state.epoch ?? null,
    }
    await loop.updateTraining(out, signal)
    await logic.onMetricsPublished(state, training)
    log.info('training metrics synced', { training_id: training.id, epoch: state.epoch ?? null })
  }

  async function modelJsonFor(training: Training, format: string, own: string | undefined): Promise<string> {
    let content: Record<string, unknown> = {}
    if (own) {
      try {
        content = JSON.parse(await readFile(own, 'utf8')) as Record<string, unknown>
      } catch (error) {
        throw new CriticalError(`the trainer's ${own} is not valid JSON: ${errorMessage(error)}`)
      }
    }
    content.categories ??= training.categories
    const resolution = training.hyperparameters.resolution
    if (content.resolution === undefined && Number.isInteger(resolution)) content.resolution = resolution
    const path = join(training.training_folder, UPLOAD_FOLDER, format, MODEL_JSON)
    await writeFileAtomic(path, JSON.stringify(content))
    return path
  }

  return {
    async prepare(training, ctx) {
      const result = await downloadTrainingData(loop, {
        ...options.downloader, imagesFolder: training.images_folder, signal: ctx.signal, log: ctx.log,
        onProgress: (p) => ctx.reportProgress(p),
      })
      return { image_data: result.imageData, skipped_image_count: result.skippedImageCount }
    },

    async downloadModel(training, ctx) {
      const uuid = training.base_model_uuid
      if (!uuid) {
        ctx.log.info('no base model; training from scratch', { training_id: training.id })
        return
      }
      if (!isUuid(uuid)) {
        ctx.log.warn('base_model_uuid is not a uuid; training from scratch', { training_id: training.id, base_model_uuid: uuid })
        return
      }
      const folder = join(training.training_folder, 'base_model')
      await rm(folder, { recursive: true, force: true })
      await loop.downloadModel(uuid.trim(), logic.modelFormat, folder, ctx.signal)
      const modelJson = join(folder, MODEL_JSON)
      if (!existsSync(modelJson)) throw new CriticalError(`base model ${uuid} (${logic.modelFormat}) has no model.json`)
      await rename(modelJson, join(training.training_folder, TRAINING_FILE_NAMES.baseModelJson))
    },

    async runTraining(training, ctx) {
      await runTrainingProcess(logic, training, ctx, {
        ...options.trainingProcess,
        syncTraining: (t, signal) => syncTraining(t as Training, signal, ctx.log),
      })
    },

    async syncConfusionMatrix(training, ctx) {
      await loop.waitForConnection?.(ctx.signal)
      await syncTraining(training, ctx.signal, ctx.log)
    },

    async uploadModel(training, ctx): Promise<TrainingUpdate> {
      const files = normaliseModelFiles(await logic.latestModelFiles(training), logic.modelFormat)
      if (!files) throw new CriticalError('Could not get latest model files. Training might have failed.')
      const uploaded = await ctx.files.readUploadedFormats()
      let modelId: string | undefined
      for (const [format, list] of Object.entries(files)) {
        if (uploaded.includes(format)) continue
        throwIfCancelled(ctx.signal)
        const own = list.filter((p) => basename(p) === MODEL_JSON)
        if (own.length > 1) throw new CriticalError(`the trainer reported ${own.length} model.json files for ${format}`)
        const upload = [...list.filter((p) => basename(p) !== MODEL_JSON), await modelJsonFor(training, format, own[0])]
        modelId = await loop.uploadModel(training.training_number, format, upload, ctx.signal)
        await ctx.files.markFormatUploaded(format, modelId)
        ctx.log.info('model uploaded', { training_id: training.id, format, model_id: modelId, files: upload.length })
      }
      modelId ??= await ctx.files.readLastUploadedModelId()
      if (!modelId) throw new CriticalError('every format is marked uploaded, but the model id is unknown')
      return { model_uuid_for_detecting: modelId }
    },

    async detect(training, ctx) {
      const modelId = training.model_uuid_for_detecting
      if (!modelId) {
        ctx.log.error('no model to detect with (model_uuid_for_detecting is missing); skipping detections', { training_id: training.id })
        return
      }
      for (const index of await ctx.files.listDetectionFiles()) await rm(ctx.files.detectionsPath(index), { force: true })
      const modelFolder = detectionModelFolder(training, logic.modelFormat)
      await rm(modelFolder, { recursive: true, force: true })
      await loop.downloadModel(modelId, logic.modelFormat, modelFolder, ctx.signal)
      const modelJsonPath = join(modelFolder, MODEL_JSON)
      if (!existsSync(modelJsonPath)) throw new CriticalError(`model ${modelId} (${logic.modelFormat}) has no model.json`)
      const modelInfo = { ...decodeJson(ModelInformation, await readFile(modelJsonPath, 'utf8')), model_root_path: modelFolder }

      const ids: string[] = []
      for (const [i, state] of IMAGE_STATES.entries()) {
        throwIfCancelled(ctx.signal)
        const stateIds = await loop.fetchImageIds(`state=${state}`, ctx.signal)
        const files = await downloadImageFiles(loop, stateIds, { progressOutput: null, ...options.downloader, imagesFolder: training.images_folder, signal: ctx.signal, log: ctx.log })
        for (const id of files.present) if (!ids.includes(id)) ids.push(id)
        ctx.reportProgress(0.1 * (i + 1))
      }
      ctx.reportProgress(0.42)
      if (ids.length === 0) {
        await ctx.files.saveDetections(0, [])
        return
      }
      // programs name an image by its file (upstream's convention); a file stem leads back to the Loop's id
      const idByStem = new Map(ids.map((id) => [fileStemOf(id), id]))
      const batchSize = Math.max(1, Math.floor(options.inferenceBatchSize))
      const batches = Math.ceil(ids.length / batchSize)
      for (let b = 0; b < batches; b++) {
        throwIfCancelled(ctx.signal)
        ctx.reportProgress(0.5 + (0.5 * b) / batches)
        const imageIds = ids.slice(b * batchSize, (b + 1) * batchSize)
        const imagePaths = imageIds.map((id) => join(training.images_folder, imageFileName(id)))
        const detections = await logic.detect({ training, modelInfo, modelFolder, imagePaths, imageIds, signal: ctx.signal })
        await ctx.files.saveDetections(b, detections.map((d) => ({ ...d, image_id: idByStem.get(d.image_id ?? '') ?? d.image_id })))
      }
      ctx.reportProgress(1)
    },

    async uploadDetections(training, ctx) {
      const indices = await ctx.files.listDetectionFiles()
      if (indices.length === 0) {
        ctx.log.error('no detection files to upload', { training_id: training.id })
        return
      }
      const startIndex = await ctx.files.readDetectionUploadIndex()
      const remaining = indices.filter((i) => i >= startIndex)
      for (const [n, index] of remaining.entries()) {
        const detections = await ctx.files.loadDetections(index)
        let offset = index === startIndex ? await ctx.files.readDetectionUploadOffset() : 0
        while (offset < detections.length) {
          throwIfCancelled(ctx.signal)
          const batch = detections.slice(offset, offset + DETECTIONS_PER_BATCH)
          await loop.uploadDetections(batch, ctx.signal)
          offset += batch.length
          await ctx.files.writeDetectionUploadOffset(offset < detections.length ? offset : 0)
        }
        await ctx.files.writeDetectionUploadIndex(index + 1)
        ctx.reportProgress((n + 1) / remaining.length)
      }
    },

    async cleanup(training, ctx: StepContext & { outcome: TrainingOutcome; errors: Record<string, string> }) {
      await logic.clearTrainingData(training.training_folder)
      await rm(join(training.training_folder, UPLOAD_FOLDER), { recursive: true, force: true })
      if (training.model_uuid_for_detecting) await rm(detectionModelFolder(training, logic.modelFormat), { recursive: true, force: true })
      await options.onCleanup?.(training, ctx.outcome, ctx.errors)
    },
  }
}

