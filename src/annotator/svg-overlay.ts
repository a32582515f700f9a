/**
 * The SVG the Loop's frontend lays over the photo: bare SVG elements (as upstream tools send, e.g. a
 * `<rect>`), coordinates in image pixels. Kept small: the box while dragging, the object outline, the
 * refinement strokes. Pure.
 */
import type { Point } from '../contract/index.ts'
import { draggedBox, type BrushStroke, type SegmentationHistory } from './segmentation-interaction.ts'

const DEFAULT_COLOUR = '#2196f3'
const FOREGROUND_STROKE = '#00c853'
const BACKGROUND_STROKE = '#ff1744'

/** A category colour that is safe inside an attribute (`#abc`, `#a1b2c3`, a colour name), else the default. */
export function safeColour(colour: string | null | undefined): string {
  if (colour && /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$/.test(colour)) return colour
  return DEFAULT_COLOUR
}

const pointList = (points: readonly Point[]) => points.map((p) => `${Math.round(p.x)},${Math.round(p.y)}`).join(' ')

function strokeElement(stroke: BrushStroke, width: number, opacity: number): string {
  const colour = stroke.foreground ? FOREGROUND_STROKE : BACKGROUND_STROKE
  if (stroke.points.length === 1) {
    const p = stroke.points[0]!
    return `<circle cx="${Math.round(p.x)}" cy="${Math.round(p.y)}" r="${width / 2}" fill="${colour}" fill-opacity="${opacity}"/>`
  }
  return `<polyline points="${pointList(stroke.points)}" fill="none" stroke="${colour}" stroke-opacity="${opacity}" stroke-width="${width}" stroke-linecap="round" stroke-linejoin="round"/>`
}

/** The overlay for the history's current phase; '' when there is nothing to show. */
export function renderOverlay(history: SegmentationHistory, options: { colour?: string | null; brushRadius?: number } = {}): string {
  const colour = safeColour(options.colour)
  const brushWidth = 2 * (options.brushRadius ?? 2)
  const parts: string[] = []
  if (history.phase === 'drawing_box') {
    const box = draggedBox(history)
    if (box) {
      parts.push(`<rect x="${box.x0}" y="${box.y0}" width="${box.x1 - box.x0}" height="${box.y1 - box.y0}" fill="none" stroke="${colour}" stroke-width="2" stroke-dasharray="6 4"/>`)
    }
  }
  if (history.polygon && history.polygon.length >= 3 && history.phase !== 'drawing_box') {
    parts.push(`<polygon points="${pointList(history.polygon)}" fill="${colour}" fill-opacity="0.3" stroke="${colour}" stroke-width="2"/>`)
  }
  if (history.phase === 'segmented' || history.phase === 'stroking') {
    for (const stroke of history.strokes) parts.push(strokeElement(stroke, brushWidth, 0.35))
    if (history.currentStroke) parts.push(strokeElement(history.currentStroke, brushWidth, 0.7))
  }
  return parts.join('')
}
