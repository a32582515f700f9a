import { Type, type Static } from '@sinclair/typebox'
import { Category } from './general.ts'
import { LoopImageStateSchema } from './local-loop-api.ts'
import { Nullable, StringEnum } from './schema-helpers.ts'

/**
 * The requests and answers of the local Loop's web page API (src/local-loop/web-routes.ts, under /admin): the
 * routes validate with these and the API document is generated from them. Query values arrive as text, so numbers
 * in a query are digit strings here.
 */

const Digits = (description: string) => Type.String({ pattern: '^[0-9]{1,9}$', description })
const IsoDay = (description: string) => Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', description })
const Name = Type.String({ minLength: 1, maxLength: 200 })

export const ProjectParams = Type.Object({ org: Name, project: Name }, { $id: 'ProjectParams' })
export const ImageParams = Type.Object({ org: Name, project: Name, id: Name }, { $id: 'ImageParams' })

export const ANNOTATION_KINDS = ['box', 'point', 'segmentation'] as const
export type AnnotationKind = (typeof ANNOTATION_KINDS)[number]
export const AnnotationParams = Type.Object({
  org: Name, project: Name, id: Name, kind: StringEnum(ANNOTATION_KINDS), index: Digits('position in the image\'s list of that kind'),
}, { $id: 'AnnotationParams' })

/** `GET /admin/projects/<org>/<project>/gallery`: one page of images, newest first. */
export const GalleryQuery = Type.Object({
  state: Type.Optional(LoopImageStateSchema),
  tag: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  source: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  camera: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'camera_id of the upload' })),
  from: Type.Optional(IsoDay('first day (YYYY-MM-DD) of the images\' created date')),
  to: Type.Optional(IsoDay('last day (YYYY-MM-DD) of the images\' created date')),
  page: Type.Optional(Digits('page number, from 1')),
  per_page: Type.Optional(Digits('images per page, 1–200 (default 48)')),
}, { $id: 'GalleryQuery' })
export type GalleryQuery = Static<typeof GalleryQuery>

export const GalleryItem = Type.Object({
  id: Type.String(),
  state: LoopImageStateSchema,
  set: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  created: Type.String(),
  source: Nullable(Type.String()),
  camera_id: Nullable(Type.String()),
  tags: Type.Array(Type.String()),
  annotations: Type.Integer({ description: 'box, point and segmentation annotations' }),
  detections: Type.Integer({ description: 'box, point and segmentation detections' }),
}, { $id: 'GalleryItem' })
export type GalleryItem = Static<typeof GalleryItem>

export const GalleryPage = Type.Object({
  images: Type.Array(GalleryItem),
  total: Type.Integer(),
  page: Type.Integer(),
  per_page: Type.Integer(),
  /** the values the filters can take in this project */
  facets: Type.Object({ tags: Type.Array(Type.String()), sources: Type.Array(Type.String()), cameras: Type.Array(Type.String()) }),
}, { $id: 'GalleryPage' })
export type GalleryPage = Static<typeof GalleryPage>

/** `GET …/images/<id>/view`: the image's data (§4 #5 shape) and the project's categories. */
export const ImageView = Type.Object({
  image: Type.Record(Type.String(), Type.Unknown()),
  categories: Type.Array(Category),
}, { $id: 'ImageView' })

export const ImageStateRequest = Type.Object({ state: LoopImageStateSchema }, { $id: 'ImageStateRequest' })

const Pixel = Type.Integer({ minimum: -100_000, maximum: 100_000 })
const Extent = Type.Integer({ minimum: 1, maximum: 100_000 })

/** A box or point annotation the page adds or edits; the category is the project's (by id). */
export const AnnotationRequest = Type.Union([
  Type.Object({ kind: Type.Literal('box'), category_id: Name, x: Pixel, y: Pixel, width: Extent, height: Extent }),
  Type.Object({ kind: Type.Literal('point'), category_id: Name, x: Type.Number({ minimum: -100_000, maximum: 100_000 }), y: Type.Number({ minimum: -100_000, maximum: 100_000 }) }),
], { $id: 'AnnotationRequest' })
export type AnnotationRequest = Static<typeof AnnotationRequest>

/** `POST …/images/<id>/annotate`: a box drawn around an object, sent to an annotator node as a drag (§10). */
export const AnnotateRequest = Type.Object({
  category_id: Name,
  x0: Pixel, y0: Pixel, x1: Pixel, y1: Pixel,
  /** socket id, uuid or name of the annotator; default the newest connected annotation node */
  node: Type.Optional(Name),
}, { $id: 'AnnotateRequest' })
export type AnnotateRequest = Static<typeof AnnotateRequest>

export const AnnotateResponse = Type.Object({
  svg: Type.String({ description: 'the annotator\'s answer to the mouse-up: its outline as SVG' }),
  annotation: Nullable(Type.Record(Type.String(), Type.Unknown())),
}, { $id: 'AnnotateResponse' })

export const ImageUploadResponse = Type.Object({ ids: Type.Array(Type.String()) }, { $id: 'ImageUploadResponse' })
export const ImageAnnotationsResponse = Type.Object({ image: Type.Record(Type.String(), Type.Unknown()) }, { $id: 'ImageAnnotationsResponse' })

export const SessionResponse = Type.Object({
  logged_in: Type.Boolean(),
  credentials_required: Type.Boolean(),
}, { $id: 'SessionResponse' })

/** What the live event stream (`GET …/live`, server-sent events) sends as `snapshot`, at most once a second. */
export const LiveSnapshot = Type.Object({
  nodes: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  detectors: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  trainings: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  /** per trainer node id: its progress reports, oldest first (at most 200) */
  progress: Type.Record(Type.String(), Type.Array(Type.Object({ t: Type.Number(), progress: Nullable(Type.Number()), state: Nullable(Type.String()) }))),
  deployment_target: Nullable(Type.Object({ model_uuid: Type.String(), version: Type.String() })),
  categories: Type.Array(Category),
}, { $id: 'LiveSnapshot' })
export type LiveSnapshot = Static<typeof LiveSnapshot>

export const ErrorDetail = Type.Object({ detail: Type.String() }, { $id: 'ErrorDetail' })
