/**
 * The box-segmentation tool as a state machine over user events (pure, no I/O):
 *
 *   idle --left_mouse_down--> drawing_box --mouse_move*--> --left_mouse_up--> segment → segmented
 *   segmented --left_mouse_down--> stroking --mouse_move*--> --left_mouse_up--> segment → segmented
 *   any --key_up Enter--> idle (the object is done; the next drag starts a new one)
 *
 * A stroke dragged with Shift marks object pixels, one without marks background. The step tells the
 * caller whether to run the segmentation; the history is updated in place.
 */
import { AnnotationToolError } from './annotator-logic.ts'
import { isOneOf, ANNOTATION_EVENT_TYPES, type AnnotationData, type Point } from '../contract/index.ts'
import { quoteInput } from '../foundation/log.ts'

export type InteractionPhase = 'idle' | 'drawing_box' | 'segmented' | 'stroking'

export interface BrushStroke {
  foreground: boolean
  points: Point[]
}

export interface SegmentationHistory {
  imageUuid: string | null
  imageSize: { width: number; height: number } | null
  phase: InteractionPhase
  boxStart: Point | null
  boxEnd: Point | null
  strokes: BrushStroke[]
  currentStroke: BrushStroke | null
  /** stable per object, so every refinement replaces the same annotation in the Loop */
  annotationId: string | null
  polygon: Point[] | null
}

export type InteractionStep = 'render' | 'segment' | 'reset'

/** A user event the tool cannot act on (a click outside the photo, an unknown event type). */
export class AnnotationInputError extends AnnotationToolError {
  constructor(message: string) {
    super(message)
    this.name = 'AnnotationInputError'
  }
}

/** Bounds that keep one history small whatever a client sends. */
export const MAX_STROKES = 50
export const MAX_POINTS_PER_STROKE = 1_000
/** mouse moves closer than this to the previous stroke point add nothing */
const MIN_STROKE_STEP = 2
/** a drag smaller than this in width or height is a click, not a box */
const MIN_BOX_SIZE = 3

export function createSegmentationHistory(): SegmentationHistory {
  return { imageUuid: null, imageSize: null, phase: 'idle', boxStart: null, boxEnd: null, strokes: [], currentStroke: null, annotationId: null, polygon: null }
}

/** Forgets the object (and, with a new image, the image too). */
export function resetHistory(history: SegmentationHistory, imageUuid: string | null = history.imageUuid): void {
  const keepSize = imageUuid === history.imageUuid ? history.imageSize : null
  Object.assign(history, createSegmentationHistory(), { imageUuid, imageSize: keepSize })
}

function clampToImage(point: Point, size: { width: number; height: number }): Point {
  return {
    x: Math.min(size.width - 1, Math.max(0, Math.round(point.x))),
    y: Math.min(size.height - 1, Math.max(0, Math.round(point.y))),
  }
}

function isInsideImage(point: Point, size: { width: number; height: number }): boolean {
  return Number.isFinite(point.x) && Number.isFinite(point.y) && point.x >= 0 && point.y >= 0 && point.x < size.width && point.y < size.height
}

/** The dragged box in image pixels (x1, y1 exclusive), whichever corner the drag started at. */
export function draggedBox(history: SegmentationHistory): { x0: number; y0: number; x1: number; y1: number } | null {
  if (!history.boxStart || !history.boxEnd) return null
  return {
    x0: Math.min(history.boxStart.x, history.boxEnd.x),
    y0: Math.min(history.boxStart.y, history.boxEnd.y),
    x1: Math.max(history.boxStart.x, history.boxEnd.x) + 1,
    y1: Math.max(history.boxStart.y, history.boxEnd.y) + 1,
  }
}

/**
 * Applies one event to `history` (which must already belong to `data.image_uuid` and know the image size).
 * Throws AnnotationInputError for a press outside the image or an unknown event type.
 */
export function applyAnnotationEvent(history: SegmentationHistory, data: AnnotationData, imageSize: { width: number; height: number }): InteractionStep {
  const type = data.event_type
  if (!isOneOf(ANNOTATION_EVENT_TYPES, type)) {
    throw new AnnotationInputError(`unknown event_type ${quoteInput(type)}; expected one of ${ANNOTATION_EVENT_TYPES.join(', ')}`)
  }
  switch (type) {
    case 'key_up':
      if (data.key_up === 'Enter' || data.key_up === 'Escape') {
        resetHistory(history)
        return 'reset'
      }
      return 'render'
    case 'key_down':
    case 'right_mouse_down':
    case 'right_mouse_up':
      return 'render'
    case 'left_mouse_down': {
      if (!isInsideImage(data.coordinate, imageSize)) {
        throw new AnnotationInputError(`the click at (${data.coordinate.x}, ${data.coordinate.y}) lies outside the ${imageSize.width}×${imageSize.height} image`)
      }
      const point = clampToImage(data.coordinate, imageSize)
      if (history.phase === 'idle' || history.phase === 'drawing_box' || !history.polygon) {
        // a press without a finished object (re)starts the box
        history.phase = 'drawing_box'
        history.boxStart = point
        history.boxEnd = point
        return 'render'
      }
      if (history.strokes.length >= MAX_STROKES) {
        throw new AnnotationInputError(`at most ${MAX_STROKES} refinement strokes per object; press Enter to start a new object`)
      }
      history.phase = 'stroking'
      history.currentStroke = { foreground: data.is_shift_key_pressed === true, points: [point] }
      return 'render'
    }
    case 'mouse_move': {
      const point = clampToImage(data.coordinate, imageSize)
      if (history.phase === 'drawing_box') history.boxEnd = point
      else if (history.phase === 'stroking' && history.currentStroke) addStrokePoint(history.currentStroke, point)
      return 'render'
    }
    case 'left_mouse_up': {
      const point = clampToImage(data.coordinate, imageSize)
      if (history.phase === 'drawing_box') {
        history.boxEnd = point
        const box = draggedBox(history)!
        if (box.x1 - box.x0 < MIN_BOX_SIZE || box.y1 - box.y0 < MIN_BOX_SIZE) {
          resetHistory(history)
          return 'reset'
        }
        return 'segment'
      }
      if (history.phase === 'stroking' && history.currentStroke) {
        addStrokePoint(history.currentStroke, point)
        history.strokes.push(history.currentStroke)
        history.currentStroke = null
        return 'segment'
      }
      return 'render'
    }
  }
}

function addStrokePoint(stroke: BrushStroke, point: Point): void {
  const last = stroke.points.at(-1)
  if (last && Math.hypot(point.x - last.x, point.y - last.y) < MIN_STROKE_STEP) return
  if (stroke.points.length >= MAX_POINTS_PER_STROKE) return
  stroke.points.push(point)
}

/** Brush radius in image pixels for a box of this size: thin enough to steer, thick enough to hit. */
export function brushRadius(box: { x0: number; y0: number; x1: number; y1: number }): number {
  return Math.max(2, Math.round(0.015 * Math.max(box.x1 - box.x0, box.y1 - box.y0)))
}
