import type { BoxAnnotation, BoxDetection, Category, CategoryType, ClassificationAnnotation, ImageState, PointAnnotation, ProjectGeneratorRequest, SegmentationAnnotation } from '../contract/index.ts'
import { IMAGE_STATES } from '../contract/index.ts'

/**
 * Plans a generated project (§4 T2): categories, and per image the shapes to draw and the annotations
 * that describe them exactly. Pure and deterministic for a seed, so tests can check that every box
 * annotation sits on a drawn box; drawing the JPEG is synthetic-image.ts.
 */
export type Rgb = readonly [number, number, number]

export type PlannedShape =
  | { kind: 'box'; x: number; y: number; width: number; height: number; color: Rgb }
  | { kind: 'point'; x: number; y: number; radius: number; color: Rgb }
  | { kind: 'polygon'; points: { x: number; y: number }[]; color: Rgb }

export interface PlannedImage {
  id: string
  state: ImageState
  set: 'train' | 'test'
  width: number
  height: number
  style: 'plain' | 'beautiful'
  background: Rgb
  /** per-image seed for the background texture */
  seed: number
  shapes: PlannedShape[]
  box_annotations: BoxAnnotation[]
  point_annotations: PointAnnotation[]
  segmentation_annotations: SegmentationAnnotation[]
  classification_annotation: ClassificationAnnotation | null
  box_detections: BoxDetection[]
  tags: string[]
}

export interface ProjectPlan {
  categories: Category[]
  images: PlannedImage[]
  trainings: number
}

export interface GeneratorOptions {
  seed: number
  width?: number
  height?: number
  /** ids of categories and images; random uuids by default */
  newId?: () => string
}

const PALETTE: readonly { name: string; rgb: Rgb }[] = [
  { name: 'red', rgb: [214, 39, 40] }, { name: 'green', rgb: [44, 160, 44] }, { name: 'blue', rgb: [31, 119, 180] },
  { name: 'yellow', rgb: [230, 196, 30] }, { name: 'purple', rgb: [148, 103, 189] }, { name: 'orange', rgb: [255, 127, 14] },
  { name: 'cyan', rgb: [23, 190, 207] }, { name: 'magenta', rgb: [227, 60, 180] }, { name: 'brown', rgb: [140, 86, 75] },
  { name: 'olive', rgb: [128, 128, 0] },
]

const POINT_RADIUS = 6
/** Every fourth image from the second on is a test image, so two or more images always give both sets. */
const isTestIndex = (index: number) => index % 4 === 1

/** A small, fast PRNG (mulberry32); good enough for drawings and reproducible from a seed. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A stable seed from text (FNV-1a), so a project name always draws the same pictures. */
export function seedFromText(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return hash
}

function hex(rgb: Rgb): string {
  return '#' + rgb.map((c) => c.toString(16).padStart(2, '0')).join('')
}

export function planCategories(request: ProjectGeneratorRequest, newId: () => string): Category[] {
  const counts: [CategoryType, number][] = [
    ['box', request.box_categories ?? 0], ['point', request.point_categories ?? 0],
    ['segmentation', request.segmentation_categories ?? 0], ['classification', request.classification_categories ?? 0],
  ]
  const categories: Category[] = []
  for (const [type, count] of counts) {
    for (let i = 0; i < count; i++) {
      const index = categories.length
      const colour = PALETTE[index % PALETTE.length]!
      const round = Math.floor(index / PALETTE.length)
      categories.push({
        id: newId(),
        name: `${colour.name} ${type}${round > 0 ? ` ${round + 1}` : ''}`,
        description: null,
        hotkey: index < 9 ? String(index + 1) : null,
        color: hex(colour.rgb),
        point_size: type === 'point' ? 20 : null,
        type,
      })
    }
  }
  return categories
}

export function planGeneratedProject(request: ProjectGeneratorRequest, options: GeneratorOptions): ProjectPlan {
  const newId = options.newId ?? (() => crypto.randomUUID())
  const width = options.width ?? 320
  const height = options.height ?? 240
  const random = createRandom(options.seed)
  const categories = planCategories(request, newId)
  const trainings = request.trainings ?? 0
  const detectionModel = trainings > 0 ? `${trainings}.0` : 'generated'
  const tags = Array.from({ length: request.tags ?? 0 }, (_, i) => `tag_${i + 1}`)
  const images: PlannedImage[] = []
  for (const state of IMAGE_STATES) {
    const count = request[state] ?? 0
    for (let index = 0; index < count; index++) {
      images.push(planImage({
        id: newId(), state, set: isTestIndex(index) ? 'test' : 'train', width, height,
        style: request.image_style ?? 'plain', categories, random,
        boxCount: Math.max(request.box_annotations ?? 0, request.box_categories ?? 0),
        detectionCount: request.box_detections ?? 0, detectionModel, tags, newId,
      }))
    }
  }
  return { categories, images, trainings }
}

interface ImageInput extends Pick<PlannedImage, 'id' | 'state' | 'set' | 'width' | 'height' | 'style' | 'tags'> {
  categories: Category[]
  random: () => number
  boxCount: number
  detectionCount: number
  detectionModel: string
  newId: () => string
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}

function colourOf(category: Category): Rgb {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(category.color ?? '')
  return match ? [parseInt(match[1]!, 16), parseInt(match[2]!, 16), parseInt(match[3]!, 16)] : [0, 0, 0]
}

function planImage(input: ImageInput): PlannedImage {
  const { random, width, height, categories } = input
  const ofType = (type: CategoryType) => categories.filter((c) => c.type === type)
  const boxCategories = ofType('box')
  const pointCategories = ofType('point')
  const segmentationCategories = ofType('segmentation')
  const classificationCategories = ofType('classification')
  const wanted: { category: Category; kind: 'box' | 'point' | 'polygon' }[] = [
    ...(boxCategories.length ? Array.from({ length: input.boxCount }, (_, i) => ({ category: boxCategories[i % boxCategories.length]!, kind: 'box' as const })) : []),
    ...pointCategories.map((category) => ({ category, kind: 'point' as const })),
    ...segmentationCategories.map((category) => ({ category, kind: 'polygon' as const })),
  ]
  // one grid cell per shape keeps shapes apart, so each annotation describes exactly one drawn shape
  const columns = Math.max(1, Math.ceil(Math.sqrt(wanted.length * (width / height))))
  const rows = Math.max(1, Math.ceil(wanted.length / columns))
  const cellWidth = Math.floor(width / columns)
  const cellHeight = Math.floor(height / rows)
  const cellOrder = shuffle(Array.from({ length: columns * rows }, (_, i) => i), random)
  const annotated = input.state === 'complete'
  const shapes: PlannedShape[] = []
  const boxAnnotations: BoxAnnotation[] = []
  const pointAnnotations: PointAnnotation[] = []
  const segmentationAnnotations: SegmentationAnnotation[] = []
  const boxDetections: BoxDetection[] = []
  const between = (low: number, high: number) => Math.floor(low + random() * Math.max(0, high - low + 1))
  wanted.forEach(({ category, kind }, i) => {
    const cell = cellOrder[i]!
    const left = (cell % columns) * cellWidth
    const top = Math.floor(cell / columns) * cellHeight
    const margin = Math.max(2, Math.floor(Math.min(cellWidth, cellHeight) * 0.1))
    const colour = colourOf(category)
    if (kind === 'box') {
      const boxWidth = between(Math.floor(cellWidth * 0.3), cellWidth - 2 * margin)
      const boxHeight = between(Math.floor(cellHeight * 0.3), cellHeight - 2 * margin)
      const x = left + between(margin, cellWidth - margin - boxWidth)
      const y = top + between(margin, cellHeight - margin - boxHeight)
      shapes.push({ kind: 'box', x, y, width: boxWidth, height: boxHeight, color: colour })
      if (annotated) boxAnnotations.push({ category_name: category.name, category_id: category.id, x, y, width: boxWidth, height: boxHeight })
    } else if (kind === 'point') {
      const x = left + between(margin + POINT_RADIUS, cellWidth - margin - POINT_RADIUS)
      const y = top + between(margin + POINT_RADIUS, cellHeight - margin - POINT_RADIUS)
      shapes.push({ kind: 'point', x, y, radius: POINT_RADIUS, color: colour })
      if (annotated) pointAnnotations.push({ category_name: category.name, category_id: category.id, x, y })
    } else {
      const centreX = left + Math.floor(cellWidth / 2)
      const centreY = top + Math.floor(cellHeight / 2)
      const maxRadius = Math.max(4, Math.floor(Math.min(cellWidth, cellHeight) / 2) - margin)
      const corners = between(5, 8)
      const points = Array.from({ length: corners }, (_, k) => {
        const angle = (2 * Math.PI * (k + random() * 0.6)) / corners
        const radius = maxRadius * (0.55 + random() * 0.45)
        return { x: Math.round(centreX + Math.cos(angle) * radius), y: Math.round(centreY + Math.sin(angle) * radius) }
      })
      shapes.push({ kind: 'polygon', points, color: colour })
      if (annotated) segmentationAnnotations.push({ id: input.newId(), shape: { points }, image_id: input.id, category_id: category.id })
    }
  })
  const drawnBoxes = shapes.filter((s): s is Extract<PlannedShape, { kind: 'box' }> => s.kind === 'box')
  for (let i = 0; i < input.detectionCount && drawnBoxes.length > 0; i++) {
    const box = drawnBoxes[i % drawnBoxes.length]!
    const category = boxCategories[i % drawnBoxes.length % boxCategories.length]!
    const jitter = () => between(-3, 3)
    boxDetections.push({
      category_name: category.name, category_id: category.id, model_name: input.detectionModel,
      x: Math.max(0, box.x + jitter()), y: Math.max(0, box.y + jitter()), width: box.width + jitter(), height: box.height + jitter(),
      // the Loop's own image data uses percent (§6.3)
      confidence: between(30, 95),
    })
  }
  const classification = classificationCategories.length && annotated ? classificationCategories[between(0, classificationCategories.length - 1)]! : undefined
  const style = input.style
  return {
    id: input.id, state: input.state, set: input.set, width, height, style,
    background: style === 'plain' ? [235, 235, 235] : [between(60, 200), between(60, 200), between(60, 200)],
    seed: Math.floor(random() * 2 ** 31),
    shapes,
    box_annotations: boxAnnotations,
    point_annotations: pointAnnotations,
    segmentation_annotations: segmentationAnnotations,
    classification_annotation: classification ? { category_name: classification.name, category_id: classification.id } : null,
    box_detections: boxDetections,
    tags: [...input.tags],
  }
}
