import { Database } from 'bun:sqlite'
import { mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type {
  BoxAnnotation, BoxDetection, Category, ClassificationAnnotation, ClassificationDetection, Detections, LoopImageState,
  PointAnnotation, PointDetection, SegmentationAnnotation, SegmentationDetection, TrainingOut,
} from '../contract/index.ts'
import { formatCreated } from '../contract/index.ts'
import { writeFolderDurably } from './durable-file.ts'
import { writeFileAtomic } from '../node/atomic-file.ts'
import { nameProblem, notFound, unprocessable } from './loop-errors.ts'
import { planModelUpload } from './model-versioning.ts'
import { seedFromText } from './project-generator.ts'

/**
 * Persistent state of the local Loop: one SQLite database (WAL) for rows and plain files for bytes.
 *
 *   <data>/loop.sqlite                                the rows (projects, categories, images, models, …)
 *   <data>/images/<org>/<project>/<uuid>.jpg          image bytes (name chosen here, id lives in the row)
 *   <data>/models/<org>/<project>/<uuid>/             one folder per stored model format
 *   <data>/kept-images/<org>/<project>-<time>/        images of a project deleted with keep_images
 *
 * Files are written first (temp + rename) and the row after, so a crash leaves at most an unreferenced
 * file, never a row without its bytes. Sessions are not stored here (see session-store.ts).
 */
export interface ProjectRef {
  organization: string
  project: string
}

export interface StoredProject extends ProjectRef {
  createdAt: number
}

export interface ImageAnnotations {
  box_annotations: BoxAnnotation[]
  point_annotations: PointAnnotation[]
  segmentation_annotations: SegmentationAnnotation[]
  classification_annotation: ClassificationAnnotation | null
}

export interface ImageDetections {
  box_detections: BoxDetection[]
  point_detections: PointDetection[]
  segmentation_detections: SegmentationDetection[]
  classification_detections: ClassificationDetection[]
}

export interface StoredImage extends ProjectRef, ImageAnnotations, ImageDetections {
  id: string
  state: LoopImageState
  set: 'train' | 'test'
  width: number
  height: number
  /** the uploader's `created` / `creation_date`, else the upload time as `YYYY-MM-DD_HH:MM:SS.mmm` */
  created: string
  uploadedAt: number
  source: string | null
  tags: string[]
  /** the latest Detections a trainer posted for this image (§4 #9) */
  trainer_detections: Detections | null
  /** relative to the data folder */
  file: string
}

export interface NewImage extends Partial<ImageAnnotations>, Partial<ImageDetections> {
  id: string
  state: LoopImageState
  set?: 'train' | 'test'
  width: number
  height: number
  created?: string | null
  source?: string | null
  tags?: string[]
  jpeg: Uint8Array
}

export interface StoredModel extends ProjectRef {
  id: string
  trainingNumber: number
  version: string
  created: string
  createdAt: number
  comment: string | null
  formats: string[]
}

export interface StoredModelFormat {
  modelId: string
  format: string
  /** relative to the data folder */
  folder: string
  files: string[]
  /** the uploaded model.json (without its bytes in `files`), if there was one */
  modelJson: Record<string, unknown> | null
}

export interface StoredTraining extends ProjectRef {
  number: number
  id: string
  createdAt: number
  /** `created` for imported or generated trainings, `running` after begin_training was sent, then the trainer's state */
  state: string
  trainerId: string | null
  modelVariant: string
  hyperparameters: Record<string, unknown>
  baseModelUuid: string | null
  /** the latest `update_training` payload (confusion matrix, image counts, best epoch) */
  lastUpdate: TrainingOut | null
}

export interface NewModelFiles {
  format: string
  files: { name: string; bytes: Uint8Array }[]
  modelJson: Record<string, unknown> | null
  comment?: string | null
}

const SCHEMA_VERSION = 1
const SCHEMA = `
CREATE TABLE IF NOT EXISTS organizations (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
  organization TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  project TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (organization, project)
);
CREATE TABLE IF NOT EXISTS categories (
  id TEXT PRIMARY KEY,
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  position INTEGER NOT NULL,
  body TEXT NOT NULL,
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS images (
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  id TEXT NOT NULL,
  state TEXT NOT NULL,
  set_name TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  created TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  source TEXT,
  tags TEXT NOT NULL,
  annotations TEXT NOT NULL,
  detections TEXT NOT NULL,
  trainer_detections TEXT,
  file TEXT NOT NULL,
  PRIMARY KEY (organization, project, id),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS images_by_state ON images (organization, project, state, uploaded_at);
CREATE TABLE IF NOT EXISTS trainings (
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  number INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  trainer_id TEXT,
  model_variant TEXT NOT NULL,
  hyperparameters TEXT NOT NULL,
  base_model_uuid TEXT,
  last_update TEXT,
  PRIMARY KEY (organization, project, number),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS models (
  id TEXT PRIMARY KEY,
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  training_number INTEGER NOT NULL,
  version TEXT NOT NULL,
  created TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  comment TEXT,
  UNIQUE (organization, project, version),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS model_formats (
  model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  format TEXT NOT NULL,
  folder TEXT NOT NULL,
  files TEXT NOT NULL,
  model_json TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (model_id, format)
);
CREATE TABLE IF NOT EXISTS deployment_targets (
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  PRIMARY KEY (organization, project),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS detector_statuses (
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  uuid TEXT NOT NULL,
  body TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (organization, project, uuid),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
`

type Row = Record<string, unknown>

const parseJson = <T>(text: unknown, fallback: T): T => (typeof text === 'string' ? (JSON.parse(text) as T) : fallback)

/** Every fifth uploaded image (by a hash of its id, so re-uploads agree) is a test image. */
export function setForUploadedImage(id: string): 'train' | 'test' {
  return seedFromText(id) % 5 === 0 ? 'test' : 'train'
}

export class LoopStore {
  private constructor(readonly dataFolder: string, private readonly db: Database) {}

  static async open(dataFolder: string): Promise<LoopStore> {
    await mkdir(dataFolder, { recursive: true })
    const db = new Database(join(dataFolder, 'loop.sqlite'), { create: true, strict: true })
    db.exec('PRAGMA journal_mode = WAL')
    // NORMAL is durable across process crashes in WAL mode; only a power loss may drop the last commits
    db.exec('PRAGMA synchronous = NORMAL')
    db.exec('PRAGMA foreign_keys = ON')
    db.exec('PRAGMA busy_timeout = 5000')
    const version = (db.query('PRAGMA user_version').get() as { user_version: number }).user_version
    if (version > SCHEMA_VERSION) {
      db.close()
      throw new Error(`${join(dataFolder, 'loop.sqlite')} has schema version ${version}, newer than this program's ${SCHEMA_VERSION}`)
    }
    db.exec(SCHEMA)
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
    return new LoopStore(dataFolder, db)
  }

  close(): void {
    this.db.close()
  }

  // ---------------------------------------------------------------- projects

  /** Creates the organization and project if missing; returns true when the project is new. */
  ensureProject(organization: string, project: string, nowMs = Date.now()): boolean {
    const problem = nameProblem('organization', organization) ?? nameProblem('project', project)
    if (problem) throw unprocessable(problem)
    return this.db.transaction(() => {
      this.db.query('INSERT OR IGNORE INTO organizations (id, created_at) VALUES ($id, $now)').run({ id: organization, now: nowMs })
      return this.db.query('INSERT OR IGNORE INTO projects (organization, project, created_at) VALUES ($organization, $project, $now)')
        .run({ organization, project, now: nowMs }).changes > 0
    })()
  }

  hasProject(organization: string, project: string): boolean {
    return this.db.query('SELECT 1 FROM projects WHERE organization = $organization AND project = $project').get({ organization, project }) !== null
  }

  /** Throws a 404 naming the project when it does not exist. */
  requireProject(organization: string, project: string): void {
    if (!this.hasProject(organization, project)) throw notFound(`project ${organization}/${project} does not exist`)
  }

  listProjects(): StoredProject[] {
    return (this.db.query('SELECT organization, project, created_at FROM projects ORDER BY organization, project').all() as Row[])
      .map((r) => ({ organization: String(r.organization), project: String(r.project), createdAt: Number(r.created_at) }))
  }

  /**
   * Deletes a project and everything in it. With `keepImages` the image files are moved aside to
   * `kept-images/` instead of being deleted (the rows go either way). Returns false for an unknown project.
   */
  async deleteProject(organization: string, project: string, keepImages: boolean): Promise<boolean> {
    if (!this.hasProject(organization, project)) return false
    this.db.transaction(() => {
      this.db.query('DELETE FROM projects WHERE organization = $organization AND project = $project').run({ organization, project })
      const left = this.db.query('SELECT 1 FROM projects WHERE organization = $organization').get({ organization })
      if (!left) this.db.query('DELETE FROM organizations WHERE id = $organization').run({ organization })
    })()
    const imageFolder = join(this.dataFolder, 'images', organization, project)
    if (keepImages) {
      const keptFolder = join(this.dataFolder, 'kept-images', organization, `${project}-${Date.now()}`)
      await mkdir(join(this.dataFolder, 'kept-images', organization), { recursive: true })
      await rename(imageFolder, keptFolder).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error
      })
    } else {
      await rm(imageFolder, { recursive: true, force: true })
    }
    await rm(join(this.dataFolder, 'models', organization, project), { recursive: true, force: true })
    return true
  }

  // ---------------------------------------------------------------- categories

  /** Replaces the project's categories (kept in the given order). */
  setCategories(organization: string, project: string, categories: readonly Category[]): void {
    this.requireProject(organization, project)
    this.db.transaction(() => {
      this.db.query('DELETE FROM categories WHERE organization = $organization AND project = $project').run({ organization, project })
      const insert = this.db.query('INSERT INTO categories (id, organization, project, position, body) VALUES ($id, $organization, $project, $position, $body)')
      categories.forEach((category, position) => insert.run({ id: category.id, organization, project, position, body: JSON.stringify(category) }))
    })()
  }

  categories(organization: string, project: string): Category[] {
    return (this.db.query('SELECT body FROM categories WHERE organization = $organization AND project = $project ORDER BY position').all({ organization, project }) as Row[])
      .map((r) => parseJson<Category>(r.body, undefined as never))
  }

  // ---------------------------------------------------------------- images

  hasImage(organization: string, project: string, id: string): boolean {
    return this.db.query('SELECT 1 FROM images WHERE organization = $organization AND project = $project AND id = $id').get({ organization, project, id }) !== null
  }

  /**
   * Stores an image unless one with the same id exists in the project (then nothing is written and
   * `created` is false): the outbox may send an item again after a crash between upload and delete.
   */
  async addImage(organization: string, project: string, image: NewImage, nowMs = Date.now()): Promise<{ created: boolean }> {
    this.requireProject(organization, project)
    if (this.hasImage(organization, project, image.id)) return { created: false }
    const file = join('images', organization, project, `${crypto.randomUUID()}.jpg`)
    await writeFileAtomic(join(this.dataFolder, file), image.jpeg)
    const annotations: ImageAnnotations = {
      box_annotations: image.box_annotations ?? [], point_annotations: image.point_annotations ?? [],
      segmentation_annotations: image.segmentation_annotations ?? [], classification_annotation: image.classification_annotation ?? null,
    }
    const detections: ImageDetections = {
      box_detections: image.box_detections ?? [], point_detections: image.point_detections ?? [],
      segmentation_detections: image.segmentation_detections ?? [], classification_detections: image.classification_detections ?? [],
    }
    let changes = 0
    try {
      changes = this.db.query(`INSERT OR IGNORE INTO images
        (organization, project, id, state, set_name, width, height, created, uploaded_at, source, tags, annotations, detections, trainer_detections, file)
        VALUES ($organization, $project, $id, $state, $set, $width, $height, $created, $now, $source, $tags, $annotations, $detections, NULL, $file)`).run({
        organization, project, id: image.id, state: image.state, set: image.set ?? setForUploadedImage(image.id),
        width: image.width, height: image.height, created: image.created ?? formatCreated(new Date(nowMs)), now: nowMs,
        source: image.source ?? null, tags: JSON.stringify(image.tags ?? []), annotations: JSON.stringify(annotations),
        detections: JSON.stringify(detections), file,
      }).changes
    } catch (error) {
      await rm(join(this.dataFolder, file), { force: true })
      throw error
    }
    // a concurrent upload of the same id won the insert; ours is the duplicate
    if (changes === 0) await rm(join(this.dataFolder, file), { force: true })
    return { created: changes > 0 }
  }

  /** Ids of the project's images, oldest first; without a state every image except the trash. */
  imageIds(organization: string, project: string, state?: LoopImageState): string[] {
    const rows = state
      ? this.db.query('SELECT id FROM images WHERE organization = $organization AND project = $project AND state = $state ORDER BY uploaded_at, id').all({ organization, project, state })
      : this.db.query(`SELECT id FROM images WHERE organization = $organization AND project = $project AND state != 'trash' ORDER BY uploaded_at, id`).all({ organization, project })
    return (rows as Row[]).map((r) => String(r.id))
  }

  image(organization: string, project: string, id: string): StoredImage | undefined {
    const row = this.db.query('SELECT * FROM images WHERE organization = $organization AND project = $project AND id = $id').get({ organization, project, id }) as Row | null
    return row ? imageFromRow(row) : undefined
  }

  /** The images with these ids, in the order asked for; unknown ids are left out. */
  images(organization: string, project: string, ids: readonly string[]): StoredImage[] {
    return ids.map((id) => this.image(organization, project, id)).filter((image): image is StoredImage => image !== undefined)
  }

  /** Every image of the project (optionally of one state), oldest first. */
  listImages(organization: string, project: string, state?: LoopImageState): StoredImage[] {
    const rows = state
      ? this.db.query('SELECT * FROM images WHERE organization = $organization AND project = $project AND state = $state ORDER BY uploaded_at, id').all({ organization, project, state })
      : this.db.query('SELECT * FROM images WHERE organization = $organization AND project = $project ORDER BY uploaded_at, id').all({ organization, project })
    return (rows as Row[]).map(imageFromRow)
  }

  imagePath(image: StoredImage): string {
    return join(this.dataFolder, image.file)
  }

  /** Stores trainer detections (§4 #9) on their images; returns the ids that were not found. */
  setTrainerDetections(organization: string, project: string, detections: readonly Detections[]): { stored: number; unknownImageIds: string[] } {
    this.requireProject(organization, project)
    const unknownImageIds: string[] = []
    let stored = 0
    this.db.transaction(() => {
      const update = this.db.query('UPDATE images SET trainer_detections = $body WHERE organization = $organization AND project = $project AND id = $id')
      for (const entry of detections) {
        const changes = update.run({ organization, project, id: entry.image_id ?? '', body: JSON.stringify(entry) }).changes
        if (changes > 0) stored++
        else unknownImageIds.push(entry.image_id ?? '')
      }
    })()
    return { stored, unknownImageIds }
  }

  /** Adds or replaces (by annotation id) a segmentation annotation on its image. */
  upsertSegmentationAnnotation(organization: string, project: string, annotation: SegmentationAnnotation): void {
    this.requireProject(organization, project)
    this.db.transaction(() => {
      const row = this.db.query('SELECT annotations FROM images WHERE organization = $organization AND project = $project AND id = $id')
        .get({ organization, project, id: annotation.image_id }) as Row | null
      if (!row) throw notFound(`image ${annotation.image_id} does not exist in ${organization}/${project}`)
      const annotations = parseJson<ImageAnnotations>(row.annotations, emptyAnnotations())
      const others = (annotations.segmentation_annotations ?? []).filter((a) => a.id !== annotation.id)
      annotations.segmentation_annotations = [...others, annotation]
      this.db.query('UPDATE images SET annotations = $body WHERE organization = $organization AND project = $project AND id = $id')
        .run({ organization, project, id: annotation.image_id, body: JSON.stringify(annotations) })
    })()
  }

  imageCounts(organization: string, project: string): Record<string, number> {
    const rows = this.db.query('SELECT state, COUNT(*) AS n FROM images WHERE organization = $organization AND project = $project GROUP BY state').all({ organization, project }) as Row[]
    return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]))
  }

  // ---------------------------------------------------------------- trainings

  /** A new training numbered one above the project's highest. */
  createTraining(organization: string, project: string, fields: {
    state?: string; trainerId?: string | null; modelVariant?: string; hyperparameters?: Record<string, unknown>; baseModelUuid?: string | null
  } = {}, nowMs = Date.now()): StoredTraining {
    this.requireProject(organization, project)
    return this.db.transaction(() => {
      const highest = this.db.query('SELECT MAX(number) AS n FROM trainings WHERE organization = $organization AND project = $project').get({ organization, project }) as Row
      const number = (highest.n === null ? 0 : Number(highest.n)) + 1
      const id = crypto.randomUUID()
      this.db.query(`INSERT INTO trainings (organization, project, number, id, created_at, state, trainer_id, model_variant, hyperparameters, base_model_uuid, last_update)
        VALUES ($organization, $project, $number, $id, $now, $state, $trainer, $variant, $hyperparameters, $base, NULL)`).run({
        organization, project, number, id, now: nowMs, state: fields.state ?? 'created', trainer: fields.trainerId ?? null,
        variant: fields.modelVariant ?? '', hyperparameters: JSON.stringify(fields.hyperparameters ?? {}), base: fields.baseModelUuid ?? null,
      })
      return this.training(organization, project, number)!
    })()
  }

  training(organization: string, project: string, number: number): StoredTraining | undefined {
    const row = this.db.query('SELECT * FROM trainings WHERE organization = $organization AND project = $project AND number = $number').get({ organization, project, number }) as Row | null
    return row ? trainingFromRow(row) : undefined
  }

  /** Newest first. */
  trainings(organization: string, project: string): StoredTraining[] {
    return (this.db.query('SELECT * FROM trainings WHERE organization = $organization AND project = $project ORDER BY number DESC').all({ organization, project }) as Row[]).map(trainingFromRow)
  }

  updateTraining(organization: string, project: string, number: number, fields: { state?: string; lastUpdate?: TrainingOut; trainerId?: string }): void {
    const current = this.training(organization, project, number)
    if (!current) throw notFound(`training ${number} does not exist in ${organization}/${project}`)
    this.db.query('UPDATE trainings SET state = $state, last_update = $update, trainer_id = $trainer WHERE organization = $organization AND project = $project AND number = $number').run({
      organization, project, number, state: fields.state ?? current.state,
      update: JSON.stringify(fields.lastUpdate ?? current.lastUpdate), trainer: fields.trainerId ?? current.trainerId,
    })
  }

  /** The newest training this trainer was given, else the project's newest. */
  currentTraining(organization: string, project: string, trainerId?: string): StoredTraining | undefined {
    const all = this.trainings(organization, project)
    return all.find((t) => trainerId !== undefined && t.trainerId === trainerId) ?? all[0]
  }

  // ---------------------------------------------------------------- models

  /**
   * Stores one format of a model. Without `modelId`: the format joins training n's latest model if that
   * model lacks it, else a new version `<n>.<k+1>` is created (model-versioning.ts). With `modelId`
   * (the converter's upload, §9): the format is added to that model or replaces its files.
   * Files land in a fresh folder before any row changes.
   */
  async addModelFormat(organization: string, project: string, target: { trainingNumber: number } | { modelId: string }, upload: NewModelFiles, nowMs = Date.now()): Promise<{ model: StoredModel; created: boolean }> {
    this.requireProject(organization, project)
    if ('trainingNumber' in target && !this.training(organization, project, target.trainingNumber)) {
      throw notFound(`training ${target.trainingNumber} does not exist in ${organization}/${project}`)
    }
    if ('modelId' in target && !this.model(organization, project, target.modelId)) {
      throw notFound(`model ${target.modelId} does not exist in ${organization}/${project}`)
    }
    const folder = join('models', organization, project, crypto.randomUUID())
    await mkdir(join(this.dataFolder, 'models', organization, project), { recursive: true })
    await writeFolderDurably(join(this.dataFolder, folder), upload.files)
    let replacedFolder: string | undefined
    let result: { model: StoredModel; created: boolean }
    try {
      result = this.db.transaction(() => {
        let modelId: string
        let created = false
        if ('modelId' in target) {
          modelId = target.modelId
        } else {
          const models = this.models(organization, project).filter((m) => m.trainingNumber === target.trainingNumber)
          const plan = planModelUpload(target.trainingNumber, models, upload.format)
          if (plan.kind === 'add-format') {
            modelId = plan.modelId
          } else {
            modelId = crypto.randomUUID()
            created = true
            this.db.query(`INSERT INTO models (id, organization, project, training_number, version, created, created_at, comment)
              VALUES ($id, $organization, $project, $training, $version, $created, $now, $comment)`).run({
              id: modelId, organization, project, training: target.trainingNumber, version: plan.version,
              created: formatCreated(new Date(nowMs)), now: nowMs, comment: upload.comment ?? null,
            })
          }
        }
        const previous = this.db.query('SELECT folder FROM model_formats WHERE model_id = $id AND format = $format').get({ id: modelId, format: upload.format }) as Row | null
        replacedFolder = previous ? String(previous.folder) : undefined
        this.db.query(`INSERT OR REPLACE INTO model_formats (model_id, format, folder, files, model_json, created_at)
          VALUES ($id, $format, $folder, $files, $json, $now)`).run({
          id: modelId, format: upload.format, folder, files: JSON.stringify(upload.files.map((f) => f.name)),
          json: upload.modelJson ? JSON.stringify(upload.modelJson) : null, now: nowMs,
        })
        return { model: this.model(organization, project, modelId)!, created }
      })()
    } catch (error) {
      await rm(join(this.dataFolder, folder), { recursive: true, force: true })
      throw error
    }
    if (replacedFolder) await rm(join(this.dataFolder, replacedFolder), { recursive: true, force: true })
    return result
  }

  model(organization: string, project: string, id: string): StoredModel | undefined {
    const row = this.db.query('SELECT * FROM models WHERE organization = $organization AND project = $project AND id = $id').get({ organization, project, id }) as Row | null
    return row ? this.modelFromRow(row) : undefined
  }

  modelByVersion(organization: string, project: string, version: string): StoredModel | undefined {
    const row = this.db.query('SELECT * FROM models WHERE organization = $organization AND project = $project AND version = $version').get({ organization, project, version }) as Row | null
    return row ? this.modelFromRow(row) : undefined
  }

  /** Oldest first. */
  models(organization: string, project: string): StoredModel[] {
    return (this.db.query('SELECT * FROM models WHERE organization = $organization AND project = $project ORDER BY created_at, training_number, version').all({ organization, project }) as Row[])
      .map((r) => this.modelFromRow(r))
  }

  modelFormat(modelId: string, format: string): StoredModelFormat | undefined {
    const row = this.db.query('SELECT * FROM model_formats WHERE model_id = $id AND format = $format').get({ id: modelId, format }) as Row | null
    if (!row) return undefined
    return {
      modelId, format, folder: String(row.folder), files: parseJson<string[]>(row.files, []),
      modelJson: parseJson<Record<string, unknown> | null>(row.model_json, null),
    }
  }

  private modelFromRow(row: Row): StoredModel {
    const formats = (this.db.query('SELECT format FROM model_formats WHERE model_id = $id ORDER BY created_at, format').all({ id: String(row.id) }) as Row[]).map((r) => String(r.format))
    return {
      id: String(row.id), organization: String(row.organization), project: String(row.project),
      trainingNumber: Number(row.training_number), version: String(row.version), created: String(row.created),
      createdAt: Number(row.created_at), comment: row.comment === null ? null : String(row.comment), formats,
    }
  }

  // ---------------------------------------------------------------- deployment target

  setDeploymentTarget(organization: string, project: string, modelId: string): StoredModel {
    const model = this.model(organization, project, modelId)
    if (!model) throw notFound(`model ${modelId} does not exist in ${organization}/${project}`)
    this.db.query('INSERT OR REPLACE INTO deployment_targets (organization, project, model_id) VALUES ($organization, $project, $id)').run({ organization, project, id: modelId })
    return model
  }

  clearDeploymentTarget(organization: string, project: string): void {
    this.db.query('DELETE FROM deployment_targets WHERE organization = $organization AND project = $project').run({ organization, project })
  }

  deploymentTarget(organization: string, project: string): StoredModel | undefined {
    const row = this.db.query('SELECT model_id FROM deployment_targets WHERE organization = $organization AND project = $project').get({ organization, project }) as Row | null
    return row ? this.model(organization, project, String(row.model_id)) : undefined
  }

  // ---------------------------------------------------------------- detector statuses

  recordDetectorStatus(organization: string, project: string, uuid: string, status: unknown, nowMs = Date.now()): void {
    this.requireProject(organization, project)
    this.db.query('INSERT OR REPLACE INTO detector_statuses (organization, project, uuid, body, received_at) VALUES ($organization, $project, $uuid, $body, $now)')
      .run({ organization, project, uuid, body: JSON.stringify(status), now: nowMs })
  }

  detectorStatuses(organization: string, project: string): { uuid: string; status: unknown; receivedAt: number }[] {
    return (this.db.query('SELECT uuid, body, received_at FROM detector_statuses WHERE organization = $organization AND project = $project ORDER BY uuid').all({ organization, project }) as Row[])
      .map((r) => ({ uuid: String(r.uuid), status: parseJson<unknown>(r.body, null), receivedAt: Number(r.received_at) }))
  }
}

function emptyAnnotations(): ImageAnnotations {
  return { box_annotations: [], point_annotations: [], segmentation_annotations: [], classification_annotation: null }
}

function imageFromRow(row: Row): StoredImage {
  const annotations = { ...emptyAnnotations(), ...parseJson<Partial<ImageAnnotations>>(row.annotations, {}) }
  const detections = parseJson<ImageDetections>(row.detections, { box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [] })
  return {
    organization: String(row.organization), project: String(row.project), id: String(row.id),
    state: String(row.state) as LoopImageState, set: String(row.set_name) === 'test' ? 'test' : 'train',
    width: Number(row.width), height: Number(row.height), created: String(row.created), uploadedAt: Number(row.uploaded_at),
    source: row.source === null ? null : String(row.source), tags: parseJson<string[]>(row.tags, []),
    ...annotations, ...detections,
    trainer_detections: parseJson<Detections | null>(row.trainer_detections, null),
    file: String(row.file),
  }
}

function trainingFromRow(row: Row): StoredTraining {
  return {
    organization: String(row.organization), project: String(row.project), number: Number(row.number), id: String(row.id),
    createdAt: Number(row.created_at), state: String(row.state), trainerId: row.trainer_id === null ? null : String(row.trainer_id),
    modelVariant: String(row.model_variant), hyperparameters: parseJson<Record<string, unknown>>(row.hyperparameters, {}),
    baseModelUuid: row.base_model_uuid === null ? null : String(row.base_model_uuid),
    lastUpdate: parseJson<TrainingOut | null>(row.last_update, null),
  }
}
