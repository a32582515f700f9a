import { describe, expect, test } from 'bun:test'
import {
  BLAZEFACE_ANCHOR_GRIDS, blazeFaceAnchorCentres, decodeBlazeFace, matchBlazeFaceOutputs, sigmoid,
} from '../../src/inference/blazeface-decoding.ts'
import { weightedNonMaxSuppression, type Candidate } from '../../src/inference/non-max-suppression.ts'

describe('BlazeFace anchors', () => {
  test('index = (row × grid + col) × perCell + a, centre at ((col + 0.5) / grid, (row + 0.5) / grid)', () => {
    const centres = blazeFaceAnchorCentres({ grid: 16, perCell: 2 })
    expect(centres.length).toBe(16 * 16 * 2 * 2)
    const index = (3 * 16 + 5) * 2 + 1 // row 3, col 5, second anchor
    expect(centres[2 * index]).toBeCloseTo(5.5 / 16, 6)
    expect(centres[2 * index + 1]).toBeCloseTo(3.5 / 16, 6)
    const small = blazeFaceAnchorCentres({ grid: 8, perCell: 6 })
    expect(small.length / 2).toBe(384)
    expect([small[0], small[1], small[2 * 383], small[2 * 383 + 1]]).toEqual([0.5 / 8, 0.5 / 8, 7.5 / 8, 7.5 / 8])
  })

  test('both published variants have 512 + 384 anchors', () => {
    expect(BLAZEFACE_ANCHOR_GRIDS.map((g) => g.grid ** 2 * g.perCell)).toEqual([512, 384])
  })
})

describe('BlazeFace decoding', () => {
  // a 2×2 grid, one anchor per cell, on a 128×128 input: anchor 3 is centred at (96, 96) px
  const anchors = { grid: 2, perCell: 1 }
  const scores = Float32Array.from([-5, -5, -5, 2])
  const regressors = new Float32Array(4 * 16)
  regressors.set([4, -8, 32, 40, -10, -5, 10, -5, 0, 0, 0, 10, -20, 0, 20, 0], 3 * 16)

  test('sigmoid scores, centre + offset, size, six keypoints relative to the anchor', () => {
    const candidates = decodeBlazeFace([{ anchors, scores, regressors }], 128, 128, 0.5)
    expect(candidates).toHaveLength(1)
    const face = candidates[0]!
    expect(face.score).toBeCloseTo(1 / (1 + Math.exp(-2)), 6)
    expect([face.x1, face.y1, face.x2, face.y2]).toEqual([84, 68, 116, 108])
    expect(face.keypoints).toEqual([86, 91, 106, 91, 96, 96, 96, 106, 76, 96, 116, 96])
  })

  test('the threshold applies after the sigmoid, and extreme logits do not overflow', () => {
    expect(decodeBlazeFace([{ anchors, scores, regressors }], 128, 128, 0.9)).toHaveLength(0)
    expect(sigmoid(1e6)).toBe(1)
    expect(sigmoid(-1e6)).toBeGreaterThanOrEqual(0)
  })

  test('output sizes that do not fit the grid are an error', () => {
    expect(() => decodeBlazeFace([{ anchors, scores: new Float32Array(3), regressors }], 128, 128, 0.5)).toThrow('do not fit')
  })

  test('outputs are paired with grids by their element counts, whatever their order', () => {
    const outputs = [
      { name: 'Identity:0', dims: [1, 512, 1] }, { name: 'Identity_1:0', dims: [1, 384, 1] },
      { name: 'Identity_2:0', dims: [1, 512, 16] }, { name: 'Identity_3:0', dims: [1, 384, 16] },
    ]
    expect(matchBlazeFaceOutputs([...outputs].reverse())).toEqual([
      { anchors: { grid: 16, perCell: 2 }, scores: 'Identity:0', regressors: 'Identity_2:0' },
      { anchors: { grid: 8, perCell: 6 }, scores: 'Identity_1:0', regressors: 'Identity_3:0' },
    ])
    expect(matchBlazeFaceOutputs([{ name: 'output0', dims: [1, 84, 8400] }])).toBeUndefined()
  })
})

describe('weighted NMS', () => {
  test('overlapping boxes blend by score, keypoints too; the best score stays', () => {
    const a: Candidate = { x1: 0, y1: 0, x2: 10, y2: 10, score: 0.9, classIndex: 0, keypoints: [2, 2] }
    const b: Candidate = { x1: 1, y1: 1, x2: 11, y2: 11, score: 0.6, classIndex: 0, keypoints: [4, 4] }
    const far: Candidate = { x1: 50, y1: 50, x2: 60, y2: 60, score: 0.5, classIndex: 0, keypoints: [55, 55] }
    const kept = weightedNonMaxSuppression([far, b, a], 0.3, 10)
    expect(kept).toHaveLength(2)
    const merged = kept[0]!
    expect(merged.score).toBe(0.9)
    expect(merged.x1).toBeCloseTo(0.6 / 1.5, 10)
    expect(merged.x2).toBeCloseTo((9 + 6.6) / 1.5, 10)
    expect(merged.keypoints![0]).toBeCloseTo((1.8 + 2.4) / 1.5, 10)
    expect(kept[1]).toEqual(far)
  })
})
