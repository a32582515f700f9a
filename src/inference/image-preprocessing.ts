/**
 * RGB pixels → the network's input tensor: letterbox or stretch with bilinear sampling (OpenCV
 * INTER_LINEAR, half-pixel centres), channel order, `(pixel * scale - mean) / std`, NCHW or NHWC.
 * Pure; a TensorPreprocessor keeps its output tensor and sampling tables between calls, so a
 * stream of same-sized frames allocates nothing.
 */
import type { RgbImage } from './image-decoding.ts'

export type ResizeMode = 'letterbox' | 'stretch'
export type TensorLayout = 'nchw' | 'nhwc'
export type ChannelOrder = 'rgb' | 'bgr'

export interface PreprocessingSpec {
  width: number
  height: number
  resize: ResizeMode
  /** 0–255, the grey of letterbox borders */
  padValue: number
  layout: TensorLayout
  channelOrder: ChannelOrder
  scale: number
  mean: [number, number, number]
  std: [number, number, number]
}

/** How source pixels map into the network input: `network = source * scale + pad`. */
export interface ImageGeometry {
  sourceWidth: number
  sourceHeight: number
  scaleX: number
  scaleY: number
  padX: number
  padY: number
}

/** Where the source image lands inside the network input. */
export function computeGeometry(sourceWidth: number, sourceHeight: number, spec: Pick<PreprocessingSpec, 'width' | 'height' | 'resize'>): ImageGeometry {
  if (spec.resize === 'stretch') {
    return { sourceWidth, sourceHeight, scaleX: spec.width / sourceWidth, scaleY: spec.height / sourceHeight, padX: 0, padY: 0 }
  }
  const ratio = Math.min(spec.width / sourceWidth, spec.height / sourceHeight)
  const resizedWidth = Math.max(1, Math.min(spec.width, Math.round(sourceWidth * ratio)))
  const resizedHeight = Math.max(1, Math.min(spec.height, Math.round(sourceHeight * ratio)))
  return {
    sourceWidth, sourceHeight,
    scaleX: resizedWidth / sourceWidth, scaleY: resizedHeight / sourceHeight,
    padX: Math.floor((spec.width - resizedWidth) / 2), padY: Math.floor((spec.height - resizedHeight) / 2),
  }
}

/** The size the source is resampled to inside the network input: a reduced-scale decode must not go below it. */
export function resampledSize(sourceWidth: number, sourceHeight: number, spec: Pick<PreprocessingSpec, 'width' | 'height' | 'resize'>): { width: number; height: number } {
  const geometry = computeGeometry(sourceWidth, sourceHeight, spec)
  return { width: Math.round(sourceWidth * geometry.scaleX), height: Math.round(sourceHeight * geometry.scaleY) }
}

interface SamplingTable { first: Int32Array; second: Int32Array; weight: Float32Array }

/** For each destination index: the two source indices and the weight of the second (half-pixel centres, clamped). */
function buildSamplingTable(sourceSize: number, destinationSize: number, stride: number): SamplingTable {
  const first = new Int32Array(destinationSize)
  const second = new Int32Array(destinationSize)
  const weight = new Float32Array(destinationSize)
  const ratio = sourceSize / destinationSize
  for (let d = 0; d < destinationSize; d++) {
    const position = Math.min(sourceSize - 1, Math.max(0, (d + 0.5) * ratio - 0.5))
    const low = Math.floor(position)
    const high = Math.min(sourceSize - 1, low + 1)
    first[d] = low * stride
    second[d] = high * stride
    weight[d] = position - low
  }
  return { first, second, weight }
}

export class TensorPreprocessor {
  readonly tensor: Float32Array
  private readonly multiplier: Float32Array
  private readonly offset: Float32Array
  private readonly channelTarget: Int32Array
  private columns?: { key: string; table: SamplingTable }
  private rows?: { key: string; table: SamplingTable }

  constructor(readonly spec: PreprocessingSpec) {
    this.tensor = new Float32Array(spec.width * spec.height * 3)
    // value = pixel * multiplier + offset  ==  (pixel * scale - mean) / std
    this.multiplier = Float32Array.from(spec.std, (s) => spec.scale / s)
    this.offset = Float32Array.from(spec.mean, (m, c) => -m / spec.std[c]!)
    // source pixels are RGB: in BGR order source channel 0 (red) is tensor channel 2
    this.channelTarget = Int32Array.from(spec.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2])
  }

  /**
   * Fills `tensor` (default `this.tensor`; a batch gives each image its own) from `image` and returns it with the
   * geometry that maps detections back. An image decoded at reduced scale is placed by its original size, so
   * detections come back in original pixels.
   */
  prepare(image: RgbImage, tensor: Float32Array = this.tensor): { tensor: Float32Array; geometry: ImageGeometry } {
    const { width: netWidth, height: netHeight, layout } = this.spec
    const source = image.original ?? image
    const geometry = computeGeometry(source.width, source.height, this.spec)
    const resizedWidth = Math.round(source.width * geometry.scaleX)
    const resizedHeight = Math.round(source.height * geometry.scaleY)
    const columnKey = `${image.width}>${resizedWidth}`
    if (this.columns?.key !== columnKey) this.columns = { key: columnKey, table: buildSamplingTable(image.width, resizedWidth, 3) }
    const rowKey = `${image.height}>${resizedHeight}`
    if (this.rows?.key !== rowKey) this.rows = { key: rowKey, table: buildSamplingTable(image.height, resizedHeight, image.width * 3) }
    if (resizedWidth < netWidth || resizedHeight < netHeight) this.fillPadding(tensor, geometry, resizedWidth, resizedHeight)
    const data = image.data
    const { first: x0, second: x1, weight: wx } = this.columns.table
    const { first: y0, second: y1, weight: wy } = this.rows.table
    // where source channel k lands (tensor channel index) and its affine normalisation
    const target = this.channelTarget
    const [t0, t1, t2] = target as unknown as [number, number, number]
    const m0 = this.multiplier[t0]!, m1 = this.multiplier[t1]!, m2 = this.multiplier[t2]!
    const o0 = this.offset[t0]!, o1 = this.offset[t1]!, o2 = this.offset[t2]!
    const plane = netWidth * netHeight
    // NCHW: channel c of pixel p at c * plane + p; NHWC: at p * 3 + c
    const channelStride = layout === 'nchw' ? plane : 1
    const pixelStride = layout === 'nchw' ? 1 : 3
    const base0 = t0 * channelStride, base1 = t1 * channelStride, base2 = t2 * channelStride
    if (resizedWidth === image.width && resizedHeight === image.height) {
      // no scaling (e.g. a 640-wide frame into a 640 letterbox): copy and normalise only
      for (let y = 0; y < resizedHeight; y++) {
        let source = y * image.width * 3
        let out = ((y + geometry.padY) * netWidth + geometry.padX) * pixelStride
        for (let x = 0; x < resizedWidth; x++, out += pixelStride, source += 3) {
          tensor[base0 + out] = data[source]! * m0 + o0
          tensor[base1 + out] = data[source + 1]! * m1 + o1
          tensor[base2 + out] = data[source + 2]! * m2 + o2
        }
      }
      return { tensor, geometry }
    }
    for (let y = 0; y < resizedHeight; y++) {
      const rowA = y0[y]!
      const rowB = y1[y]!
      const fy = wy[y]!
      let out = ((y + geometry.padY) * netWidth + geometry.padX) * pixelStride
      for (let x = 0; x < resizedWidth; x++, out += pixelStride) {
        const a = rowA + x0[x]!
        const b = rowA + x1[x]!
        const c = rowB + x0[x]!
        const d = rowB + x1[x]!
        const fx = wx[x]!
        const top0 = data[a]! + (data[b]! - data[a]!) * fx
        const top1 = data[a + 1]! + (data[b + 1]! - data[a + 1]!) * fx
        const top2 = data[a + 2]! + (data[b + 2]! - data[a + 2]!) * fx
        const bottom0 = data[c]! + (data[d]! - data[c]!) * fx
        const bottom1 = data[c + 1]! + (data[d + 1]! - data[c + 1]!) * fx
        const bottom2 = data[c + 2]! + (data[d + 2]! - data[c + 2]!) * fx
        tensor[base0 + out] = (top0 + (bottom0 - top0) * fy) * m0 + o0
        tensor[base1 + out] = (top1 + (bottom1 - top1) * fy) * m1 + o1
        tensor[base2 + out] = (top2 + (bottom2 - top2) * fy) * m2 + o2
      }
    }
    return { tensor, geometry }
  }

  private fillPadding(tensor: Float32Array, geometry: ImageGeometry, resizedWidth: number, resizedHeight: number): void {
    const { width: netWidth, height: netHeight, layout, padValue } = this.spec
    const plane = netWidth * netHeight
    const right = geometry.padX + resizedWidth
    const bottom = geometry.padY + resizedHeight
    // pixel ranges [start, end) outside the image: the top band, left/right strips per row, the bottom band
    const ranges: [number, number][] = [[0, geometry.padY * netWidth], [bottom * netWidth, plane]]
    if (geometry.padX > 0 || right < netWidth) {
      for (let y = geometry.padY; y < bottom; y++) {
        ranges.push([y * netWidth, y * netWidth + geometry.padX], [y * netWidth + right, (y + 1) * netWidth])
      }
    }
    for (let c = 0; c < 3; c++) {
      const value = padValue * this.multiplier[c]! + this.offset[c]!
      for (const [start, end] of ranges) {
        if (end <= start) continue
        if (layout === 'nchw') tensor.fill(value, c * plane + start, c * plane + end)
        else for (let p = start; p < end; p++) tensor[p * 3 + c] = value
      }
    }
  }
}
