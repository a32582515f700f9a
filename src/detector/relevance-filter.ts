import type { BoxDetection, ImageMetadata, PointDetection } from '../contract/index.ts'

/**
 * The detector's relevance filter (§7.5): which detection results are worth sending back to the Loop.
 * Pure: no I/O and no timers; the caller passes `nowMs`. The detector adds the returned causes to the
 * metadata tags and saves the image to the outbox when there are any.
 */

/** Observations not seen for this long are forgotten (upstream `reset_time` = 3600 s). */
export const FORGET_AFTER_MS = 3_600_000
/** Boxes of the same category with at least this IoU are the same object. */
export const BOX_IOU_THRESHOLD = 0.5
/** Points of the same category closer than this (strictly) are the same object. */
export const POINT_DISTANCE_THRESHOLD_PX = 10
/** At this many detections in one image the image is sent regardless of confidence. */
export const UNEXPECTED_OBSERVATIONS_THRESHOLD = 80
/** Upstream keeps every observation for an hour; a busy camera could grow without bound. */
export const DEFAULT_MAX_OBSERVATIONS_PER_CAMERA = 10_000
/** Camera ids come from request headers; a misbehaving client could invent a new one per request. */
export const DEFAULT_MAX_CAMERAS = 1_000

export const UNCERTAIN_CAUSE = 'uncertain'
export const SEGMENTATION_CAUSE = 'segmentation_detection'
export const UNEXPECTED_OBSERVATIONS_CAUSE = 'unexpected_observations_count'

interface BoxGeometry { x: number; y: number; width: number; height: number }
interface PointGeometry { x: number; y: number }

/** Intersection over union of two boxes (top-left x/y, width, height); 0 when the union is empty. */
export function boxIou(a: BoxGeometry, b: BoxGeometry): number {
  const intersectionWidth = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x))
  const intersectionHeight = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y))
  const intersection = intersectionWidth * intersectionHeight
  const union = a.width * a.height + b.width * b.height - intersection
  return union > 0 ? intersection / union : 0
}

/** Euclidean distance of two points in pixels. */
export function pointDistance(a: PointGeometry, b: PointGeometry): number {
  return Math.hypot(a.x - b.x, a.y - b.y)
}

export function isUncertain(confidence: number, minUncertain: number, maxUncertain: number): boolean {
  return minUncertain <= confidence && confidence <= maxUncertain
}

export type Observation =
  | { kind: 'box'; detection: BoxDetection; lastSeenMs: number }
  | { kind: 'point'; detection: PointDetection; lastSeenMs: number }

/** Upstream `Observation.is_older_than`: last seen strictly before `nowMs - ageMs`. */
export function isOlderThan(observation: { lastSeenMs: number }, ageMs: number, nowMs: number): boolean {
  return observation.lastSeenMs < nowMs - ageMs
}

export function isSimilarObservation(observation: Observation, kind: 'box', detection: BoxDetection): boolean
export function isSimilarObservation(observation: Observation, kind: 'point', detection: PointDetection): boolean
export function isSimilarObservation(observation: Observation, kind: 'box' | 'point', detection: BoxDetection | PointDetection): boolean {
  if (observation.kind !== kind || observation.detection.category_name !== detection.category_name) return false
  if (observation.kind === 'box') return boxIou(observation.detection, detection as BoxDetection) >= BOX_IOU_THRESHOLD
  return pointDistance(observation.detection, detection) < POINT_DISTANCE_THRESHOLD_PX
}

/**
 * The box and point observations of one camera. Indexed by kind and category, because similarity is only
 * ever checked within one category and an image can bring 80+ detections.
 */
export class ObservationHistory {
  private readonly byCategory = new Map<string, Observation[]>()
  private count = 0

  constructor(private readonly maxObservations = DEFAULT_MAX_OBSERVATIONS_PER_CAMERA) {}

  get size(): number {
    return this.count
  }

  observations(): Observation[] {
    return [...this.byCategory.values()].flat()
  }

  /** Drops observations last seen more than `ageMs` ago; returns how many. */
  forgetOlderThan(ageMs: number, nowMs: number): number {
    let forgotten = 0
    for (const [key, list] of this.byCategory) {
      const kept = list.filter((o) => !isOlderThan(o, ageMs, nowMs))
      forgotten += list.length - kept.length
      if (kept.length === 0) this.byCategory.delete(key)
      else if (kept.length !== list.length) this.byCategory.set(key, kept)
    }
    this.count -= forgotten
    return forgotten
  }

  /**
   * Upstream's similarity step: if stored observations match, ALL of them are marked as seen now and
   * nothing is stored (they keep their original coordinates); otherwise the detection is stored.
   * Returns true when the detection was new. `evicted` counts observations dropped to respect the cap.
   */
  observe(kind: 'box', detection: BoxDetection, nowMs: number): { isNew: boolean; evicted: number }
  observe(kind: 'point', detection: PointDetection, nowMs: number): { isNew: boolean; evicted: number }
  observe(kind: 'box' | 'point', detection: BoxDetection | PointDetection, nowMs: number): { isNew: boolean; evicted: number } {
    const key = `${kind}\u0000${detection.category_name}`
    let similar = false
    for (const observation of this.byCategory.get(key) ?? []) {
      if (isSimilarObservation(observation, kind as 'box', detection as BoxDetection)) {
        observation.lastSeenMs = nowMs
        similar = true
      }
    }
    if (similar) return { isNew: false, evicted: 0 }
    // evict first: eviction replaces the per-category lists
    const evicted = this.count >= this.maxObservations ? this.evictLeastRecentlySeen(this.count - this.maxObservations + 1) : 0
    const list = this.byCategory.get(key) ?? []
    list.push({ kind, detection, lastSeenMs: nowMs } as Observation)
    this.byCategory.set(key, list)
    this.count++
    return { isNew: true, evicted }
  }

  private evictLeastRecentlySeen(n: number): number {
    const all = this.observations().sort((a, b) => a.lastSeenMs - b.lastSeenMs)
    const doomed = new Set(all.slice(0, n))
    for (const [key, list] of this.byCategory) {
      const kept = list.filter((o) => !doomed.has(o))
      if (kept.length === 0) this.byCategory.delete(key)
      else if (kept.length !== list.length) this.byCategory.set(key, kept)
    }
    this.count -= doomed.size
    return doomed.size
  }
}

export interface RelevanceFilterOptions {
  /** lower bound (inclusive) of the uncertain confidence window; MIN_UNCERTAIN_THRESHOLD, default 0.3 */
  minUncertain: number
  /** upper bound (inclusive); MAX_UNCERTAIN_THRESHOLD, default 0.6 */
  maxUncertain: number
  forgetAfterMs?: number
  maxObservationsPerCamera?: number
  maxCameras?: number
}

type DetectionsOf = Pick<ImageMetadata, 'box_detections' | 'point_detections' | 'segmentation_detections' | 'classification_detections'>

/**
 * Per-camera observation histories (§7.5). Requests without a camera id share one history. Unlike
 * upstream (§15.8) every history is pruned, the shared one included, and the memory is bounded:
 * observations per camera and the number of cameras are capped, least recently seen first out.
 */
export class RelevanceFilter {
  readonly minUncertain: number
  readonly maxUncertain: number
  readonly forgetAfterMs: number
  private readonly maxObservationsPerCamera: number
  private readonly maxCameras: number
  /** Map order is least recently used first: a used history is moved to the end. */
  private readonly histories = new Map<string | null, ObservationHistory>()
  /** observations dropped because a camera's history was full (not counting the ones forgotten by age) */
  evictedObservations = 0
  /** camera histories dropped because there were too many cameras */
  evictedCameras = 0

  constructor(options: RelevanceFilterOptions) {
    if (!(options.minUncertain <= options.maxUncertain)) {
      throw new RangeError(`minUncertain (${options.minUncertain}) must not be greater than maxUncertain (${options.maxUncertain})`)
    }
    this.minUncertain = options.minUncertain
    this.maxUncertain = options.maxUncertain
    this.forgetAfterMs = options.forgetAfterMs ?? FORGET_AFTER_MS
    this.maxObservationsPerCamera = options.maxObservationsPerCamera ?? DEFAULT_MAX_OBSERVATIONS_PER_CAMERA
    this.maxCameras = options.maxCameras ?? DEFAULT_MAX_CAMERAS
  }

  /** The history of one camera (null: requests without a camera id), if it holds anything. */
  history(cameraId: string | null | undefined): ObservationHistory | undefined {
    return this.histories.get(cameraId ?? null)
  }

  get cameraCount(): number {
    return this.histories.size
  }

  /**
   * The reasons to upload this result, in the order first found, with `unexpected_observations_count`
   * last; empty when the image is not interesting. Updates the camera's history.
   */
  causes(metadata: DetectionsOf, cameraId: string | null | undefined, nowMs: number): string[] {
    this.forgetOldObservations(nowMs)
    const boxes = metadata.box_detections ?? []
    const points = metadata.point_detections ?? []
    // only boxes and points are remembered; a camera that sends nothing else gets no history
    const history = boxes.length + points.length > 0 ? this.useHistory(cameraId ?? null) : undefined
    const causes = new Set<string>()
    const uncertain = (confidence: number) => isUncertain(confidence, this.minUncertain, this.maxUncertain)

    for (const box of boxes) {
      const { isNew, evicted } = history!.observe('box', box, nowMs)
      this.evictedObservations += evicted
      if (isNew && uncertain(box.confidence)) causes.add(UNCERTAIN_CAUSE)
    }
    for (const point of points) {
      const { isNew, evicted } = history!.observe('point', point, nowMs)
      this.evictedObservations += evicted
      if (isNew && uncertain(point.confidence)) causes.add(UNCERTAIN_CAUSE)
    }
    if ((metadata.segmentation_detections ?? []).length > 0) causes.add(SEGMENTATION_CAUSE)
    for (const classification of metadata.classification_detections ?? []) {
      if (uncertain(classification.confidence)) causes.add(UNCERTAIN_CAUSE)
    }

    const result = [...causes]
    const total = (metadata.box_detections?.length ?? 0) + (metadata.point_detections?.length ?? 0) +
      (metadata.segmentation_detections?.length ?? 0) + (metadata.classification_detections?.length ?? 0)
    if (total >= UNEXPECTED_OBSERVATIONS_THRESHOLD) result.push(UNEXPECTED_OBSERVATIONS_CAUSE)
    return result
  }

  private forgetOldObservations(nowMs: number): void {
    for (const [cameraId, history] of this.histories) {
      history.forgetOlderThan(this.forgetAfterMs, nowMs)
      // an empty history holds no state worth keeping; dropping it keeps the map as small as the active cameras
      if (history.size === 0) this.histories.delete(cameraId)
    }
  }

  private useHistory(cameraId: string | null): ObservationHistory {
    let history = this.histories.get(cameraId)
    if (history) {
      this.histories.delete(cameraId)
    } else {
      history = new ObservationHistory(this.maxObservationsPerCamera)
      while (this.histories.size >= this.maxCameras) {
        const leastRecentlyUsed = this.histories.keys().next().value as string | null
        this.histories.delete(leastRecentlyUsed)
        this.evictedCameras++
      }
    }
    this.histories.set(cameraId, history)
    return history
  }
}
