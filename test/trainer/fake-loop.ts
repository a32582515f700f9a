import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { encode } from 'jpeg-js'
import type { Detections, ImageData, ImageState, TrainingOut } from '../../src/contract/index.ts'
import type { TrainerLoopPort } from '../../src/trainer/loop-trainer-steps.ts'

export function makeJpeg(seed: number, size = 16): Uint8Array {
  const data = Buffer.alloc(size * size * 4)
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31) % 256
  return new Uint8Array(encode({ data, width: size, height: size }, 80).data)
}

const notFound = (what: string) => Object.assign(new Error(`${what} not found`), { status: 404 })

/** An in-memory Loop for one project that writes real files where the real one would, and records every call. */
export class FakeLoop implements TrainerLoopPort {
  readonly imagesByState: Record<ImageState, string[]> = { inbox: [], annotate: [], review: [], complete: [] }
  readonly models = new Map<string, Record<string, string>>()
  readonly uploads: { format: string; files: string[]; modelJson: Record<string, unknown> }[] = []
  readonly detectionBatches: Detections[][] = []
  readonly trainingUpdates: TrainingOut[] = []
  /** format → failures left before an upload succeeds */
  readonly uploadFailures = new Map<string, number>()
  /** detection upload calls (1-based) that fail */
  readonly failingDetectionCalls = new Set<number>()
  updateTrainingFails = false
  private detectionCalls = 0
  private uploadedModels = 0

  constructor(images: Partial<Record<ImageState, string[]>> = {}) {
    Object.assign(this.imagesByState, images)
  }

  async fetchImageIds(query: string): Promise<string[]> {
    const state = /state=(\w+)/.exec(query)?.[1] as ImageState | undefined
    return state ? [...this.imagesByState[state]] : Object.values(this.imagesByState).flat()
  }

  async fetchImageData(ids: readonly string[]): Promise<ImageData[]> {
    return ids.map((id, i) => ({ id, set: i % 4 === 0 ? 'test' : 'train', width: 16, height: 16, box_annotations: [], point_annotations: [] }))
  }

  async downloadImage(id: string): Promise<Uint8Array> {
    return makeJpeg(id.length)
  }

  async downloadModel(modelId: string, format: string, targetDir: string): Promise<string[]> {
    const files = this.models.get(`${modelId}/${format}`)
    if (!files) throw notFound(`model ${modelId}/${format}`)
    await mkdir(targetDir, { recursive: true })
    for (const [name, content] of Object.entries(files)) await writeFile(join(targetDir, name), content)
    return Object.keys(files).map((name) => join(targetDir, name))
  }

  async uploadModel(_trainingNumber: number, format: string, files: readonly string[]): Promise<string> {
    const left = this.uploadFailures.get(format) ?? 0
    if (left > 0) {
      this.uploadFailures.set(format, left - 1)
      throw Object.assign(new Error(`PUT model ${format} answered 502`), { status: 502 })
    }
    const modelJsonPath = files.find((f) => basename(f) === 'model.json')
    const modelJson = modelJsonPath ? JSON.parse(await readFile(modelJsonPath, 'utf8')) : {}
    this.uploads.push({ format, files: files.map((f) => basename(f)), modelJson })
    return `model-${++this.uploadedModels}`
  }

  async uploadDetections(batch: readonly Detections[]): Promise<void> {
    this.detectionCalls++
    if (this.failingDetectionCalls.has(this.detectionCalls)) throw Object.assign(new Error('POST detections answered 500'), { status: 500 })
    this.detectionBatches.push([...batch])
  }

  async updateTraining(out: TrainingOut): Promise<void> {
    if (this.updateTrainingFails) throw new Error('Error for update_training: Response from loop was : {"success":false}')
    this.trainingUpdates.push(out)
  }
}
