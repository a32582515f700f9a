/**
 * What scripts/build-binary.ts bundles in place of `@napi-rs/image` when the build target's native addon
 * (e.g. @napi-rs/image-linux-arm64-gnu on an x64 build machine) is neither installed nor fetchable.
 * It offers the part of the `Transformer` API this project uses (image decoding, the local loop's and
 * the trainer's JPEG checks, JPEG encoding) on top of jpeg-js, so such a binary still works with JPEG;
 * everything else fails with an error naming the missing addon instead of a generic load failure.
 */
import jpeg from 'jpeg-js'

export const PORTABLE_IMAGE_REASON = 'this binary was built without the native @napi-rs/image addon for its platform; it decodes and encodes JPEG with jpeg-js only'

const RGB8 = 2
const MAX_MEGAPIXELS = 100

export interface PortableMetadata {
  width: number
  height: number
  format: string
  colorType: number
}

function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff
}

export class Transformer {
  private decoded?: { width: number; height: number; rgb: Uint8Array }
  private rgba?: { data: Uint8Array; width: number; height: number }

  constructor(private readonly input: Uint8Array) {}

  static fromRgbaPixels(input: Uint8Array | Uint8ClampedArray, width: number, height: number): Transformer {
    const transformer = new Transformer(new Uint8Array(0))
    transformer.rgba = { data: new Uint8Array(input.buffer, input.byteOffset, input.byteLength), width, height }
    return transformer
  }

  private decode(): { width: number; height: number; rgb: Uint8Array } {
    if (this.decoded) return this.decoded
    if (!isJpeg(this.input)) throw new Error(`not a JPEG: ${PORTABLE_IMAGE_REASON}`)
    const image = jpeg.decode(this.input, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: MAX_MEGAPIXELS, maxMemoryUsageInMB: 2048 })
    this.decoded = { width: image.width, height: image.height, rgb: image.data as Uint8Array }
    return this.decoded
  }

  metadataSync(): PortableMetadata {
    const { width, height } = this.decode()
    return { width, height, format: 'jpeg', colorType: RGB8 }
  }

  async metadata(): Promise<PortableMetadata> {
    return this.metadataSync()
  }

  rawPixelsSync(): Uint8Array {
    return this.decode().rgb
  }

  async jpeg(quality = 90): Promise<Uint8Array> {
    if (!this.rgba) throw new Error(`re-encoding an encoded image is not supported: ${PORTABLE_IMAGE_REASON}`)
    return new Uint8Array(jpeg.encode({ data: this.rgba.data, width: this.rgba.width, height: this.rgba.height }, quality).data)
  }
}
