import { readdir, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import { decodeJson, Detections } from '../contract/index.ts'
import { writeFileAtomic } from '../foundation/atomic-file.ts'

/** Upstream file names inside the training folder (§8.2); kept so folders stay readable by either implementation. */
export const TRAINING_FILE_NAMES = {
  log: 'last_training.log',
  baseModelJson: 'base_model.json',
  modelUploadProgress: 'model_uploading_progress.txt',
  /** ours: the model id of the last uploaded format, so a crash after the last upload still knows it (§15.12) */
  lastUploadedModelId: 'model_uploading_last_id.txt',
  detectionUploadIndex: 'detection_uploading_json_index.txt',
  detectionUploadOffset: 'detection_uploading_progress.txt',
} as const

const DETECTIONS_FILE = /^detections_(\d+)\.json$/
const DetectionsList = Type.Array(Detections, { $id: 'DetectionsFile' })

/**
 * The small progress files that make the model upload (per format) and the detection upload (file index +
 * offset) resumable after a crash, and the `detections_<i>.json` batches (§8.2, §8.8, §8.9). Every write is atomic.
 */
export class ActiveTrainingFiles {
  constructor(readonly trainingFolder: string) {}

  get logPath(): string {
    return join(this.trainingFolder, TRAINING_FILE_NAMES.log)
  }

  private path(name: string): string {
    return join(this.trainingFolder, name)
  }

  private async readText(name: string): Promise<string | undefined> {
    try {
      return await readFile(this.path(name), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  private async readCount(name: string): Promise<number> {
    const text = (await this.readText(name))?.trim()
    if (!text) return 0
    const value = Number(text)
    if (!Number.isInteger(value) || value < 0) throw new Error(`${name} holds ${JSON.stringify(text)}, not a count`)
    return value
  }

  /** Formats already uploaded, in upload order (comma-separated in the file, as upstream). */
  async readUploadedFormats(): Promise<string[]> {
    const text = await this.readText(TRAINING_FILE_NAMES.modelUploadProgress)
    return (text ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  }

  async markFormatUploaded(format: string, modelId: string): Promise<void> {
    const formats = await this.readUploadedFormats()
    if (!formats.includes(format)) formats.push(format)
    // the id first: if the crash comes between the two writes, the format is uploaded again, which is harmless
    await writeFileAtomic(this.path(TRAINING_FILE_NAMES.lastUploadedModelId), modelId)
    await writeFileAtomic(this.path(TRAINING_FILE_NAMES.modelUploadProgress), formats.join(','))
  }

  async readLastUploadedModelId(): Promise<string | undefined> {
    return (await this.readText(TRAINING_FILE_NAMES.lastUploadedModelId))?.trim() || undefined
  }

  /** Index of the next detections file to upload. */
  readDetectionUploadIndex(): Promise<number> {
    return this.readCount(TRAINING_FILE_NAMES.detectionUploadIndex)
  }

  async writeDetectionUploadIndex(index: number): Promise<void> {
    await writeFileAtomic(this.path(TRAINING_FILE_NAMES.detectionUploadIndex), String(index))
  }

  /** Offset of the next detection inside the current file. */
  readDetectionUploadOffset(): Promise<number> {
    return this.readCount(TRAINING_FILE_NAMES.detectionUploadOffset)
  }

  async writeDetectionUploadOffset(offset: number): Promise<void> {
    await writeFileAtomic(this.path(TRAINING_FILE_NAMES.detectionUploadOffset), String(offset))
  }

  detectionsPath(index: number): string {
    return this.path(`detections_${index}.json`)
  }

  async saveDetections(index: number, detections: readonly Detections[]): Promise<void> {
    await writeFileAtomic(this.detectionsPath(index), JSON.stringify(detections))
  }

  /** One batch, each entry checked against the Detections contract. */
  async loadDetections(index: number): Promise<Detections[]> {
    return decodeJson(DetectionsList, await readFile(this.detectionsPath(index), 'utf8'))
  }

  async hasDetections(index: number): Promise<boolean> {
    return stat(this.detectionsPath(index)).then((found) => found.isFile(), () => false)
  }

  /** Indices of the `detections_<i>.json` files present, ascending. */
  async listDetectionFiles(): Promise<number[]> {
    let names: string[]
    try {
      names = await readdir(this.trainingFolder)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw error
    }
    return names.map((name) => DETECTIONS_FILE.exec(name)?.[1]).filter((i): i is string => i !== undefined).map(Number).sort((a, b) => a - b)
  }

  /** Cleanup (§8.10 step 1): the detection files and both detection progress files. */
  async deleteDetections(): Promise<void> {
    for (const index of await this.listDetectionFiles()) await rm(this.detectionsPath(index), { force: true })
    await rm(this.path(TRAINING_FILE_NAMES.detectionUploadIndex), { force: true })
    await rm(this.path(TRAINING_FILE_NAMES.detectionUploadOffset), { force: true })
  }

  /** The model upload progress; removed with the training folder upstream, explicitly here. */
  async deleteModelUploadProgress(): Promise<void> {
    await rm(this.path(TRAINING_FILE_NAMES.modelUploadProgress), { force: true })
    await rm(this.path(TRAINING_FILE_NAMES.lastUploadedModelId), { force: true })
  }
}
