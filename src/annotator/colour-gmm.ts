/**
 * Gaussian mixture models of RGB colours (full 3×3 covariances), the colour model of GrabCut-style
 * segmentation: one mixture for the object, one for its surroundings. Deterministic (k-means with a
 * farthest-point start on an even subsample, no random numbers), so a segmentation is reproducible.
 * Parameters live in one flat array and pixels are scored in bulk: this is the hot loop. Pure.
 */

/** Added to every variance (in squared 8-bit levels): flat synthetic colours and JPEG blocks stay invertible. */
const VARIANCE_FLOOR = 4
const LOG_TWO_PI_3_2 = 1.5 * Math.log(2 * Math.PI)
const KMEANS_SAMPLE_LIMIT = 4_000
const KMEANS_ROUNDS = 6
export const MAX_COMPONENTS = 16
/** per component: log normaliser, mean r g b, inverse covariance i00 i01 i02 i11 i12 i22 */
const STRIDE = 10

export class ColourGmm {
  private constructor(
    /** flat parameters, STRIDE numbers per component */
    private readonly parameters: Float64Array,
    readonly componentCount: number,
    /** the component slots the caller used when fitting (empty slots were dropped) */
    private readonly slots: Uint8Array,
  ) {}

  /**
   * Fits a mixture to the colours of `indices` (pixel indices into `rgb`, 3 values per pixel),
   * `assignment[i]` naming the component (0…slots-1) of `indices[i]`. Empty components are dropped.
   */
  static fit(rgb: ArrayLike<number>, indices: ArrayLike<number>, assignment: ArrayLike<number>, slots: number): ColourGmm {
    if (slots > MAX_COMPONENTS) throw new Error(`at most ${MAX_COMPONENTS} mixture components`)
    const count = new Float64Array(slots)
    const sums = new Float64Array(slots * 3)
    const products = new Float64Array(slots * 6)
    for (let i = 0; i < indices.length; i++) {
      const c = assignment[i]!
      const at = indices[i]! * 3
      const r = rgb[at]!, g = rgb[at + 1]!, b = rgb[at + 2]!
      count[c]!++
      sums[c * 3]! += r; sums[c * 3 + 1]! += g; sums[c * 3 + 2]! += b
      const o = c * 6
      products[o]! += r * r; products[o + 1]! += r * g; products[o + 2]! += r * b
      products[o + 3]! += g * g; products[o + 4]! += g * b; products[o + 5]! += b * b
    }
    const parameters: number[] = []
    const used: number[] = []
    const total = indices.length
    for (let c = 0; c < slots; c++) {
      const n = count[c]!
      if (n === 0) continue
      const mr = sums[c * 3]! / n, mg = sums[c * 3 + 1]! / n, mb = sums[c * 3 + 2]! / n
      const o = c * 6
      const rr = products[o]! / n - mr * mr + VARIANCE_FLOOR
      const rg = products[o + 1]! / n - mr * mg
      const rb = products[o + 2]! / n - mr * mb
      const gg = products[o + 3]! / n - mg * mg + VARIANCE_FLOOR
      const gb = products[o + 4]! / n - mg * mb
      const bb = products[o + 5]! / n - mb * mb + VARIANCE_FLOOR
      // inverse of the symmetric matrix by its adjugate
      const a00 = gg * bb - gb * gb
      const a01 = rb * gb - rg * bb
      const a02 = rg * gb - rb * gg
      const a11 = rr * bb - rb * rb
      const a12 = rb * rg - rr * gb
      const a22 = rr * gg - rg * rg
      let determinant = rr * a00 + rg * a01 + rb * a02
      if (!(determinant > 1e-9)) determinant = 1e-9
      const logNormaliser = Math.log(n / total) - 0.5 * Math.log(determinant) - LOG_TWO_PI_3_2
      parameters.push(logNormaliser, mr, mg, mb, a00 / determinant, a01 / determinant, a02 / determinant, a11 / determinant, a12 / determinant, a22 / determinant)
      used.push(c)
    }
    if (used.length === 0) throw new Error('cannot fit a colour model to no pixels')
    return new ColourGmm(Float64Array.from(parameters), used.length, Uint8Array.from(used))
  }

  /** Fits a fresh mixture: k-means on the colours, then one Gaussian per cluster. */
  static fromClusters(rgb: ArrayLike<number>, indices: ArrayLike<number>, componentCount: number): ColourGmm {
    return ColourGmm.fit(rgb, indices, clusterColours(rgb, indices, componentCount), componentCount)
  }

  /**
   * For every pixel index in `indices` (or every pixel 0…count-1 when `indices` is a number): the data
   * cost −log p(colour) into `cost[i]` and the best-explaining component into `component[i]`.
   */
  score(rgb: ArrayLike<number>, indices: ArrayLike<number> | number, cost: Float32Array, component: Uint8Array): void {
    const m = this.parameters
    const components = this.componentCount
    const all = typeof indices === 'number'
    const length = all ? indices : indices.length
    const terms = new Float64Array(components)
    for (let i = 0; i < length; i++) {
      const at = (all ? i : (indices as ArrayLike<number>)[i]!) * 3
      const r = rgb[at]!, g = rgb[at + 1]!, b = rgb[at + 2]!
      let max = -Infinity
      let best = 0
      for (let c = 0, o = 0; c < components; c++, o += STRIDE) {
        const dr = r - m[o + 1]!, dg = g - m[o + 2]!, db = b - m[o + 3]!
        const mahalanobis = m[o + 4]! * dr * dr + m[o + 7]! * dg * dg + m[o + 9]! * db * db
          + 2 * (m[o + 5]! * dr * dg + m[o + 6]! * dr * db + m[o + 8]! * dg * db)
        const t = m[o]! - 0.5 * mahalanobis
        terms[c] = t
        if (t > max) {
          max = t
          best = c
        }
      }
      let sum = 0
      for (let c = 0; c < components; c++) sum += Math.exp(terms[c]! - max)
      cost[i] = -(max + Math.log(sum))
      component[i] = this.slots[best]!
    }
  }
}

/**
 * k-means on the colours of `indices`: farthest-point start and a few Lloyd rounds on an even subsample,
 * then every pixel goes to its nearest centre. Returns the cluster of each index.
 */
export function clusterColours(rgb: ArrayLike<number>, indices: ArrayLike<number>, clusters: number): Uint8Array {
  if (clusters > MAX_COMPONENTS) throw new Error(`at most ${MAX_COMPONENTS} colour clusters`)
  const stride = Math.max(1, Math.floor(indices.length / KMEANS_SAMPLE_LIMIT))
  const sample: number[] = []
  for (let i = 0; i < indices.length; i += stride) sample.push(indices[i]! * 3)
  const centres: number[] = []
  const distanceTo = (at: number, c: number) => {
    const dr = rgb[at]! - centres[c * 3]!, dg = rgb[at + 1]! - centres[c * 3 + 1]!, db = rgb[at + 2]! - centres[c * 3 + 2]!
    return dr * dr + dg * dg + db * db
  }
  // start at the sample colour nearest the mean, then keep adding the colour farthest from all centres
  let mr = 0, mg = 0, mb = 0
  for (const at of sample) {
    mr += rgb[at]!; mg += rgb[at + 1]!; mb += rgb[at + 2]!
  }
  centres.push(mr / sample.length, mg / sample.length, mb / sample.length)
  let first = sample[0]!
  for (const at of sample) if (distanceTo(at, 0) < distanceTo(first, 0)) first = at
  centres.splice(0, 3, rgb[first]!, rgb[first + 1]!, rgb[first + 2]!)
  const nearest = new Float64Array(sample.length).fill(Infinity)
  while (centres.length / 3 < clusters) {
    let farthest = -1
    let farthestDistance = 0
    const latest = centres.length / 3 - 1
    for (let s = 0; s < sample.length; s++) {
      nearest[s] = Math.min(nearest[s]!, distanceTo(sample[s]!, latest))
      if (nearest[s]! > farthestDistance) {
        farthestDistance = nearest[s]!
        farthest = s
      }
    }
    if (farthest < 0) break // fewer distinct colours than clusters
    const at = sample[farthest]!
    centres.push(rgb[at]!, rgb[at + 1]!, rgb[at + 2]!)
  }
  const count = centres.length / 3
  const nearestCentre = (at: number) => {
    let best = 0
    let bestDistance = Infinity
    for (let c = 0; c < count; c++) {
      const d = distanceTo(at, c)
      if (d < bestDistance) {
        bestDistance = d
        best = c
      }
    }
    return best
  }
  for (let round = 0; round < KMEANS_ROUNDS; round++) {
    const sums = new Float64Array(count * 4)
    for (const at of sample) {
      const c = nearestCentre(at) * 4
      sums[c]! += rgb[at]!; sums[c + 1]! += rgb[at + 1]!; sums[c + 2]! += rgb[at + 2]!; sums[c + 3]!++
    }
    for (let c = 0; c < count; c++) {
      const n = sums[c * 4 + 3]!
      if (n > 0) {
        centres[c * 3] = sums[c * 4]! / n
        centres[c * 3 + 1] = sums[c * 4 + 1]! / n
        centres[c * 3 + 2] = sums[c * 4 + 2]! / n
      }
    }
  }
  const assignment = new Uint8Array(indices.length)
  for (let i = 0; i < indices.length; i++) assignment[i] = nearestCentre(indices[i]! * 3)
  return assignment
}
