/**
 * The working grid of box segmentation: the region around the box, downscaled to a pixel budget, the user's
 * strokes painted onto it as constraints, and the contrast-sensitive smoothness weights between neighbours.
 * Pure (no I/O).
 */
import type { RgbImage } from '../inference/image-decoding.ts'
import { GRID_DIRECTIONS } from './grid-max-flow.ts'
import type { PolygonPoint } from './mask-contour.ts'

export interface PixelBox {
  /** left, top (inclusive) and right, bottom (exclusive), in image pixels */
  x0: number
  y0: number
  x1: number
  y1: number
}

export interface Stroke {
  /** the dragged path in image pixels */
  points: PolygonPoint[]
  /** brush radius in image pixels */
  radius: number
}

/** What the user decided about a working pixel: nothing, object (a foreground stroke) or background. */
export const Constraint = { Free: 0, Foreground: 1, Background: 2 } as const
export type Constraint = (typeof Constraint)[keyof typeof Constraint]

const SMOOTHNESS = 50

/** `box` with its corners ordered, rounded outwards to whole pixels and clamped to the image. */
export function clampBox(box: PixelBox, width: number, height: number): PixelBox {
  return {
    x0: Math.max(0, Math.min(width, Math.floor(Math.min(box.x0, box.x1)))),
    y0: Math.max(0, Math.min(height, Math.floor(Math.min(box.y0, box.y1)))),
    x1: Math.max(0, Math.min(width, Math.ceil(Math.max(box.x0, box.x1)))),
    y1: Math.max(0, Math.min(height, Math.ceil(Math.max(box.y0, box.y1)))),
  }
}

/** The box a stroke's brush covers, in image pixels. */
export function strokeBounds(stroke: Stroke): PixelBox {
  const xs = stroke.points.map((p) => p.x)
  const ys = stroke.points.map((p) => p.y)
  return { x0: Math.min(...xs) - stroke.radius, y0: Math.min(...ys) - stroke.radius, x1: Math.max(...xs) + stroke.radius + 1, y1: Math.max(...ys) + stroke.radius + 1 }
}

export interface WorkingGrid {
  width: number
  height: number
  /** averaged RGB, 3 floats per working pixel */
  rgb: Float32Array
  region: PixelBox
  /** image pixels per working pixel, per axis */
  scaleX: number
  scaleY: number
}

/** Box-filter downscale of `region` so that at most `maxPixels` working pixels remain. */
export function buildWorkingGrid(image: RgbImage, region: PixelBox, maxPixels: number): WorkingGrid {
  const regionWidth = region.x1 - region.x0
  const regionHeight = region.y1 - region.y0
  const factor = Math.min(1, Math.sqrt(maxPixels / (regionWidth * regionHeight)))
  const width = Math.max(1, Math.round(regionWidth * factor))
  const height = Math.max(1, Math.round(regionHeight * factor))
  const scaleX = regionWidth / width
  const scaleY = regionHeight / height
  const sums = new Float32Array(width * height * 3)
  const counts = new Float32Array(width * height)
  const columnOf = new Int32Array(regionWidth)
  for (let x = 0; x < regionWidth; x++) columnOf[x] = Math.min(width - 1, Math.floor(x / scaleX))
  const source = image.data
  for (let y = 0; y < regionHeight; y++) {
    const row = Math.min(height - 1, Math.floor(y / scaleY)) * width
    let at = ((region.y0 + y) * image.width + region.x0) * 3
    for (let x = 0; x < regionWidth; x++, at += 3) {
      const cell = row + columnOf[x]!
      sums[cell * 3]! += source[at]!
      sums[cell * 3 + 1]! += source[at + 1]!
      sums[cell * 3 + 2]! += source[at + 2]!
      counts[cell]!++
    }
  }
  for (let cell = 0; cell < counts.length; cell++) {
    const n = counts[cell]! || 1
    sums[cell * 3]! /= n
    sums[cell * 3 + 1]! /= n
    sums[cell * 3 + 2]! /= n
  }
  return { width, height, rgb: sums, region, scaleX, scaleY }
}

/** Marks working pixels whose centre lies within the brush of `stroke`. */
export function paintStroke(constraints: Uint8Array, grid: WorkingGrid, stroke: Stroke, value: Constraint): void {
  const toWorking = (p: PolygonPoint) => ({ x: (p.x + 0.5 - grid.region.x0) / grid.scaleX, y: (p.y + 0.5 - grid.region.y0) / grid.scaleY })
  const points = stroke.points.map(toWorking)
  // at least the working pixel under every point is painted, however coarse the grid
  const radius = Math.max(0.75, stroke.radius / Math.min(grid.scaleX, grid.scaleY))
  const segments = points.length === 1 ? [[points[0]!, points[0]!]] : points.slice(1).map((p, i) => [points[i]!, p])
  for (const [a, b] of segments as [PolygonPoint, PolygonPoint][]) {
    const left = Math.max(0, Math.floor(Math.min(a.x, b.x) - radius))
    const right = Math.min(grid.width - 1, Math.ceil(Math.max(a.x, b.x) + radius))
    const top = Math.max(0, Math.floor(Math.min(a.y, b.y) - radius))
    const bottom = Math.min(grid.height - 1, Math.ceil(Math.max(a.y, b.y) + radius))
    const dx = b.x - a.x
    const dy = b.y - a.y
    const lengthSquared = dx * dx + dy * dy
    for (let y = top; y <= bottom; y++) {
      for (let x = left; x <= right; x++) {
        const cx = x + 0.5 - a.x
        const cy = y + 0.5 - a.y
        const t = lengthSquared === 0 ? 0 : Math.max(0, Math.min(1, (cx * dx + cy * dy) / lengthSquared))
        const ex = cx - t * dx
        const ey = cy - t * dy
        if (ex * ex + ey * ey <= radius * radius) constraints[y * grid.width + x] = value
      }
    }
  }
}

/** Marks a direction that leaves the grid while squared differences are collected (they are never negative). */
const NO_NEIGHBOUR = -1

/**
 * Contrast-sensitive smoothness weights (GrabCut's γ·exp(−β‖Δz‖²)/distance) for the 4 forward directions
 * (E, SE, S, SW) of every working pixel, so every neighbour pair appears once.
 */
export function smoothnessWeights(grid: WorkingGrid): Float32Array {
  const { width, height, rgb } = grid
  const weights = new Float32Array(width * height * 4)
  let total = 0
  let pairs = 0
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x
      for (let k = 0; k < 4; k++) {
        const [dx, dy] = GRID_DIRECTIONS[k]!
        const nx = x + dx
        const ny = y + dy
        if (nx < 0 || nx >= width || ny >= height) {
          weights[p * 4 + k] = NO_NEIGHBOUR
          continue
        }
        const q = ny * width + nx
        const dr = rgb[p * 3]! - rgb[q * 3]!, dg = rgb[p * 3 + 1]! - rgb[q * 3 + 1]!, db = rgb[p * 3 + 2]! - rgb[q * 3 + 2]!
        const d = dr * dr + dg * dg + db * db
        weights[p * 4 + k] = d
        total += d
        pairs++
      }
    }
  }
  const beta = total > 0 ? pairs / (2 * total) : 0
  // entry i is direction i % 4 (odd: diagonal); squared differences become weights, missing neighbours 0
  for (let i = 0; i < weights.length; i++) {
    const d = weights[i]!
    weights[i] = d === NO_NEIGHBOUR ? 0 : ((i & 1) === 1 ? SMOOTHNESS / Math.SQRT2 : SMOOTHNESS) * Math.exp(-beta * d)
  }
  return weights
}
