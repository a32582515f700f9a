/**
 * MediaPipe BlazeFace outputs → face candidates with six keypoints, in network-input pixels.
 * Layout (runtime-notes §11): per anchor grid a score tensor `[1, K, 1]` and a regressor tensor
 * `[1, K, 16]` with K = grid² × anchors per cell; anchor index = (row × grid + col) × perCell + a,
 * centre ((col + 0.5) / grid, (row + 0.5) / grid). Regressors are in input pixels: centre offset
 * (dx, dy), size (w, h), then six keypoint offsets. Scores pass through a sigmoid. Pure.
 */
import type { Candidate } from './non-max-suppression.ts'

export interface AnchorGrid {
  grid: number
  perCell: number
}

/** Both published BlazeFace variants (front 128, back 256) use 16×16×2 then 8×8×6 anchors. */
export const BLAZEFACE_ANCHOR_GRIDS: AnchorGrid[] = [{ grid: 16, perCell: 2 }, { grid: 8, perCell: 6 }]
export const BLAZEFACE_KEYPOINT_NAMES = ['right_eye', 'left_eye', 'nose', 'mouth', 'right_ear', 'left_ear'] as const
const REGRESSOR_VALUES = 16
const SCORE_CLIP = 100

/** Normalised anchor centres `[cx0, cy0, cx1, cy1, …]` for one grid. */
export function blazeFaceAnchorCentres(anchors: AnchorGrid): Float32Array {
  const centres = new Float32Array(anchors.grid * anchors.grid * anchors.perCell * 2)
  let at = 0
  for (let row = 0; row < anchors.grid; row++) {
    for (let col = 0; col < anchors.grid; col++) {
      for (let a = 0; a < anchors.perCell; a++) {
        centres[at++] = (col + 0.5) / anchors.grid
        centres[at++] = (row + 0.5) / anchors.grid
      }
    }
  }
  return centres
}

export const sigmoid = (x: number) => 1 / (1 + Math.exp(-Math.min(SCORE_CLIP, Math.max(-SCORE_CLIP, x))))

export interface BlazeFaceOutput {
  anchors: AnchorGrid
  scores: Float32Array
  regressors: Float32Array
}

/** Candidates above `confidenceThreshold` from every grid, with keypoints, in network-input pixels. */
export function decodeBlazeFace(outputs: BlazeFaceOutput[], inputWidth: number, inputHeight: number, confidenceThreshold: number): Candidate[] {
  const candidates: Candidate[] = []
  for (const { anchors, scores, regressors } of outputs) {
    const centres = blazeFaceAnchorCentres(anchors)
    const count = centres.length / 2
    if (scores.length !== count || regressors.length !== count * REGRESSOR_VALUES) {
      throw new Error(`BlazeFace output sizes (${scores.length} scores, ${regressors.length} regressors) do not fit a ${anchors.grid}×${anchors.grid}×${anchors.perCell} anchor grid`)
    }
    for (let i = 0; i < count; i++) {
      const score = sigmoid(scores[i]!)
      if (score < confidenceThreshold) continue
      const r = i * REGRESSOR_VALUES
      const anchorX = centres[2 * i]! * inputWidth
      const anchorY = centres[2 * i + 1]! * inputHeight
      const cx = anchorX + regressors[r]!
      const cy = anchorY + regressors[r + 1]!
      const w = regressors[r + 2]!
      const h = regressors[r + 3]!
      const keypoints: number[] = []
      for (let k = 0; k < 6; k++) keypoints.push(anchorX + regressors[r + 4 + 2 * k]!, anchorY + regressors[r + 5 + 2 * k]!)
      candidates.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, classIndex: 0, keypoints })
    }
  }
  return candidates
}

/** Pairs each anchor grid with its score and regressor outputs by element count; undefined when the shapes are not BlazeFace's. */
export function matchBlazeFaceOutputs(
  outputs: { name: string; dims: readonly number[] }[], grids: AnchorGrid[] = BLAZEFACE_ANCHOR_GRIDS,
): { anchors: AnchorGrid; scores: string; regressors: string }[] | undefined {
  const matched: { anchors: AnchorGrid; scores: string; regressors: string }[] = []
  for (const anchors of grids) {
    const count = anchors.grid * anchors.grid * anchors.perCell
    const last = (o: { dims: readonly number[] }) => o.dims[o.dims.length - 1]
    const middle = (o: { dims: readonly number[] }) => o.dims[o.dims.length - 2]
    const scores = outputs.find((o) => o.dims.length >= 2 && middle(o) === count && last(o) === 1)
    const regressors = outputs.find((o) => o.dims.length >= 2 && middle(o) === count && last(o) === REGRESSOR_VALUES)
    if (!scores || !regressors) return undefined
    matched.push({ anchors, scores: scores.name, regressors: regressors.name })
  }
  return matched
}
