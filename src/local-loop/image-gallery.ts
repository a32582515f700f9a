import type { GalleryItem, GalleryPage, GalleryQuery, LoopImageState } from '../contract/index.ts'
import type { Params, SqliteDatabase } from './sqlite-database.ts'

/**
 * The web page's gallery: one page of a project's images, newest upload first, filtered by state, tag, source,
 * camera and created day, counted and paged in SQLite (the indexes of schema version 3), so a page of a project with
 * many thousand images costs one indexed query and the rows of that page only.
 */
export const DEFAULT_PER_PAGE = 48
export const MAX_PER_PAGE = 200
const MAX_FACET_VALUES = 100

export interface GalleryFilter {
  state?: LoopImageState
  tag?: string
  source?: string
  camera?: string
  /** YYYY-MM-DD, inclusive */
  from?: string
  to?: string
}

/** The filters that compare one column (or a tag) with the value given, each bound as its own name. */
const FILTER_CLAUSES: [key: 'state' | 'tag' | 'source' | 'camera', clause: string][] = [
  ['state', 'state = $state'],
  ['tag', 'EXISTS (SELECT 1 FROM json_each(images.tags) WHERE json_each.value = $tag)'],
  ['source', 'source = $source'],
  ['camera', 'camera_id = $camera'],
]

/** The WHERE clause and its parameters for a filter (pure). */
export function galleryWhere(organization: string, project: string, filter: GalleryFilter): { sql: string; params: Params } {
  const clauses = ['organization = $organization', 'project = $project']
  const params: Params = { organization, project }
  for (const [key, clause] of FILTER_CLAUSES) {
    const value = filter[key]
    if (!value) continue
    clauses.push(clause)
    params[key] = value
  }
  // `created` is `YYYY-MM-DD_HH:MM:SS.mmm` (or an uploader's ISO text), so days compare as text, on the index
  if (filter.from) {
    clauses.push('created >= $from')
    params.from = filter.from
  }
  if (filter.to) {
    clauses.push('created < $afterTo')
    params.afterTo = nextDay(filter.to)
  }
  return { sql: clauses.join(' AND '), params }
}

/** The day after `YYYY-MM-DD` (pure). */
export function nextDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`)
  if (Number.isNaN(date.getTime())) return day
  return new Date(date.getTime() + 86_400_000).toISOString().slice(0, 10)
}

/** Page and page size of a query, within bounds (pure). */
export function galleryPaging(query: Pick<GalleryQuery, 'page' | 'per_page'>): { page: number; perPage: number } {
  const page = Math.max(1, Number(query.page ?? 1))
  const perPage = Math.min(MAX_PER_PAGE, Math.max(1, Number(query.per_page ?? DEFAULT_PER_PAGE)))
  return { page, perPage }
}

const COUNTED = `
  json_array_length(annotations, '$.box_annotations') + json_array_length(annotations, '$.point_annotations')
    + COALESCE(json_array_length(annotations, '$.segmentation_annotations'), 0) AS annotation_count,
  json_array_length(detections, '$.box_detections') + json_array_length(detections, '$.point_detections')
    + json_array_length(detections, '$.segmentation_detections') AS detection_count`

export class ImageGallery {
  /** per project: the facets and the image count and newest upload they were computed for (uploads change both) */
  private readonly facetCache = new Map<string, { key: string; facets: GalleryPage['facets'] }>()

  constructor(private readonly db: SqliteDatabase) {}

  page(organization: string, project: string, query: GalleryQuery): GalleryPage {
    const { page, perPage } = galleryPaging(query)
    const where = galleryWhere(organization, project, query)
    const total = Number(this.db.query(`SELECT COUNT(*) AS n FROM images WHERE ${where.sql}`).get(where.params)?.n ?? 0)
    const rows = this.db.query(`SELECT id, state, set_name, width, height, created, source, camera_id, tags, ${COUNTED}
      FROM images WHERE ${where.sql} ORDER BY uploaded_at DESC, id DESC LIMIT $limit OFFSET $offset`)
      .all({ ...where.params, limit: perPage, offset: (page - 1) * perPage })
    const images: GalleryItem[] = rows.map((row) => ({
      id: String(row.id), state: String(row.state) as LoopImageState, set: String(row.set_name), width: Number(row.width), height: Number(row.height),
      created: String(row.created), source: row.source === null ? null : String(row.source),
      camera_id: row.camera_id === null || row.camera_id === undefined ? null : String(row.camera_id),
      tags: JSON.parse(String(row.tags)) as string[], annotations: Number(row.annotation_count ?? 0), detections: Number(row.detection_count ?? 0),
    }))
    return { images, total, page, per_page: perPage, facets: this.facets(organization, project) }
  }

  /**
   * The tags, sources and cameras that occur in the project (at most 100 of each), for the filter menus. Tags
   * need a pass over every image, so the answer is kept until an image is added or removed.
   */
  facets(organization: string, project: string): GalleryPage['facets'] {
    const stamp = this.db.query('SELECT COUNT(*) AS n, MAX(uploaded_at) AS newest FROM images WHERE organization = $organization AND project = $project')
      .get({ organization, project })
    const key = `${stamp?.n}/${stamp?.newest}`
    const cached = this.facetCache.get(`${organization}/${project}`)
    if (cached?.key === key) return cached.facets
    const facets = this.computeFacets(organization, project)
    this.facetCache.set(`${organization}/${project}`, { key, facets })
    return facets
  }

  private computeFacets(organization: string, project: string): GalleryPage['facets'] {
    const params = { organization, project, limit: MAX_FACET_VALUES }
    const values = (sql: string) => this.db.query(sql).all(params).map((row) => String(row.value))
    return {
      tags: values(`SELECT DISTINCT json_each.value AS value FROM images, json_each(images.tags)
        WHERE organization = $organization AND project = $project ORDER BY value LIMIT $limit`),
      sources: values(`SELECT DISTINCT source AS value FROM images WHERE organization = $organization AND project = $project AND source IS NOT NULL ORDER BY value LIMIT $limit`),
      cameras: values(`SELECT DISTINCT camera_id AS value FROM images WHERE organization = $organization AND project = $project AND camera_id IS NOT NULL ORDER BY value LIMIT $limit`),
    }
  }
}
