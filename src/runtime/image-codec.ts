/**
 * The image codecs built into the runtime, where it has any: Bun.Image (libjpeg-turbo, libspng, libwebp).
 * Deno has none, so `BUILTIN_IMAGE_CODEC` is undefined there and callers decode at full size with their
 * own decoder (and cannot read the size of a WebP/GIF/BMP before decoding it).
 */
export interface BuiltinImageCodec {
  /** width and height from the header (WebP, GIF, BMP and the rest), no pixels allocated */
  size(bytes: Uint8Array): Promise<{ width: number; height: number }>
  /**
   * A JPEG decoded at exactly `width`×`height`, a DCT scale of its size (libjpeg-turbo's scaled IDCT never
   * builds the full image), as an uncompressed PNG: Bun.Image has no raw-pixel output. EXIF orientation is
   * not applied.
   */
  jpegAsPng(bytes: Uint8Array, width: number, height: number): Promise<Uint8Array>
}

type BunImageClass = typeof Bun.Image

function bunImageCodec(BunImage: BunImageClass): BuiltinImageCodec {
  return {
    async size(bytes) {
      const { width, height } = await new BunImage(bytes).metadata()
      return { width, height }
    },
    // at exactly the DCT-scaled size the box filter is a copy
    jpegAsPng: (bytes, width, height) => new BunImage(bytes, { autoOrient: false }).resize(width, height, { filter: 'box' }).png({ compressionLevel: 0 }).bytes(),
  }
}

const BunImage = (globalThis as { Bun?: { Image?: BunImageClass } }).Bun?.Image

export const BUILTIN_IMAGE_CODEC: BuiltinImageCodec | undefined = BunImage ? bunImageCodec(BunImage) : undefined
