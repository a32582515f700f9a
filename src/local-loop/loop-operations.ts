import { Type } from '@sinclair/typebox'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  ContractError, DetectorStatus, Detections, ProjectGeneratorRequest, UploadedModelJson, decode, decodeJson,
  type Category, type DetectionsStoredAnswer, type GeneratedProject, type UploadOutcome, type LocalLoopModelsAnswer, type LoopImageData, type LoopImageState, type LoopProjectData,
  type LoopProjectInfo, type TrainingsListing, type TrainingView,
} from '../contract/index.ts'
import { createZip, listZipEntries, readZipEntry, ZipError } from '../foundation/zip-archive.ts'
import { quoteInput, type Logger } from '../foundation/log.ts'
import { inspectJpeg } from './jpeg-inspection.ts'
import { checkUploadItem, pairUploadParts, type CheckedUploadItem, type UploadPart } from './image-upload.ts'
import { conflict, notFound, unprocessable } from './loop-errors.ts'
import type { StoredImage } from './image-records.ts'
import type { LoopStore, StoredModel, StoredTraining } from './loop-store.ts'
import { compareVersions, modelFileNameProblem, modelFormatProblem, modelZipName, rewriteModelJson } from './model-versioning.ts'
import { planGeneratedProject, seedFromText } from './project-generator.ts'
import { renderSyntheticJpeg } from './synthetic-image.ts'

/**
 * What the local Loop does, independent of how it was asked (REST, admin API, in-process calls):
 * turning requests into store changes and store rows into the wire shapes of §4.
 */
export const MAX_DETECTIONS_PER_REQUEST = 100
/** bounds on one generator request, so a typo cannot keep the loop drawing for hours */
const MAX_GENERATED_IMAGES = 5_000
const MAX_GENERATED_CATEGORIES = 100
const MAX_GENERATED_TRAININGS = 100
const MAX_REPORTED_PROBLEMS = 5
export const MOCKED_MODEL_FILES: Record<string, string> = {
  'file_1.txt': 'content of file one',
  'file_2.txt': 'content of file two',
}

export type { GeneratedProject, UploadOutcome }

/** The body of §4 #9, as the route documents it. */
export const DetectionsBatch = Type.Array(Detections, { maxItems: MAX_DETECTIONS_PER_REQUEST, $id: 'DetectionsBatch' })

function summarise(problems: string[]): string {
  const shown = problems.slice(0, MAX_REPORTED_PROBLEMS).join('; ')
  return problems.length > MAX_REPORTED_PROBLEMS ? `${shown}; and ${problems.length - MAX_REPORTED_PROBLEMS} more` : shown
}

export class LoopOperations {
  constructor(readonly store: LoopStore, private readonly log: Logger) {}

  // ---------------------------------------------------------------- images

  /**
   * §4 #13: stores every item of a multipart upload, or none when any item is broken (422 naming the
   * files, so the outbox can bisect). Items already stored under the same id are skipped (200).
   */
  async uploadImages(organization: string, project: string, parts: UploadPart[]): Promise<UploadOutcome> {
    this.store.requireProject(organization, project)
    if (parts.length === 0) throw unprocessable('no files: send parts named "files" holding image_<stem>.json and image_<stem>.jpg')
    const { items, problems } = pairUploadParts(parts)
    const checked: CheckedUploadItem[] = []
    for (const item of items) {
      try {
        checked.push(checkUploadItem(item))
      } catch (error) {
        problems.push((error as Error).message)
      }
    }
    if (problems.length > 0) throw unprocessable(`broken upload item(s): ${summarise(problems)}`)
    const outcome: UploadOutcome = { stored: [], duplicates: [], items: [] }
    for (const item of checked) {
      const metadata = item.metadata
      const { created, id } = await this.store.images.add(organization, project, {
        fileName: item.jpegFileName, state: metadata.state ?? 'inbox', width: item.width, height: item.height,
        created: metadata.creation_date ?? metadata.created ?? null, source: metadata.source ?? null, tags: metadata.tags ?? [],
        cameraId: metadata.camera_id ?? null,
        box_annotations: metadata.box_annotations, point_annotations: metadata.point_annotations,
        classification_annotation: metadata.classification_annotation ?? null,
        box_detections: metadata.box_detections, point_detections: metadata.point_detections,
        segmentation_detections: metadata.segmentation_detections, classification_detections: metadata.classification_detections,
        jpeg: item.jpeg,
      })
      ;(created ? outcome.stored : outcome.duplicates).push(id)
      outcome.items.push({ file_name: item.jpegFileName, id, created })
    }
    if (outcome.duplicates.length) this.log.info('upload items already stored were skipped', { organization, project, duplicates: outcome.duplicates.length })
    return outcome
  }

  /** An image added as a Loop user would (not through the outbox route): the id is the caller's or a new one. */
  async addImage(organization: string, project: string, image: { jpeg: Uint8Array; id?: string; state?: LoopImageState; tags?: string[]; source?: string | null }): Promise<string> {
    let size: { width: number; height: number }
    try {
      size = inspectJpeg(image.jpeg)
    } catch (error) {
      throw unprocessable(`the image: ${(error as Error).message}`)
    }
    if (image.id !== undefined && this.store.images.has(organization, project, image.id)) throw conflict(`image ${image.id} already exists in ${organization}/${project}`)
    const { id } = await this.store.images.add(organization, project, { ...image, ...size, state: image.state ?? 'inbox' })
    return id
  }

  /** §4 #5: the image data trainers read (id, set, size, annotations, …); unknown ids are left out. */
  imageData(image: StoredImage): LoopImageData {
    const resource = `/${image.organization}/projects/${image.project}/images/${image.id}/main`
    return {
      id: image.id, set: image.set, width: image.width, height: image.height, state: image.state, tags: image.tags,
      created: image.created, source: image.source, file_name: image.fileName, resource, thumbnail: resource,
      box_annotations: image.box_annotations, point_annotations: image.point_annotations,
      segmentation_annotations: image.segmentation_annotations, classification_annotation: image.classification_annotation,
      box_detections: image.box_detections, point_detections: image.point_detections,
      segmentation_detections: image.segmentation_detections, classification_detections: image.classification_detections,
      trainer_detections: image.trainer_detections,
    }
  }

  async imageBytes(organization: string, project: string, id: string): Promise<Uint8Array> {
    this.store.requireProject(organization, project)
    const image = this.store.images.get(organization, project, id)
    if (!image) throw notFound(`image ${id} does not exist in ${organization}/${project}`)
    return new Uint8Array(await readFile(this.store.images.path(image)))
  }

  /** §4 #9: a JSON array of at most 100 Detections, each naming its image. */
  storeDetections(organization: string, project: string, body: unknown): DetectionsStoredAnswer {
    this.store.requireProject(organization, project)
    if (Array.isArray(body) && body.length > MAX_DETECTIONS_PER_REQUEST) {
      throw unprocessable(`at most ${MAX_DETECTIONS_PER_REQUEST} Detections per request, got ${body.length}`)
    }
    const detections = decode(DetectionsBatch, body)
    const missing = detections.findIndex((d) => !d.image_id)
    if (missing >= 0) throw unprocessable(`invalid Detections: /${missing}/image_id: required field is missing`)
    const { stored, unknownImageIds } = this.store.images.setTrainerDetections(organization, project, detections)
    if (unknownImageIds.length) this.log.warn('detections for unknown images were dropped', { organization, project, unknown: unknownImageIds.slice(0, 10), count: unknownImageIds.length })
    return { stored, unknown_image_ids: unknownImageIds }
  }

  recordDetectorStatus(organization: string, project: string, body: unknown): void {
    const status = decode(DetectorStatus, body)
    this.store.recordDetectorStatus(organization, project, status.uuid, status)
  }

  // ---------------------------------------------------------------- models

  /**
   * §4 #8 / §9 / admin: stores the files of one model format. `parts` are the uploaded files; the one named
   * `model.json` is kept as the model's description (`requireModelJson` for trainer uploads, §8.8).
   */
  async uploadModelFiles(organization: string, project: string, target: { trainingNumber: number } | { modelId: string }, format: string, parts: UploadPart[], options: { requireModelJson: boolean; comment?: string | null }): Promise<{ model: StoredModel; created: boolean }> {
    this.store.requireProject(organization, project)
    const formatProblem = modelFormatProblem(format)
    if (formatProblem) throw unprocessable(formatProblem)
    const problems: string[] = []
    const names = new Set<string>()
    for (const part of parts) {
      const problem = modelFileNameProblem(part.fileName)
      if (problem) problems.push(problem)
      else if (names.has(part.fileName)) problems.push(`file ${quoteInput(part.fileName)} appears twice`)
      names.add(part.fileName)
    }
    const descriptions = parts.filter((p) => p.fileName === 'model.json')
    if (parts.length === 0) problems.push('no files: send the model files and one model.json as parts named "files"')
    else if (options.requireModelJson && descriptions.length === 0) problems.push('model.json is missing: a model upload needs exactly one model.json part')
    if (problems.length) throw unprocessable(summarise(problems))
    let modelJson: Record<string, unknown> | null = null
    if (descriptions[0]) {
      try {
        modelJson = decodeJson(UploadedModelJson, new TextDecoder().decode(descriptions[0].bytes)) as Record<string, unknown>
      } catch (error) {
        throw unprocessable(`model.json: ${error instanceof ContractError ? error.issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ') : (error as Error).message}`)
      }
      if (modelJson === null || typeof modelJson !== 'object' || Array.isArray(modelJson)) throw unprocessable('model.json: must be a JSON object')
    }
    const files = parts.filter((p) => p.fileName !== 'model.json').map((p) => ({ name: p.fileName, bytes: p.bytes }))
    const result = await this.store.addModelFormat(organization, project, target, { format, files, modelJson, comment: options.comment ?? null })
    this.log.info('model format stored', { organization, project, model: result.model.id, version: result.model.version, format, created: result.created })
    return result
  }

  /** Admin upload of a model zip: its entries become the format's files (flat names; folders are refused). */
  async uploadModelZip(organization: string, project: string, target: { trainingNumber: number } | { modelId: string }, format: string, zip: Uint8Array, comment?: string | null): Promise<{ model: StoredModel; created: boolean }> {
    let parts: UploadPart[]
    try {
      parts = listZipEntries(zip, { maxTotalBytes: 4 * 2 ** 30 }).filter((e) => !e.isDirectory).map((entry) => ({ fileName: entry.name, bytes: readZipEntry(zip, entry) }))
    } catch (error) {
      if (error instanceof ZipError) throw unprocessable(`model zip: ${error.message}`)
      throw error
    }
    return this.uploadModelFiles(organization, project, target, format, parts, { requireModelJson: false, comment })
  }

  /** §4 #7: the zip of one model format, with model.json rewritten by the Loop (§6.4). */
  async modelZip(organization: string, project: string, modelId: string, format: string, host: string | null): Promise<{ fileName: string; bytes: Uint8Array }> {
    this.store.requireProject(organization, project)
    const model = this.store.model(organization, project, modelId)
    if (!model) throw notFound(`model ${modelId} does not exist in ${organization}/${project}`)
    const stored = this.store.modelFormat(modelId, format)
    if (!stored) throw notFound(`model ${modelId} (version ${model.version}) has no format ${quoteInput(format)}; it has ${model.formats.join(', ') || 'none'}`)
    const files: Record<string, Uint8Array | string> = {}
    for (const name of stored.files) files[name] = new Uint8Array(await readFile(join(this.store.dataFolder, stored.folder, name)))
    const description = rewriteModelJson(stored.modelJson ?? undefined, {
      id: model.id, host, organization, project, version: model.version, format, projectCategories: this.store.categories(organization, project),
    })
    files['model.json'] = JSON.stringify(description, null, 2)
    return { fileName: modelZipName({ organization, project, version: model.version, format }), bytes: createZip(files) }
  }

  /** §4 #11: `{models:[{id, version, formats, created, comment, host}]}`, oldest version first. */
  modelsListing(organization: string, project: string, host: string | null): LocalLoopModelsAnswer {
    this.store.requireProject(organization, project)
    const models = this.store.models(organization, project).sort((a, b) => compareVersions(a.version, b.version))
    return {
      models: models.map((m) => ({
        id: m.id, version: m.version, formats: m.formats, created: m.created, comment: m.comment, host, training_number: m.trainingNumber,
      })),
    }
  }

  /** Resolves a model given by id or version; 404 naming it otherwise. */
  resolveModel(organization: string, project: string, which: { modelId?: string | null; version?: string | null }): StoredModel {
    this.store.requireProject(organization, project)
    if (which.modelId) {
      const model = this.store.model(organization, project, which.modelId)
      if (!model) throw notFound(`model ${which.modelId} does not exist in ${organization}/${project}`)
      return model
    }
    if (which.version) {
      const model = this.store.modelByVersion(organization, project, which.version)
      if (!model) throw notFound(`no model with version ${which.version} in ${organization}/${project}`)
      return model
    }
    throw unprocessable('name the model by model_id or version')
  }

  // ---------------------------------------------------------------- projects

  /**
   * §4 T2: a project with categories, synthetic images per state (drawn shapes; complete images carry
   * annotations that match them), and `trainings` trainings each with a `mocked` model.
   */
  async generateProject(organization: string, body: unknown, seed?: number | null): Promise<GeneratedProject> {
    const request = decode(ProjectGeneratorRequest, body)
    const project = request.project_name
    const images = (request.inbox ?? 0) + (request.annotate ?? 0) + (request.review ?? 0) + (request.complete ?? 0)
    const categories = (request.box_categories ?? 0) + (request.point_categories ?? 0) + (request.segmentation_categories ?? 0) + (request.classification_categories ?? 0)
    if (images > MAX_GENERATED_IMAGES) throw unprocessable(`at most ${MAX_GENERATED_IMAGES} generated images per project, asked for ${images}`)
    if (categories > MAX_GENERATED_CATEGORIES) throw unprocessable(`at most ${MAX_GENERATED_CATEGORIES} generated categories per project, asked for ${categories}`)
    if ((request.trainings ?? 0) > MAX_GENERATED_TRAININGS) throw unprocessable(`at most ${MAX_GENERATED_TRAININGS} generated trainings per project, asked for ${request.trainings}`)
    if ((request.box_annotations ?? 0) > MAX_GENERATED_CATEGORIES || (request.box_detections ?? 0) > MAX_GENERATED_CATEGORIES) {
      throw unprocessable(`at most ${MAX_GENERATED_CATEGORIES} generated box annotations or detections per image`)
    }
    if (this.store.hasProject(organization, project)) throw conflict(`project ${organization}/${project} already exists; delete it first`)
    const plan = planGeneratedProject(request, { seed: seed ?? seedFromText(`${organization}/${project}`) })
    this.store.ensureProject(organization, project)
    try {
      this.store.setCategories(organization, project, plan.categories)
      const imageIds: Record<LoopImageState, string[]> = { inbox: [], annotate: [], review: [], complete: [], trash: [] }
      const start = Date.now()
      for (const [index, image] of plan.images.entries()) {
        await this.store.images.add(organization, project, {
          id: image.id, state: image.state, set: image.set, width: image.width, height: image.height, source: 'generator', tags: image.tags,
          box_annotations: image.box_annotations, point_annotations: image.point_annotations,
          segmentation_annotations: image.segmentation_annotations, classification_annotation: image.classification_annotation,
          box_detections: image.box_detections, jpeg: renderSyntheticJpeg(image),
        }, start + index)
        imageIds[image.state].push(image.id)
      }
      const trainings: number[] = []
      const models: GeneratedProject['models'] = []
      for (let i = 0; i < plan.trainings; i++) {
        const training = this.store.createTraining(organization, project, { state: 'finished', modelVariant: 'mocked' })
        trainings.push(training.number)
        const parts = Object.entries(MOCKED_MODEL_FILES).map(([fileName, text]) => ({ fileName, bytes: new TextEncoder().encode(text) }))
        parts.push({ fileName: 'model.json', bytes: new TextEncoder().encode(JSON.stringify({ categories: plan.categories })) })
        const { model } = await this.uploadModelFiles(organization, project, { trainingNumber: training.number }, 'mocked', parts, { requireModelJson: true, comment: 'generated' })
        models.push({ id: model.id, version: model.version, formats: model.formats })
      }
      this.log.info('project generated', { organization, project, images: plan.images.length, trainings: trainings.length })
      return { organization, project, categories: plan.categories, image_ids: imageIds, trainings, models }
    } catch (error) {
      // a half-generated project would make the next attempt fail with "already exists"
      await this.store.deleteProject(organization, project, false)
      throw error
    }
  }

  /** §4 #4 (and the converter's §9 view of a project). */
  projectData(organization: string, project: string, state?: LoopImageState): LoopProjectData {
    this.store.requireProject(organization, project)
    return {
      image_ids: this.store.images.ids(organization, project, state),
      categories: this.store.categories(organization, project),
      organization, project,
      counts: this.store.images.counts(organization, project),
    }
  }

  projectInfo(organization: string, project: string): LoopProjectInfo {
    this.store.requireProject(organization, project)
    const target = this.store.deploymentTarget(organization, project)
    return {
      id: project, name: project, organization, resource: `/${organization}/projects/${project}`,
      categories: this.store.categories(organization, project),
      counts: this.store.images.counts(organization, project),
      deployment_target: target ? { model_uuid: target.id, version: target.version } : null,
    }
  }

  projectsListing(): { projects: { organization_id: string; project_id: string; resource: string }[] } {
    return {
      projects: this.store.listProjects().map((p) => ({ organization_id: p.organization, project_id: p.project, resource: `/${p.organization}/projects/${p.project}` })),
    }
  }

  /** §4 T3: trainings newest first, and `charts[0].data[0].model_id` = the latest model. */
  trainingsListing(organization: string, project: string): TrainingsListing {
    this.store.requireProject(organization, project)
    const models = this.store.models(organization, project).sort((a, b) => compareVersions(b.version, a.version) || b.createdAt - a.createdAt)
    return {
      trainings: this.store.trainings(organization, project).map((t) => this.trainingView(t, models)),
      charts: [{
        name: 'models',
        data: models.map((m) => ({ model_id: m.id, version: m.version, training_number: m.trainingNumber, created: m.created, formats: m.formats })),
      }],
    }
  }

  trainingView(training: StoredTraining, models: StoredModel[] = this.store.models(training.organization, training.project)): TrainingView {
    return {
      number: training.number, id: training.id, state: training.state, outcome: training.outcome, error: training.error,
      created_at: new Date(training.createdAt).toISOString(),
      trainer_id: training.trainerId, model_variant: training.modelVariant, hyperparameters: training.hyperparameters,
      base_model_uuid: training.baseModelUuid, last_update: training.lastUpdate,
      models: models.filter((m) => m.trainingNumber === training.number).map((m) => ({ id: m.id, version: m.version, formats: m.formats })),
    }
  }
}
