/**
 * Segments the object inside a box, GrabCut-style: colour mixtures for object and surroundings, a
 * minimum cut on an 8-connected grid that trades colour fit against contrast-weighted smoothness, and
 * a few rounds of refitting the colours to the current cut. Pixels outside the (stroke-widened) box are
 * background; foreground strokes and background strokes are hard constraints. The work happens on the
 * box and a margin around it, downscaled so that at most `maxWorkingPixels` remain, which bounds the
 * time per refinement whatever the photo size. Pure (no I/O): pixels in, polygon out.
 */
import { AnnotationToolError } from './annotator-logic.ts'
import type { RgbImage } from '../inference/image-decoding.ts'
import { ColourGmm } from './colour-gmm.ts'
import { GRID_DIRECTIONS, GridGraph } from './grid-max-flow.ts'
import { largestRegion, simplifyPolygon, traceOutline, type PolygonPoint } from './mask-contour.ts'
import { buildWorkingGrid, clampBox, Constraint, paintStroke, smoothnessWeights, strokeBounds, type PixelBox, type Stroke } from './segmentation-grid.ts'

export interface SegmentationRequest {
  box: PixelBox
  foreground?: Stroke[]
  background?: Stroke[]
  /** Douglas–Peucker tolerance in image pixels; default: ¾ of a working pixel (hides its staircase), at least 1 */
  epsilon?: number | null
  /** default 25 000 (about 160 × 160): the cut grows faster than linearly, this keeps a refinement interactive */
  maxWorkingPixels?: number
  /** colour-refit rounds (default 4; fewer when the cut stops changing) */
  iterations?: number
}

export interface SegmentationResult {
  /** outline of the largest object region, integer image pixel corners, clockwise on screen */
  polygon: PolygonPoint[]
  /** pixels of the region at full resolution (approximate: the working area scaled back) */
  area: number
  /** image pixels per working pixel (1 = full resolution) */
  scale: number
  /** the region that was worked on (box plus margin), in image pixels */
  region: PixelBox
  iterations: number
  timings: { prepareMs: number; cutMs: number; outlineMs: number }
}

/** The user's input cannot be segmented (empty box, box outside the image, nothing found). */
export class SegmentationInputError extends AnnotationToolError {
  constructor(message: string) {
    super(message)
    this.name = 'SegmentationInputError'
  }
}

const COMPONENTS = 5
const MAX_DATA_COST = 60
const HARD = 1e9
const MIN_BACKGROUND_SAMPLES = 32
const DEFAULT_MAX_WORKING_PIXELS = 25_000
const DEFAULT_ITERATIONS = 4
/** label changes (fraction of undecided pixels) below which another refit round is skipped */
const CONVERGED_FRACTION = 0.002

function indicesWhere(labels: Uint8Array, wanted: number): Int32Array {
  let count = 0
  for (let i = 0; i < labels.length; i++) if (labels[i] === wanted) count++
  const out = new Int32Array(count)
  for (let i = 0, j = 0; i < labels.length; i++) if (labels[i] === wanted) out[j++] = i
  return out
}

/** Working-grid cells of the object box: the graph's nodes. Outside it everything is background. */
interface GraphWindow {
  x0: number
  y0: number
  width: number
  height: number
}

/**
 * Segments the object in `request.box` of `image`. Throws SegmentationInputError when the box misses
 * the image or no object region is found.
 */
export function segmentBox(image: RgbImage, request: SegmentationRequest): SegmentationResult {
  const started = performance.now()
  const foregroundStrokes = (request.foreground ?? []).filter((s) => s.points.length > 0)
  const backgroundStrokes = (request.background ?? []).filter((s) => s.points.length > 0)
  const box = clampBox(request.box, image.width, image.height)
  if (box.x1 - box.x0 < 2 || box.y1 - box.y0 < 2) {
    throw new SegmentationInputError(`the box (${request.box.x0},${request.box.y0})–(${request.box.x1},${request.box.y1}) does not cover at least 2×2 pixels of the ${image.width}×${image.height} image`)
  }
  // foreground strokes may reach beyond the box: the object is allowed to extend there
  let objectBox = box
  for (const stroke of foregroundStrokes) {
    const b = clampBox(strokeBounds(stroke), image.width, image.height)
    objectBox = { x0: Math.min(objectBox.x0, b.x0), y0: Math.min(objectBox.y0, b.y0), x1: Math.max(objectBox.x1, b.x1), y1: Math.max(objectBox.y1, b.y1) }
  }
  const margin = Math.round(8 + 0.25 * Math.max(objectBox.x1 - objectBox.x0, objectBox.y1 - objectBox.y0))
  const region = clampBox({ x0: objectBox.x0 - margin, y0: objectBox.y0 - margin, x1: objectBox.x1 + margin, y1: objectBox.y1 + margin }, image.width, image.height)
  const grid = buildWorkingGrid(image, region, request.maxWorkingPixels ?? DEFAULT_MAX_WORKING_PIXELS)
  const { width, height } = grid
  const n = width * height
  const windowX0 = Math.max(0, Math.floor((objectBox.x0 - region.x0) / grid.scaleX))
  const windowY0 = Math.max(0, Math.floor((objectBox.y0 - region.y0) / grid.scaleY))
  const window: GraphWindow = {
    x0: windowX0,
    y0: windowY0,
    width: Math.min(width, Math.ceil((objectBox.x1 - region.x0) / grid.scaleX)) - windowX0,
    height: Math.min(height, Math.ceil((objectBox.y1 - region.y0) / grid.scaleY)) - windowY0,
  }
  const inWindow = (x: number, y: number) => x >= window.x0 && y >= window.y0 && x < window.x0 + window.width && y < window.y0 + window.height

  // constraints: outside the window is background; strokes override inside
  const constraints = new Uint8Array(n)
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (!inWindow(x, y)) constraints[y * width + x] = Constraint.Background
  for (const stroke of backgroundStrokes) paintStroke(constraints, grid, stroke, Constraint.Background)
  for (const stroke of foregroundStrokes) paintStroke(constraints, grid, stroke, Constraint.Foreground)
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (!inWindow(x, y)) constraints[y * width + x] = Constraint.Background

  // labels: 1 object, 0 background; everything not constrained starts as object (GrabCut's initial guess)
  const labels = new Uint8Array(n)
  for (let p = 0; p < n; p++) labels[p] = constraints[p] === Constraint.Background ? 0 : 1
  let backgroundSeed = indicesWhere(labels, 0)
  if (backgroundSeed.length < MIN_BACKGROUND_SAMPLES) {
    // the box covers (almost) the whole image: the band just inside the box stands in for the surroundings
    const band = Math.max(1, Math.round(0.05 * Math.min(window.width, window.height)))
    const seed: number[] = [...backgroundSeed]
    for (let y = window.y0; y < window.y0 + window.height; y++) {
      for (let x = window.x0; x < window.x0 + window.width; x++) {
        const p = y * width + x
        if (constraints[p] !== Constraint.Free) continue
        if (x < window.x0 + band || x >= window.x0 + window.width - band || y < window.y0 + band || y >= window.y0 + window.height - band) seed.push(p)
      }
    }
    backgroundSeed = Int32Array.from(seed)
  }
  const objectSeed = indicesWhere(labels, 1)
  if (objectSeed.length === 0 || backgroundSeed.length === 0) {
    throw new SegmentationInputError('the strokes leave no pixel undecided inside the box; nothing to segment')
  }
  let objectModel = ColourGmm.fromClusters(grid.rgb, objectSeed, COMPONENTS)
  let backgroundModel = ColourGmm.fromClusters(grid.rgb, backgroundSeed, COMPONENTS)
  const weights = smoothnessWeights(grid)
  // Decided pixels (outside the window, under strokes) are not graph nodes: an undecided pixel's edge to
  // one becomes a terminal cost (exact, as its side is fixed), so the cut never pushes flow through them.
  const foldToSink = new Float32Array(window.width * window.height)
  const foldToSource = new Float32Array(window.width * window.height)
  for (let wy = 0; wy < window.height; wy++) {
    for (let wx = 0; wx < window.width; wx++) {
      const x = window.x0 + wx
      const y = window.y0 + wy
      if (constraints[y * width + x] !== Constraint.Free) continue
      let toSink = 0
      let toSource = 0
      for (let k = 0; k < 8; k++) {
        const [dx, dy] = GRID_DIRECTIONS[k]!
        const nx = x + dx
        const ny = y + dy
        if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue
        const neighbour = constraints[ny * width + nx]
        if (neighbour === Constraint.Free) continue
        const w = k < 4 ? weights[(y * width + x) * 4 + k]! : weights[(ny * width + nx) * 4 + (k - 4)]!
        if (neighbour === Constraint.Background) toSink += w
        else toSource += w
      }
      foldToSink[wy * window.width + wx] = toSink
      foldToSource[wy * window.width + wx] = toSource
    }
  }
  const windowCells = new Int32Array(window.width * window.height)
  for (let wy = 0, i = 0; wy < window.height; wy++) for (let wx = 0; wx < window.width; wx++, i++) windowCells[i] = (window.y0 + wy) * width + window.x0 + wx
  const prepareMs = performance.now() - started

  const cutStarted = performance.now()
  let free = 0
  for (let p = 0; p < n; p++) if (constraints[p] === Constraint.Free) free++
  const maxIterations = Math.max(1, request.iterations ?? DEFAULT_ITERATIONS)
  const objectCost = new Float32Array(windowCells.length)
  const objectComponent = new Uint8Array(windowCells.length)
  const backgroundCost = new Float32Array(n)
  const backgroundComponent = new Uint8Array(n)
  let iterations = 0
  for (; iterations < maxIterations;) {
    if (iterations > 0) {
      // GrabCut's step 1 and 2: every pixel to its best component of its side, then refit both sides
      const objectPixels: number[] = []
      const objectAssignment: number[] = []
      for (let i = 0; i < windowCells.length; i++) {
        if (labels[windowCells[i]!] !== 1) continue
        objectPixels.push(windowCells[i]!)
        objectAssignment.push(objectComponent[i]!)
      }
      const backgroundPixels = indicesWhere(labels, 0)
      const backgroundAssignment = new Uint8Array(backgroundPixels.length)
      for (let i = 0; i < backgroundPixels.length; i++) backgroundAssignment[i] = backgroundComponent[backgroundPixels[i]!]!
      // a side that lost (almost) all its pixels keeps its previous colours
      if (objectPixels.length >= MIN_BACKGROUND_SAMPLES) objectModel = ColourGmm.fit(grid.rgb, objectPixels, objectAssignment, COMPONENTS)
      if (backgroundPixels.length >= MIN_BACKGROUND_SAMPLES) backgroundModel = ColourGmm.fit(grid.rgb, backgroundPixels, backgroundAssignment, COMPONENTS)
    }
    objectModel.score(grid.rgb, windowCells, objectCost, objectComponent)
    backgroundModel.score(grid.rgb, n, backgroundCost, backgroundComponent)
    const graph = new GridGraph(window.width, window.height)
    for (let i = 0; i < windowCells.length; i++) {
      const p = windowCells[i]!
      const constraint = constraints[p]
      if (constraint === Constraint.Foreground) {
        graph.setTerminals(i, HARD, 0)
        continue
      }
      if (constraint === Constraint.Background) {
        graph.setTerminals(i, 0, HARD)
        continue
      }
      // source side = object: a pixel left on the sink side pays its background cost and vice versa
      const asBackground = Math.min(MAX_DATA_COST, backgroundCost[p]!) + foldToSource[i]!
      const asObject = Math.min(MAX_DATA_COST, objectCost[i]!) + foldToSink[i]!
      graph.setTerminals(i, asBackground, asObject)
      const wx = i % window.width
      const wy = (i - wx) / window.width
      for (let k = 0; k < 4; k++) {
        const [dx, dy] = GRID_DIRECTIONS[k]!
        const nx = wx + dx
        if (nx < 0 || nx >= window.width || wy + dy >= window.height) continue
        const w = weights[p * 4 + k]!
        if (w > 0 && constraints[p + dy * width + dx] === Constraint.Free) graph.setEdge(i, k, w)
      }
    }
    graph.maxFlow()
    let changed = 0
    for (let i = 0; i < windowCells.length; i++) {
      const p = windowCells[i]!
      const label = graph.isSourceSide(i) ? 1 : 0
      if (label !== labels[p]) changed++
      labels[p] = label
    }
    iterations++
    if (iterations > 1 && changed <= CONVERGED_FRACTION * free) break
  }
  const cutMs = performance.now() - cutStarted

  const outlineStarted = performance.now()
  const { mask, area } = largestRegion(labels, width, height)
  if (area === 0) throw new SegmentationInputError('found no object inside the box; drag a box around the object or shift-drag over it')
  const corners = traceOutline(mask, width, height)
  const toImage = (p: PolygonPoint): PolygonPoint => ({
    x: Math.round(region.x0 + p.x * grid.scaleX),
    y: Math.round(region.y0 + p.y * grid.scaleY),
  })
  const epsilon = request.epsilon ?? Math.max(1, 0.75 * Math.max(grid.scaleX, grid.scaleY))
  const inImage = dropRepeats(corners.map(toImage))
  const polygon = dropRepeats(simplifyPolygon(inImage, epsilon))
  if (polygon.length < 3) throw new SegmentationInputError('the object region is too thin to outline; drag a larger box')
  const outlineMs = performance.now() - outlineStarted
  return {
    polygon,
    area: Math.round(area * grid.scaleX * grid.scaleY),
    scale: Math.max(grid.scaleX, grid.scaleY),
    region,
    iterations,
    timings: { prepareMs, cutMs, outlineMs },
  }
}

/** Removes consecutive duplicates (also last = first) that rounding to whole pixels creates. */
function dropRepeats(points: PolygonPoint[]): PolygonPoint[] {
  const out = points.filter((p, i) => i === 0 || p.x !== points[i - 1]!.x || p.y !== points[i - 1]!.y)
  while (out.length > 1 && out[0]!.x === out.at(-1)!.x && out[0]!.y === out.at(-1)!.y) out.pop()
  return out
}
