import { createHash } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type {
  BoxAnnotation, BoxDetection, ClassificationAnnotation, ClassificationDetection, Detections, LoopImageState,
  PointAnnotation, PointDetection, SegmentationAnnotation, SegmentationDetection,
} from '../contract/index.ts'
import { formatCreated } from '../contract/index.ts'
import { writeFileAtomic } from '../foundation/atomic-file.ts'
import { notFound } from './loop-errors.ts'
import { seedFromText } from './project-generator.ts'
import type { Row, SqliteDatabase } from './sqlite-database.ts'

/**
 * The local Loop's images: rows in the `images` table, bytes in `<data>/images/<org>/<project>/<uuid>.jpg`.
 * Ids are assigned here, as the Loop does (time-ordered UUIDs), never taken from an uploader's file name: that
 * name is kept as `file_name`, and together with the bytes' SHA-256 it recognises an outbox that sends an item
 * again after a crash. Images of data folders written before ids were assigned keep their old ids.
 */
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

export interface StoredImage extends ImageAnnotations, ImageDetections {
  organization: string
  project: string
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
  /** the name of the uploaded JPEG part (`image_<stem>.jpg`); null for generated images */
  fileName: string | null
  /** the uploader's `camera_id`, if it sent one */
  cameraId: string | null
  /** the latest Detections a trainer posted for this image (§4 #9) */
  trainer_detections: Detections | null
  /** relative to the data folder */
  file: string
}

export interface NewImage extends Partial<ImageAnnotations>, Partial<ImageDetections> {
  /** generated projects bring their own ids; uploads get a new one */
  id?: string
  /** the uploader's file name; with the bytes it identifies a repeated upload */
  fileName?: string | null
  state: LoopImageState
  set?: 'train' | 'test'
  width: number
  height: number
  created?: string | null
  source?: string | null
  cameraId?: string | null
  tags?: string[]
  jpeg: Uint8Array
}

const parseJson = <T>(text: unknown, fallback: T): T => (typeof text === 'string' ? (JSON.parse(text) as T) : fallback)

/** Every fifth uploaded image (by a hash of its id, so the choice never changes) is a test image. */
export function setForUploadedImage(id: string): 'train' | 'test' {
  return seedFromText(id) % 5 === 0 ? 'test' : 'train'
}

/** A version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by creation time. */
export function timeOrderedUuid(nowMs = Date.now()): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  let time = Math.max(0, Math.floor(nowMs))
  for (let i = 5; i >= 0; i--) {
    bytes[i] = time % 256
    time = Math.floor(time / 256)
  }
  bytes[6] = 0x70 | (bytes[6]! & 0x0f)
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export class LoopImages {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly dataFolder: string,
    private readonly requireProject: (organization: string, project: string) => void,
  ) {}

  has(organization: string, project: string, id: string): boolean {
    return this.db.query('SELECT 1 FROM images WHERE organization = $organization AND project = $project AND id = $id').get({ organization, project, id }) !== undefined
  }

  /**
   * Stores an image under a new id. An upload with the file name and bytes of an image already in the project
   * is the outbox sending an item again (a crash between upload and delete): nothing is written, `created` is
   * false and `id` names the stored image.
   */
  async add(organization: string, project: string, image: NewImage, nowMs = Date.now()): Promise<{ created: boolean; id: string }> {
    this.requireProject(organization, project)
    const fileName = image.fileName ?? null
    const sha256 = fileName === null ? null : createHash('sha256').update(image.jpeg).digest('hex')
    const earlier = fileName === null ? undefined : this.findUpload(organization, project, fileName, sha256!)
    if (earlier) return { created: false, id: earlier }
    const id = image.id ?? timeOrderedUuid(nowMs)
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
    let stored: { created: boolean; id: string }
    try {
      // the check is repeated inside the transaction: a concurrent upload of the same item may have won meanwhile
      stored = this.db.transaction(() => {
        const winner = fileName === null ? undefined : this.findUpload(organization, project, fileName, sha256!)
        if (winner) return { created: false, id: winner }
        const changes = this.db.query(`INSERT OR IGNORE INTO images
          (organization, project, id, state, set_name, width, height, created, uploaded_at, source, tags, annotations, detections, trainer_detections, file, file_name, content_sha256, camera_id)
          VALUES ($organization, $project, $id, $state, $set, $width, $height, $created, $now, $source, $tags, $annotations, $detections, NULL, $file, $fileName, $sha256, $camera)`).run({
          organization, project, id, state: image.state, set: image.set ?? setForUploadedImage(id),
          width: image.width, height: image.height, created: image.created ?? formatCreated(new Date(nowMs)), now: nowMs,
          source: image.source ?? null, tags: JSON.stringify(image.tags ?? []), annotations: JSON.stringify(annotations),
          detections: JSON.stringify(detections), file, fileName, sha256, camera: image.cameraId ?? null,
        }).changes
        return { created: changes > 0, id }
      })
    } catch (error) {
      await rm(join(this.dataFolder, file), { force: true })
      throw error
    }
    if (!stored.created) await rm(join(this.dataFolder, file), { force: true })
    return stored
  }

  /** The id of an image uploaded with this file name and these bytes (images from before version 2 match by name). */
  private findUpload(organization: string, project: string, fileName: string, sha256: string): string | undefined {
    const row = this.db.query(`SELECT id FROM images WHERE organization = $organization AND project = $project AND file_name = $fileName
      AND (content_sha256 = $sha256 OR content_sha256 IS NULL) LIMIT 1`).get({ organization, project, fileName, sha256 })
    return row ? String(row.id) : undefined
  }

  /** Ids of the project's images, oldest first; without a state every image except the trash. */
  ids(organization: string, project: string, state?: LoopImageState): string[] {
    const rows = state
      ? this.db.query('SELECT id FROM images WHERE organization = $organization AND project = $project AND state = $state ORDER BY uploaded_at, id').all({ organization, project, state })
      : this.db.query(`SELECT id FROM images WHERE organization = $organization AND project = $project AND state != 'trash' ORDER BY uploaded_at, id`).all({ organization, project })
    return rows.map((r) => String(r.id))
  }

  get(organization: string, project: string, id: string): StoredImage | undefined {
    const row = this.db.query('SELECT * FROM images WHERE organization = $organization AND project = $project AND id = $id').get({ organization, project, id })
    return row ? imageFromRow(row) : undefined
  }

  /** The images with these ids, in the order asked for; unknown ids are left out. */
  byIds(organization: string, project: string, ids: readonly string[]): StoredImage[] {
    return ids.map((id) => this.get(organization, project, id)).filter((image): image is StoredImage => image !== undefined)
  }

  /** Every image of the project (optionally of one state), oldest first. */
  list(organization: string, project: string, state?: LoopImageState): StoredImage[] {
    const rows = state
      ? this.db.query('SELECT * FROM images WHERE organization = $organization AND project = $project AND state = $state ORDER BY uploaded_at, id').all({ organization, project, state })
      : this.db.query('SELECT * FROM images WHERE organization = $organization AND project = $project ORDER BY uploaded_at, id').all({ organization, project })
    return rows.map(imageFromRow)
  }

  path(image: StoredImage): string {
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
    })
    return { stored, unknownImageIds }
  }

  /** Adds or replaces (by annotation id) a segmentation annotation on its image. */
  upsertSegmentationAnnotation(organization: string, project: string, annotation: SegmentationAnnotation): void {
    this.requireProject(organization, project)
    this.db.transaction(() => {
      const row = this.db.query('SELECT annotations FROM images WHERE organization = $organization AND project = $project AND id = $id')
        .get({ organization, project, id: annotation.image_id })
      if (!row) throw notFound(`image ${annotation.image_id} does not exist in ${organization}/${project}`)
      const annotations = parseJson<ImageAnnotations>(row.annotations, emptyAnnotations())
      const others = (annotations.segmentation_annotations ?? []).filter((a) => a.id !== annotation.id)
      annotations.segmentation_annotations = [...others, annotation]
      this.db.query('UPDATE images SET annotations = $body WHERE organization = $organization AND project = $project AND id = $id')
        .run({ organization, project, id: annotation.image_id, body: JSON.stringify(annotations) })
    })
  }

  /** Moves an image to `state`; false when there is no such image. */
  setState(organization: string, project: string, id: string, state: LoopImageState): boolean {
    return this.db.query('UPDATE images SET state = $state WHERE organization = $organization AND project = $project AND id = $id')
      .run({ organization, project, id, state }).changes > 0
  }

  /** Replaces an image's annotations with what `change` makes of them, in one transaction; 404 for an unknown image. */
  updateAnnotations(organization: string, project: string, id: string, change: (annotations: ImageAnnotations) => ImageAnnotations): void {
    this.db.transaction(() => {
      const row = this.db.query('SELECT annotations FROM images WHERE organization = $organization AND project = $project AND id = $id').get({ organization, project, id })
      if (!row) throw notFound(`image ${id} does not exist in ${organization}/${project}`)
      const changed = change({ ...emptyAnnotations(), ...parseJson<Partial<ImageAnnotations>>(row.annotations, {}) })
      this.db.query('UPDATE images SET annotations = $body WHERE organization = $organization AND project = $project AND id = $id')
        .run({ organization, project, id, body: JSON.stringify(changed) })
    })
  }

  counts(organization: string, project: string): Record<string, number> {
    const rows = this.db.query('SELECT state, COUNT(*) AS n FROM images WHERE organization = $organization AND project = $project GROUP BY state').all({ organization, project })
    return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]))
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
    fileName: row.file_name === null || row.file_name === undefined ? null : String(row.file_name),
    cameraId: row.camera_id === null || row.camera_id === undefined ? null : String(row.camera_id),
    ...annotations, ...detections,
    trainer_detections: parseJson<Detections | null>(row.trainer_detections, null),
    file: String(row.file),
  }
}
