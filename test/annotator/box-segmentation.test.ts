import { describe, expect, test } from 'bun:test'
import { segmentBox, SegmentationInputError } from '../../src/annotator/box-segmentation.ts'
import { ColourGmm } from '../../src/annotator/colour-gmm.ts'
import { polygonArea, polygonContains } from '../../src/annotator/mask-contour.ts'
import type { RgbImage } from '../../src/inference/image-decoding.ts'

function seeded(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 16807) % 2147483647
    return (state - 1) / 2147483646
  }
}

/** A noisy picture: `inside(x, y)` pixels get `object` colours, the rest `background`, each ±noise. */
function paint(width: number, height: number, inside: (x: number, y: number) => boolean, colours: { object: (x: number, y: number) => number[]; background: (x: number, y: number) => number[] }, noise = 12, seed = 7): RgbImage {
  const random = seeded(seed)
  const data = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const colour = inside(x, y) ? colours.object(x, y) : colours.background(x, y)
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(colour[c]! + (random() - 0.5) * 2 * noise)))
    }
  }
  return { width, height, data }
}

/** Intersection over union of a polygon with the pixel set `inside`, on pixel centres. */
function iou(polygon: { x: number; y: number }[], width: number, height: number, inside: (x: number, y: number) => boolean): number {
  let both = 0
  let either = 0
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const a = polygonContains(polygon, x + 0.5, y + 0.5)
      const b = inside(x, y)
      if (a && b) both++
      if (a || b) either++
    }
  }
  return both / either
}

const disc = (cx: number, cy: number, r: number) => (x: number, y: number) => (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r

describe('segmentBox', () => {
  test('finds a noisy disc inside a loose box (IoU > 0.95) at full resolution', () => {
    const inside = disc(100, 80, 40)
    const image = paint(200, 160, inside, { object: () => [200, 60, 40], background: () => [60, 120, 70] })
    const result = segmentBox(image, { box: { x0: 50, y0: 30, x1: 152, y1: 132 }, maxWorkingPixels: 40_000 })
    expect(result.scale).toBe(1)
    expect(iou(result.polygon, 200, 160, inside)).toBeGreaterThan(0.95)
    expect(result.area).toBeGreaterThan(0.9 * Math.PI * 40 * 40)
    expect(result.polygon.every((p) => Number.isInteger(p.x) && Number.isInteger(p.y))).toBe(true)
  })

  test('downscaled work on a larger photo still outlines the object (IoU > 0.93), with a two-tone object and background', () => {
    const inside = (x: number, y: number) => ((x - 500) / 260) ** 2 + ((y - 380) / 200) ** 2 <= 1
    const image = paint(1000, 760, inside, {
      object: (x) => (x < 500 ? [220, 200, 40] : [230, 120, 30]),
      background: (_x, y) => (y < 380 ? [40, 60, 160] : [50, 140, 60]),
    }, 20)
    const result = segmentBox(image, { box: { x0: 220, y0: 160, x1: 780, y1: 600 }, maxWorkingPixels: 20_000 })
    expect(result.scale).toBeGreaterThan(2)
    expect(iou(result.polygon, 1000, 760, inside)).toBeGreaterThan(0.93)
  })

  test('a box over the whole image uses its border band as the first background guess', () => {
    const inside = disc(60, 50, 25)
    const image = paint(120, 100, inside, { object: () => [240, 240, 240], background: () => [20, 20, 20] })
    const result = segmentBox(image, { box: { x0: 0, y0: 0, x1: 120, y1: 100 } })
    expect(iou(result.polygon, 120, 100, inside)).toBeGreaterThan(0.9)
  })

  test('strokes are hard constraints: background strokes cut a part away, foreground strokes add one beyond the box', () => {
    // two touching discs of the same colour; the box holds both
    const left = disc(70, 60, 30)
    const right = disc(125, 60, 30)
    const image = paint(200, 120, (x, y) => left(x, y) || right(x, y), { object: () => [30, 30, 200], background: () => [200, 200, 190] })
    const both = segmentBox(image, { box: { x0: 30, y0: 20, x1: 165, y1: 100 } })
    expect(polygonContains(both.polygon, 125, 60)).toBe(true)
    const cut = segmentBox(image, { box: { x0: 30, y0: 20, x1: 165, y1: 100 }, background: [{ points: [{ x: 100, y: 25 }, { x: 100, y: 95 }], radius: 3 }, { points: [{ x: 125, y: 60 }], radius: 20 }] })
    expect(polygonContains(cut.polygon, 70, 60)).toBe(true)
    expect(polygonContains(cut.polygon, 125, 60)).toBe(false)
    // a box around the left disc only, plus a shift-stroke over the right one: the object grows beyond the box
    const grown = segmentBox(image, { box: { x0: 35, y0: 25, x1: 100, y1: 95 }, foreground: [{ points: [{ x: 120, y: 60 }, { x: 135, y: 60 }], radius: 3 }] })
    expect(polygonContains(grown.polygon, 70, 60)).toBe(true)
    expect(polygonContains(grown.polygon, 125, 60)).toBe(true)
  })

  test('epsilon controls the simplification', () => {
    const inside = disc(100, 80, 40)
    const image = paint(200, 160, inside, { object: () => [200, 60, 40], background: () => [60, 120, 70] })
    const fine = segmentBox(image, { box: { x0: 50, y0: 30, x1: 152, y1: 132 }, epsilon: 0.5 })
    const coarse = segmentBox(image, { box: { x0: 50, y0: 30, x1: 152, y1: 132 }, epsilon: 6 })
    expect(coarse.polygon.length).toBeLessThan(fine.polygon.length / 3)
    expect(Math.abs(polygonArea(coarse.polygon) - polygonArea(fine.polygon)) / polygonArea(fine.polygon)).toBeLessThan(0.1)
  })

  test('a box outside the image, a tiny box, or strokes that decide everything are input errors', () => {
    const image = paint(50, 40, () => false, { object: () => [0, 0, 0], background: () => [100, 100, 100] })
    expect(() => segmentBox(image, { box: { x0: 60, y0: 10, x1: 90, y1: 30 } })).toThrow(SegmentationInputError)
    expect(() => segmentBox(image, { box: { x0: 10, y0: 10, x1: 11, y1: 30 } })).toThrow('at least 2×2 pixels')
    expect(() => segmentBox(image, { box: { x0: 10, y0: 10, x1: 30, y1: 30 }, background: [{ points: [{ x: 20, y: 20 }], radius: 30 }] }))
      .toThrow(SegmentationInputError)
  })
})

describe('ColourGmm', () => {
  test('red pixels cost little under a model of red pixels and much under a model of green ones', () => {
    const rgb = new Float32Array([250, 10, 10, 240, 20, 5, 245, 0, 15, 10, 250, 10, 20, 240, 0, 5, 245, 12])
    const red = ColourGmm.fromClusters(rgb, [0, 1, 2], 2)
    const green = ColourGmm.fromClusters(rgb, [3, 4, 5], 2)
    const costs = new Float32Array(6)
    const components = new Uint8Array(6)
    red.score(rgb, 6, costs, components)
    const underRed = [...costs]
    green.score(rgb, 6, costs, components)
    for (let i = 0; i < 3; i++) expect(underRed[i]!).toBeLessThan(costs[i]! - 50)
    for (let i = 3; i < 6; i++) expect(costs[i]!).toBeLessThan(underRed[i]! - 50)
    expect(() => ColourGmm.fit(rgb, [], [], 3)).toThrow('no pixels')
  })
})
