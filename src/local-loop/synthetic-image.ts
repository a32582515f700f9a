import jpeg from 'jpeg-js'
import { createRandom, type PlannedImage, type Rgb } from './project-generator.ts'

/**
 * Draws a planned image (filled boxes with a dark outline, dots, polygons) and encodes it as JPEG with
 * jpeg-js. `beautiful` adds a gradient and grain to the background so detectors see some texture.
 */
export function renderSyntheticJpeg(image: PlannedImage, quality = 85): Uint8Array {
  const { width, height } = image
  const pixels = new Uint8Array(width * height * 4)
  paintBackground(pixels, image)
  for (const shape of image.shapes) {
    if (shape.kind === 'box') {
      fillRect(pixels, width, height, shape.x, shape.y, shape.width, shape.height, darker(shape.color))
      fillRect(pixels, width, height, shape.x + 2, shape.y + 2, shape.width - 4, shape.height - 4, shape.color)
    } else if (shape.kind === 'point') {
      fillCircle(pixels, width, height, shape.x, shape.y, shape.radius, shape.color)
    } else {
      fillPolygon(pixels, width, height, shape.points, shape.color)
    }
  }
  return new Uint8Array(jpeg.encode({ width, height, data: pixels }, quality).data)
}

function darker(rgb: Rgb): Rgb {
  return [Math.floor(rgb[0] * 0.5), Math.floor(rgb[1] * 0.5), Math.floor(rgb[2] * 0.5)]
}

function setPixel(pixels: Uint8Array, width: number, x: number, y: number, rgb: Rgb): void {
  const at = (y * width + x) * 4
  pixels[at] = rgb[0]
  pixels[at + 1] = rgb[1]
  pixels[at + 2] = rgb[2]
  pixels[at + 3] = 255
}

function paintBackground(pixels: Uint8Array, image: PlannedImage): void {
  const { width, height, background } = image
  const random = createRandom(image.seed)
  for (let y = 0; y < height; y++) {
    const shade = image.style === 'beautiful' ? 0.75 + 0.5 * (y / Math.max(1, height - 1)) : 1
    for (let x = 0; x < width; x++) {
      const grain = image.style === 'beautiful' ? (random() - 0.5) * 24 : 0
      const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v * shade + grain)))
      setPixel(pixels, width, x, y, [clamp(background[0]), clamp(background[1]), clamp(background[2])])
    }
  }
}

function fillRect(pixels: Uint8Array, width: number, height: number, x: number, y: number, w: number, h: number, rgb: Rgb): void {
  for (let row = Math.max(0, y); row < Math.min(height, y + h); row++) {
    for (let column = Math.max(0, x); column < Math.min(width, x + w); column++) setPixel(pixels, width, column, row, rgb)
  }
}

function fillCircle(pixels: Uint8Array, width: number, height: number, cx: number, cy: number, radius: number, rgb: Rgb): void {
  for (let row = Math.max(0, cy - radius); row <= Math.min(height - 1, cy + radius); row++) {
    for (let column = Math.max(0, cx - radius); column <= Math.min(width - 1, cx + radius); column++) {
      if ((column - cx) ** 2 + (row - cy) ** 2 <= radius * radius) setPixel(pixels, width, column, row, rgb)
    }
  }
}

/** Even-odd fill of a simple polygon, sampled at pixel centres. */
function fillPolygon(pixels: Uint8Array, width: number, height: number, points: { x: number; y: number }[], rgb: Rgb): void {
  if (points.length < 3) return
  const top = Math.max(0, Math.floor(Math.min(...points.map((p) => p.y))))
  const bottom = Math.min(height - 1, Math.ceil(Math.max(...points.map((p) => p.y))))
  for (let row = top; row <= bottom; row++) {
    const y = row + 0.5
    const crossings: number[] = []
    for (let i = 0; i < points.length; i++) {
      const a = points[i]!
      const b = points[(i + 1) % points.length]!
      if ((a.y <= y && b.y > y) || (b.y <= y && a.y > y)) crossings.push(a.x + ((y - a.y) / (b.y - a.y)) * (b.x - a.x))
    }
    crossings.sort((p, q) => p - q)
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      const from = Math.max(0, Math.ceil(crossings[k]! - 0.5))
      const to = Math.min(width - 1, Math.floor(crossings[k + 1]! - 0.5))
      for (let column = from; column <= to; column++) setPixel(pixels, width, column, row, rgb)
    }
  }
}
