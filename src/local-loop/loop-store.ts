import { mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Category, TrainingOut } from '../contract/index.ts'
import { formatCreated } from '../contract/index.ts'
import { writeFileAtomic, writeFolderDurably } from '../foundation/atomic-file.ts'
import { SqliteDatabase, type Row } from './sqlite-database.ts'
import { nameProblem, notFound, unprocessable } from './loop-errors.ts'
import { planModelUpload } from './model-versioning.ts'
import { ImageGallery } from './image-gallery.ts'
import { LoopImages } from './image-records.ts'
import { prepareSchema } from './loop-schema.ts'

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
  /** how it ended, once the trainer reached ready_for_cleanup: completed, stopped, aborted or failed */
  outcome: TrainingOutcome | null
  /** why it failed: the trainer's errors, `step: message; …` */
  error: string | null
}

export type TrainingOutcome = 'completed' | 'stopped' | 'aborted' | 'failed'

export interface NewModelFiles {
  format: string
  files: { name: string; bytes: Uint8Array }[]
  modelJson: Record<string, unknown> | null
  comment?: string | null
}

const parseJson = <T>(text: unknown, fallback: T): T => (typeof text === 'string' ? (JSON.parse(text) as T) : fallback)

export class LoopStore {
  readonly images: LoopImages
  readonly gallery: ImageGallery

  private constructor(readonly dataFolder: string, private readonly db: SqliteDatabase) {
    this.images = new LoopImages(db, dataFolder, (organization, project) => this.requireProject(organization, project))
    this.gallery = new ImageGallery(db)
  }

  static async open(dataFolder: string): Promise<LoopStore> {
    await mkdir(dataFolder, { recursive: true })
    const db = new SqliteDatabase(join(dataFolder, 'loop.sqlite'))
    db.exec('PRAGMA journal_mode = WAL')
    // NORMAL is durable across process crashes in WAL mode; only a power loss may drop the last commits
    db.exec('PRAGMA synchronous = NORMAL')
    db.exec('PRAGMA foreign_keys = ON')
    db.exec('PRAGMA busy_timeout = 5000')
    try {
      prepareSchema(db, join(dataFolder, 'loop.sqlite'))
    } catch (error) {
      db.close()
      throw error
    }
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
    })
  }

  hasProject(organization: string, project: string): boolean {
    return this.db.query('SELECT 1 FROM projects WHERE organization = $organization AND project = $project').get({ organization, project }) !== undefined
  }

  /** Throws a 404 naming the project when it does not exist. */
  requireProject(organization: string, project: string): void {
    if (!this.hasProject(organization, project)) throw notFound(`project ${organization}/${project} does not exist`)
  }

  listProjects(): StoredProject[] {
    return this.db.query('SELECT organization, project, created_at FROM projects ORDER BY organization, project').all()
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
    })
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
    await rm(join(this.dataFolder, 'thumbnails', organization, project), { recursive: true, force: true })
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
    })
  }

  categories(organization: string, project: string): Category[] {
    return this.db.query('SELECT body FROM categories WHERE organization = $organization AND project = $project ORDER BY position').all({ organization, project })
      .map((r) => parseJson<Category>(r.body, undefined as never))
  }

  // ---------------------------------------------------------------- trainings

  /** A new training numbered one above the project's highest. */
  createTraining(organization: string, project: string, fields: {
    state?: string; trainerId?: string | null; modelVariant?: string; hyperparameters?: Record<string, unknown>; baseModelUuid?: string | null
  } = {}, nowMs = Date.now()): StoredTraining {
    this.requireProject(organization, project)
    return this.db.transaction(() => {
      const highest = this.db.query('SELECT MAX(number) AS n FROM trainings WHERE organization = $organization AND project = $project').get({ organization, project })?.n
      const number = (highest === null || highest === undefined ? 0 : Number(highest)) + 1
      const id = crypto.randomUUID()
      this.db.query(`INSERT INTO trainings (organization, project, number, id, created_at, state, trainer_id, model_variant, hyperparameters, base_model_uuid, last_update)
        VALUES ($organization, $project, $number, $id, $now, $state, $trainer, $variant, $hyperparameters, $base, NULL)`).run({
        organization, project, number, id, now: nowMs, state: fields.state ?? 'created', trainer: fields.trainerId ?? null,
        variant: fields.modelVariant ?? '', hyperparameters: JSON.stringify(fields.hyperparameters ?? {}), base: fields.baseModelUuid ?? null,
      })
      return this.training(organization, project, number)!
    })
  }

  training(organization: string, project: string, number: number): StoredTraining | undefined {
    const row = this.db.query('SELECT * FROM trainings WHERE organization = $organization AND project = $project AND number = $number').get({ organization, project, number })
    return row ? trainingFromRow(row) : undefined
  }

  /** Newest first. */
  trainings(organization: string, project: string): StoredTraining[] {
    return this.db.query('SELECT * FROM trainings WHERE organization = $organization AND project = $project ORDER BY number DESC').all({ organization, project }).map(trainingFromRow)
  }

  updateTraining(organization: string, project: string, number: number, fields: {
    state?: string; lastUpdate?: TrainingOut; trainerId?: string; outcome?: TrainingOutcome; error?: string | null
  }): void {
    const current = this.training(organization, project, number)
    if (!current) throw notFound(`training ${number} does not exist in ${organization}/${project}`)
    this.db.query(`UPDATE trainings SET state = $state, last_update = $update, trainer_id = $trainer, outcome = $outcome, error = $error
      WHERE organization = $organization AND project = $project AND number = $number`).run({
      organization, project, number, state: fields.state ?? current.state,
      update: JSON.stringify(fields.lastUpdate ?? current.lastUpdate), trainer: fields.trainerId ?? current.trainerId,
      outcome: fields.outcome ?? current.outcome, error: fields.error !== undefined ? fields.error : current.error,
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
        const previous = this.db.query('SELECT folder FROM model_formats WHERE model_id = $id AND format = $format').get({ id: modelId, format: upload.format })
        replacedFolder = previous ? String(previous.folder) : undefined
        this.db.query(`INSERT OR REPLACE INTO model_formats (model_id, format, folder, files, model_json, created_at)
          VALUES ($id, $format, $folder, $files, $json, $now)`).run({
          id: modelId, format: upload.format, folder, files: JSON.stringify(upload.files.map((f) => f.name)),
          json: upload.modelJson ? JSON.stringify(upload.modelJson) : null, now: nowMs,
        })
        return { model: this.model(organization, project, modelId)!, created }
      })
    } catch (error) {
      await rm(join(this.dataFolder, folder), { recursive: true, force: true })
      throw error
    }
    if (replacedFolder) await rm(join(this.dataFolder, replacedFolder), { recursive: true, force: true })
    return result
  }

  model(organization: string, project: string, id: string): StoredModel | undefined {
    const row = this.db.query('SELECT * FROM models WHERE organization = $organization AND project = $project AND id = $id').get({ organization, project, id })
    return row ? this.modelFromRow(row) : undefined
  }

  modelByVersion(organization: string, project: string, version: string): StoredModel | undefined {
    const row = this.db.query('SELECT * FROM models WHERE organization = $organization AND project = $project AND version = $version').get({ organization, project, version })
    return row ? this.modelFromRow(row) : undefined
  }

  /** Oldest first. */
  models(organization: string, project: string): StoredModel[] {
    return this.db.query('SELECT * FROM models WHERE organization = $organization AND project = $project ORDER BY created_at, training_number, version').all({ organization, project })
      .map((r) => this.modelFromRow(r))
  }

  modelFormat(modelId: string, format: string): StoredModelFormat | undefined {
    const row = this.db.query('SELECT * FROM model_formats WHERE model_id = $id AND format = $format').get({ id: modelId, format })
    if (!row) return undefined
    return {
      modelId, format, folder: String(row.folder), files: parseJson<string[]>(row.files, []),
      modelJson: parseJson<Record<string, unknown> | null>(row.model_json, null),
    }
  }

  private modelFromRow(row: Row): StoredModel {
    const formats = this.db.query('SELECT format FROM model_formats WHERE model_id = $id ORDER BY created_at, format').all({ id: String(row.id) }).map((r) => String(r.format))
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
    const row = this.db.query('SELECT model_id FROM deployment_targets WHERE organization = $organization AND project = $project').get({ organization, project })
    return row ? this.model(organization, project, String(row.model_id)) : undefined
  }

  // ---------------------------------------------------------------- detector statuses

  recordDetectorStatus(organization: string, project: string, uuid: string, status: unknown, nowMs = Date.now()): void {
    this.requireProject(organization, project)
    this.db.query('INSERT OR REPLACE INTO detector_statuses (organization, project, uuid, body, received_at) VALUES ($organization, $project, $uuid, $body, $now)')
      .run({ organization, project, uuid, body: JSON.stringify(status), now: nowMs })
  }

  detectorStatuses(organization: string, project: string): { uuid: string; status: unknown; receivedAt: number }[] {
    return this.db.query('SELECT uuid, body, received_at FROM detector_statuses WHERE organization = $organization AND project = $project ORDER BY uuid').all({ organization, project })
      .map((r) => ({ uuid: String(r.uuid), status: parseJson<unknown>(r.body, null), receivedAt: Number(r.received_at) }))
  }
}

function trainingFromRow(row: Row): StoredTraining {
  return {
    organization: String(row.organization), project: String(row.project), number: Number(row.number), id: String(row.id),
    createdAt: Number(row.created_at), state: String(row.state), trainerId: row.trainer_id === null ? null : String(row.trainer_id),
    modelVariant: String(row.model_variant), hyperparameters: parseJson<Record<string, unknown>>(row.hyperparameters, {}),
    baseModelUuid: row.base_model_uuid === null ? null : String(row.base_model_uuid),
    lastUpdate: parseJson<TrainingOut | null>(row.last_update, null),
    outcome: row.outcome === null || row.outcome === undefined ? null : (String(row.outcome) as TrainingOutcome),
    error: row.error === null || row.error === undefined ? null : String(row.error),
  }
}
