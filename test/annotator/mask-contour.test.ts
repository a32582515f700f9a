import { describe, expect, test } from 'bun:test'
import { largestRegion, polygonArea, polygonContains, simplifyPolygon, traceOutline } from '../../src/annotator/mask-contour.ts'

function maskFrom(rows: string[]): { mask: Uint8Array; width: number; height: number } {
  const width = rows[0]!.length
  const mask = new Uint8Array(width * rows.length)
  rows.forEach((row, y) => [...row].forEach((c, x) => { mask[y * width + x] = c === '#' ? 1 : 0 }))
  return { mask, width, height: rows.length }
}

describe('largestRegion', () => {
  test('keeps the biggest 8-connected region (diagonal pixels belong together)', () => {
    const { mask, width, height } = maskFrom([
      '##....#',
      '##.....',
      '..#..##',
      '.....##',
    ])
    const { mask: kept, area } = largestRegion(mask, width, height)
    expect(area).toBe(5)
    expect([...kept].filter(Boolean)).toHaveLength(5)
    expect(kept[2 * width + 2]).toBe(1) // joined diagonally to the 2×2 block
    expect(kept[6]).toBe(0)
    expect(largestRegion(new Uint8Array(6), 3, 2).area).toBe(0)
  })
})

describe('traceOutline', () => {
  test('a rectangle gives its four corners in pixel-edge coordinates, clockwise on screen', () => {
    const { mask, width, height } = maskFrom(['.....', '.###.', '.###.', '.....'])
    expect(traceOutline(mask, width, height)).toEqual([{ x: 4, y: 1 }, { x: 4, y: 3 }, { x: 1, y: 3 }, { x: 1, y: 1 }])
  })

  test('the outline encloses exactly the region: every pixel centre of an L shape with a hole is inside (hole ignored)', () => {
    const rows = [
      '........',
      '.######.',
      '.#....#.',
      '.######.',
      '.##.....',
      '.##.....',
      '........',
    ]
    const { mask, width, height } = maskFrom(rows)
    const outline = traceOutline(mask, width, height)
    rows.forEach((row, y) => [...row].forEach((c, x) => {
      const insideHole = y === 2 && x >= 2 && x <= 5
      expect(polygonContains(outline, x + 0.5, y + 0.5)).toBe(c === '#' || insideHole)
    }))
    expect(polygonArea(outline)).toBe(18 + 4)
  })

  test('pixels touching only at a corner are walked around together; a single pixel is a square', () => {
    const { mask, width, height } = maskFrom(['##..', '##..', '..##', '..##'])
    const outline = traceOutline(mask, width, height)
    expect(polygonArea(outline)).toBe(8)
    for (const [x, y] of [[0, 0], [1, 1], [2, 2], [3, 3]]) expect(polygonContains(outline, x! + 0.5, y! + 0.5)).toBe(true)
    expect(traceOutline(Uint8Array.of(0, 1, 0, 0), 2, 2)).toEqual([{ x: 2, y: 0 }, { x: 2, y: 1 }, { x: 1, y: 1 }, { x: 1, y: 0 }])
    expect(traceOutline(new Uint8Array(4), 2, 2)).toEqual([])
  })
})

describe('simplifyPolygon', () => {
  test('a staircase diagonal collapses to a triangle within epsilon; small epsilon keeps the stairs', () => {
    const stairs = [{ x: 0, y: 0 }]
    for (let i = 0; i < 10; i++) stairs.push({ x: i + 1, y: i }, { x: i + 1, y: i + 1 })
    stairs.push({ x: 0, y: 10 })
    const simplified = simplifyPolygon(stairs, 1)
    expect(simplified).toEqual([{ x: 0, y: 0 }, { x: 10, y: 10 }, { x: 0, y: 10 }])
    expect(simplifyPolygon(stairs, 0.1)).toHaveLength(stairs.length)
    expect(simplifyPolygon(stairs.slice(0, 3), 5)).toHaveLength(3)
  })
})
