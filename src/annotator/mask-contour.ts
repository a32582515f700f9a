/**
 * From a binary mask to a polygon: the largest 8-connected region, the outline of that region traced
 * along pixel edges (so the polygon encloses exactly its pixels, holes ignored), and Douglas–Peucker
 * simplification of the closed outline. Pure.
 */

export interface PolygonPoint {
  x: number
  y: number
}

/**
 * Keeps only the largest 8-connected region of `mask` (1 = inside). Returns the new mask and the
 * region's pixel count (0 when the mask is empty).
 */
export function largestRegion(mask: Uint8Array, width: number, height: number): { mask: Uint8Array; area: number } {
  const label = new Int32Array(mask.length)
  const stack = new Int32Array(mask.length)
  let nextLabel = 0
  let bestLabel = 0
  let bestArea = 0
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || label[start]) continue
    nextLabel++
    let area = 0
    let top = 0
    stack[top++] = start
    label[start] = nextLabel
    while (top > 0) {
      const p = stack[--top]!
      area++
      const x = p % width
      const y = (p - x) / width
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy
        if (ny < 0 || ny >= height) continue
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx
          if (nx < 0 || nx >= width || (dx === 0 && dy === 0)) continue
          const q = ny * width + nx
          if (mask[q] && !label[q]) {
            label[q] = nextLabel
            stack[top++] = q
          }
        }
      }
    }
    if (area > bestArea) {
      bestArea = area
      bestLabel = nextLabel
    }
  }
  const out = new Uint8Array(mask.length)
  if (bestArea > 0) for (let p = 0; p < mask.length; p++) out[p] = label[p] === bestLabel ? 1 : 0
  return { mask: out, area: bestArea }
}

// headings in y-down image coordinates: east, south, west, north
const HEADING_DX = [1, 0, -1, 0]
const HEADING_DY = [0, 1, 0, -1]

/**
 * The outer outline of the 8-connected region that holds the first set pixel in raster order, as
 * the corners (pixel-edge coordinates, 0…width × 0…height) where the outline turns. Clockwise on screen.
 * Walks the pixel edges with the region on the right; where two region pixels touch only at a corner,
 * the walk passes between them (8-connectivity), so the whole region is enclosed.
 */
export function traceOutline(mask: Uint8Array, width: number, height: number): PolygonPoint[] {
  let start = -1
  for (let p = 0; p < mask.length; p++) {
    if (mask[p]) {
      start = p
      break
    }
  }
  if (start < 0) return []
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] === 1
  const startX = start % width
  const startY = (start - startX) / width
  // the first pixel's top edge is on the outline; walk it eastwards, region below (= on the right)
  let x = startX
  let y = startY
  let heading = 0
  const corners: PolygonPoint[] = []
  const limit = 4 * (mask.length + width + height) + 8
  for (let steps = 0; ; steps++) {
    if (steps > limit) throw new Error('outline tracing did not close; the mask is inconsistent')
    x += HEADING_DX[heading]!
    y += HEADING_DY[heading]!
    // the two pixels ahead of the corner (x, y), to the left and to the right of the heading
    let leftAhead: boolean
    let rightAhead: boolean
    switch (heading) {
      case 0: leftAhead = inside(x, y - 1); rightAhead = inside(x, y); break
      case 1: leftAhead = inside(x, y); rightAhead = inside(x - 1, y); break
      case 2: leftAhead = inside(x - 1, y); rightAhead = inside(x - 1, y - 1); break
      default: leftAhead = inside(x - 1, y - 1); rightAhead = inside(x, y - 1); break
    }
    let next = heading
    if (leftAhead) next = (heading + 3) % 4
    else if (!rightAhead) next = (heading + 1) % 4
    if (next !== heading) corners.push({ x, y })
    heading = next
    if (x === startX && y === startY && heading === 0) break
  }
  return corners
}

/** Distance from p to the segment a–b. */
function distanceToSegment(p: PolygonPoint, a: PolygonPoint, b: PolygonPoint): number {
  const dx = b.x - a.x
  const dy = b.y - a.y
  const lengthSquared = dx * dx + dy * dy
  if (lengthSquared === 0) return Math.hypot(p.x - a.x, p.y - a.y)
  const t = Math.max(0, Math.min(1, ((p.x - a.x) * dx + (p.y - a.y) * dy) / lengthSquared))
  return Math.hypot(p.x - a.x - t * dx, p.y - a.y - t * dy)
}

/** Douglas–Peucker on an open chain; keeps the end points. */
function simplifyChain(points: readonly PolygonPoint[], epsilon: number): PolygonPoint[] {
  if (points.length <= 2) return [...points]
  const keep = new Uint8Array(points.length)
  keep[0] = 1
  keep[points.length - 1] = 1
  const stack: [number, number][] = [[0, points.length - 1]]
  while (stack.length > 0) {
    const [first, last] = stack.pop()!
    let farthest = -1
    let farthestDistance = epsilon
    for (let i = first + 1; i < last; i++) {
      const d = distanceToSegment(points[i]!, points[first]!, points[last]!)
      if (d > farthestDistance) {
        farthestDistance = d
        farthest = i
      }
    }
    if (farthest >= 0) {
      keep[farthest] = 1
      stack.push([first, farthest], [farthest, last])
    }
  }
  return points.filter((_, i) => keep[i])
}

/**
 * Douglas–Peucker on a closed polygon: split at the vertex farthest from the first one and simplify both
 * halves, so no vertex is special. Keeps at least a triangle when the input has one.
 */
export function simplifyPolygon(points: readonly PolygonPoint[], epsilon: number): PolygonPoint[] {
  if (points.length <= 3 || !(epsilon > 0)) return [...points]
  let split = 1
  let splitDistance = -1
  for (let i = 1; i < points.length; i++) {
    const d = Math.hypot(points[i]!.x - points[0]!.x, points[i]!.y - points[0]!.y)
    if (d > splitDistance) {
      splitDistance = d
      split = i
    }
  }
  const firstHalf = simplifyChain(points.slice(0, split + 1), epsilon)
  const secondHalf = simplifyChain([...points.slice(split), points[0]!], epsilon)
  const result = [...firstHalf, ...secondHalf.slice(1, -1)]
  return result.length >= 3 ? result : [...points]
}

/** Shoelace area of a polygon (absolute). */
export function polygonArea(points: readonly PolygonPoint[]): number {
  let twice = 0
  for (let i = 0; i < points.length; i++) {
    const a = points[i]!
    const b = points[(i + 1) % points.length]!
    twice += a.x * b.y - b.x * a.y
  }
  return Math.abs(twice) / 2
}

/** Even–odd rule: is (x, y) inside the polygon? */
export function polygonContains(points: readonly PolygonPoint[], x: number, y: number): boolean {
  let inside = false
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const a = points[i]!
    const b = points[j]!
    if ((a.y > y) !== (b.y > y) && x < ((b.x - a.x) * (y - a.y)) / (b.y - a.y) + a.x) inside = !inside
  }
  return inside
}
