/**
 * Candidate boxes and the two ways to thin them out: greedy class-wise NMS (YOLO) and MediaPipe's
 * weighted NMS, which blends each cluster of overlapping boxes (and keypoints) by score. Pure.
 */

/** A detection in network-input pixels (corner form), before mapping back to the source image. */
export interface Candidate {
  x1: number
  y1: number
  x2: number
  y2: number
  score: number
  classIndex: number
  /** [x0, y0, x1, y1, …] in network-input pixels */
  keypoints?: number[]
}

/** Intersection over union of two corner-form boxes; 0 when the union is empty (§6.3). */
export function intersectionOverUnion(a: Candidate, b: Candidate): number {
  const width = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1))
  const height = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1))
  const intersection = width * height
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - intersection
  return union > 0 ? intersection / union : 0
}

const byScore = (a: Candidate, b: Candidate) => b.score - a.score

/**
 * Keeps the best box of every overlapping group: boxes of the same class overlapping a kept one by
 * more than `iouThreshold` are dropped (`classWise` false compares across classes too).
 */
export function greedyNonMaxSuppression(candidates: Candidate[], iouThreshold: number, maxDetections: number, classWise = true): Candidate[] {
  const sorted = [...candidates].sort(byScore)
  const kept: Candidate[] = []
  const suppressed = new Uint8Array(sorted.length)
  for (let i = 0; i < sorted.length && kept.length < maxDetections; i++) {
    if (suppressed[i]) continue
    const best = sorted[i]!
    kept.push(best)
    for (let j = i + 1; j < sorted.length; j++) {
      if (suppressed[j]) continue
      const other = sorted[j]!
      if (classWise && other.classIndex !== best.classIndex) continue
      if (intersectionOverUnion(best, other) > iouThreshold) suppressed[j] = 1
    }
  }
  return kept
}

/**
 * MediaPipe's blending NMS: the best remaining box and every box overlapping it by more than
 * `iouThreshold` are merged into one, coordinates and keypoints averaged with the scores as weights;
 * the merged box keeps the best score.
 */
export function weightedNonMaxSuppression(candidates: Candidate[], iouThreshold: number, maxDetections: number): Candidate[] {
  let remaining = [...candidates].sort(byScore)
  const kept: Candidate[] = []
  while (remaining.length > 0 && kept.length < maxDetections) {
    const best = remaining[0]!
    const cluster: Candidate[] = []
    const rest: Candidate[] = []
    for (const candidate of remaining) {
      if (candidate === best || (candidate.classIndex === best.classIndex && intersectionOverUnion(best, candidate) > iouThreshold)) cluster.push(candidate)
      else rest.push(candidate)
    }
    remaining = rest
    let total = 0
    const merged: Candidate = { x1: 0, y1: 0, x2: 0, y2: 0, score: best.score, classIndex: best.classIndex }
    const keypoints = best.keypoints ? new Array<number>(best.keypoints.length).fill(0) : undefined
    for (const member of cluster) {
      total += member.score
      merged.x1 += member.x1 * member.score
      merged.y1 += member.y1 * member.score
      merged.x2 += member.x2 * member.score
      merged.y2 += member.y2 * member.score
      if (keypoints && member.keypoints) for (let k = 0; k < keypoints.length; k++) keypoints[k]! += member.keypoints[k]! * member.score
    }
    if (total <= 0) {
      kept.push(best)
      continue
    }
    merged.x1 /= total; merged.y1 /= total; merged.x2 /= total; merged.y2 /= total
    if (keypoints) merged.keypoints = keypoints.map((v) => v / total)
    kept.push(merged)
  }
  return kept
}
