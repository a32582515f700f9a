import { describe, expect, test } from 'bun:test'
import { decode, ImageMetadata, type BoxDetection, type PointDetection, type SegmentationDetection } from '../../src/contract/index.ts'
import {
  boxIou, FORGET_AFTER_MS, isOlderThan, ObservationHistory, pointDistance, RelevanceFilter,
  SEGMENTATION_CAUSE, UNCERTAIN_CAUSE, UNEXPECTED_OBSERVATIONS_CAUSE,
} from '../../src/detector/relevance-filter.ts'

const box = (fields: Partial<BoxDetection>): BoxDetection => ({
  category_name: 'dirt', x: 0, y: 0, width: 100, height: 100, model_name: 'test_model', confidence: 0.3, category_id: 'xyz', ...fields,
})
const point = (fields: Partial<PointDetection>): PointDetection => ({
  category_name: 'point', x: 100, y: 100, model_name: 'xyz', confidence: 0.3, category_id: 'some_id', ...fields,
})
const segmentation = (fields: Partial<SegmentationDetection>): SegmentationDetection => ({
  category_name: 'segmentation', shape: { points: [{ x: 100, y: 200 }, { x: 300, y: 400 }] }, model_name: 'xyz', confidence: 0.3, category_id: 'some_id', ...fields,
})

const T0 = Date.UTC(2030, 0, 1, 12)
const MINUTE = 60_000
const newFilter = () => new RelevanceFilter({ minUncertain: 0.3, maxUncertain: 0.6 })

describe('observation (upstream inbox_filter/test_observation)', () => {
  test('test_aging: 0.2 s after creation an observation is older than 0.1 s but not than 0.3 s', () => {
    const observation = { lastSeenMs: T0 }
    expect(isOlderThan(observation, 100, T0 + 200)).toBe(true)
    expect(isOlderThan(observation, 300, T0 + 200)).toBe(false)
  })

  test('test_calculate_iou', () => {
    const one = box({ x: 10, y: 0, width: 30, height: 100 })
    const two = box({ x: 20, y: 0, width: 30, height: 100 })
    const three = box({ x: 0, y: 30, width: 10, height: 10 })
    expect(boxIou(one, two)).toBe(0.5)
    expect(boxIou(one, three)).toBe(0)
  })

  test('IoU of empty boxes is 0, not NaN; point distance is Euclidean', () => {
    expect(boxIou(box({ width: 0, height: 0 }), box({ width: 0, height: 0 }))).toBe(0)
    expect(pointDistance({ x: 0, y: 0 }, { x: 3, y: 4 })).toBe(5)
  })

  test('test_update_last_seen: last seen 0.5 s ago (and a moment passed) is older than 0.5 s', () => {
    // upstream relies on the clock moving between setting last_seen and the check; here the moment is explicit
    expect(isOlderThan({ lastSeenMs: T0 - 500 }, 500, T0 + 1)).toBe(true)
    expect(isOlderThan({ lastSeenMs: T0 - 500 }, 500, T0)).toBe(false)
  })
})

describe('camera history (upstream inbox_filter/test_relevance_group)', () => {
  const dirt = box({ confidence: 0.3 })
  const secondDirt = box({ x: 0, y: 20, width: 10, height: 10, confidence: 0.35 })

  test('test_group_confidence: similarity suppresses before confidence is looked at', () => {
    const filter = newFilter()
    expect(filter.causes({ box_detections: [dirt] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.history('cam')!.size).toBe(1)
    expect(filter.causes({ box_detections: [dirt] }, 'cam', T0 + 1)).toEqual([])
    expect(filter.history('cam')!.size).toBe(1)
    expect(filter.causes({ box_detections: [box({ confidence: 0.29 })] }, 'cam', T0 + 2)).toEqual([])
    expect(filter.history('cam')!.size).toBe(1)
    expect(filter.causes({ box_detections: [box({ confidence: 0.61 })] }, 'cam', T0 + 3)).toEqual([])
    expect(filter.history('cam')!.size).toBe(1)
  })

  test('a new box outside the window is stored but gives no cause; window bounds are inclusive', () => {
    const filter = newFilter()
    expect(filter.causes({ box_detections: [box({ confidence: 0.61 })] }, 'cam', T0)).toEqual([])
    expect(filter.history('cam')!.size).toBe(1)
    expect(filter.causes({ box_detections: [box({ x: 500, confidence: 0.6 })] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes({ box_detections: [box({ x: 1000, confidence: 0.29 })] }, 'cam', T0)).toEqual([])
    expect(filter.history('cam')!.size).toBe(3)
  })

  test('test_add_second_detection_to_group: a non-overlapping box is stored', () => {
    const filter = newFilter()
    filter.causes({ box_detections: [dirt] }, 'cam', T0)
    expect(filter.history('cam')!.size).toBe(1)
    filter.causes({ box_detections: [secondDirt] }, 'cam', T0 + 1)
    expect(filter.history('cam')!.size).toBe(2)
  })

  test('test_forget_old_detections: kept after 30 min, forgotten after 61 min', () => {
    const filter = newFilter()
    expect(filter.causes({ box_detections: [dirt] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.history('cam')!.size).toBe(1)
    filter.causes({}, 'other', T0 + 30 * MINUTE)
    expect(filter.history('cam')!.size).toBe(1)
    filter.causes({}, 'other', T0 + 61 * MINUTE)
    expect(filter.history('cam')).toBeUndefined()
    // forgotten, so the same box is news again
    expect(filter.causes({ box_detections: [dirt] }, 'cam', T0 + 62 * MINUTE)).toEqual([UNCERTAIN_CAUSE])
  })

  test('forgetting is by last seen: a similar detection keeps the observation alive', () => {
    const filter = newFilter()
    filter.causes({ box_detections: [dirt] }, 'cam', T0)
    filter.causes({ box_detections: [dirt] }, 'cam', T0 + 50 * MINUTE)
    filter.causes({}, 'cam', T0 + 70 * MINUTE)
    expect(filter.history('cam')!.size).toBe(1)
    expect(filter.history('cam')!.observations()[0]!.lastSeenMs).toBe(T0 + 50 * MINUTE)
  })

  test('test_active_group_extracts_from_json: boxes decoded from JSON', () => {
    const metadata = decode(ImageMetadata, {
      box_detections: [
        { category_name: 'dirt', x: 1366, y: 1017, width: 37, height: 24, model_name: 'some_weightfile', category_id: 'some_id', confidence: 0.3 },
        { category_name: 'obstacle', x: 0, y: 0, width: 37, height: 24, model_name: 'some_weightfile', category_id: 'some_id', confidence: 0.35 },
        { category_name: 'dirt', x: 1479, y: 862, width: 14, height: 11, model_name: 'some_weightfile', category_id: 'some_id', confidence: 0.2 },
      ],
    })
    expect(newFilter().causes(metadata, '0000', T0)).toEqual([UNCERTAIN_CAUSE])
  })

  test('test_segmentation_detections_are_extracted_from_json', () => {
    const metadata = decode(ImageMetadata, {
      segmentation_detections: [{
        category_name: 'seg', category_id: 'some_id', model_name: 'some_weightfile', confidence: 0.3,
        shape: { points: [{ x: 193, y: 876 }, { x: 602, y: 193 }, { x: 121, y: 8 }] },
      }],
    })
    expect(newFilter().causes(metadata, '0000', T0)).toEqual([SEGMENTATION_CAUSE])
  })

  test('test_ignoring_similar_points / test_getting_low_confidence_points: distance 4.5 px is the same point', () => {
    const filter = newFilter()
    expect(filter.causes({ point_detections: [point({ x: 100, y: 100 })] }, null, T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.history(null)!.size).toBe(1)
    expect(filter.causes({ point_detections: [point({ x: 104, y: 98 })] }, null, T0 + 1)).toEqual([])
    expect(filter.history(null)!.size).toBe(1)
    // similar observations keep their original coordinates
    expect(filter.history(null)!.observations()[0]!.detection).toMatchObject({ x: 100, y: 100 })
  })

  test('point distance threshold is strict: exactly 10 px is a new point', () => {
    const filter = newFilter()
    filter.causes({ point_detections: [point({ x: 100, y: 100 })] }, 'cam', T0)
    expect(filter.causes({ point_detections: [point({ x: 110, y: 100 })] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes({ point_detections: [point({ x: 100, y: 109.9 })] }, 'cam', T0)).toEqual([])
    expect(filter.history('cam')!.size).toBe(2)
  })

  test('IoU threshold is inclusive; other categories and kinds are never similar', () => {
    const filter = newFilter()
    filter.causes({ box_detections: [box({ x: 10, width: 30 })] }, 'cam', T0)
    expect(filter.causes({ box_detections: [box({ x: 20, width: 30 })] }, 'cam', T0)).toEqual([])
    expect(filter.causes({ box_detections: [box({ x: 10, width: 30, category_name: 'other' })] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes({ point_detections: [point({ x: 10, y: 0, category_name: 'dirt' })] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.history('cam')!.size).toBe(3)
  })

  test('a similar detection refreshes ALL similar observations', () => {
    const filter = newFilter()
    filter.causes({ box_detections: [box({ x: 0, width: 100 })] }, 'cam', T0)
    filter.causes({ box_detections: [box({ x: 60, width: 100 })] }, 'cam', T0) // IoU 40/160 with the first: new
    expect(filter.history('cam')!.size).toBe(2)
    filter.causes({ box_detections: [box({ x: 30, width: 100 })] }, 'cam', T0 + MINUTE) // IoU 70/130 with both
    expect(filter.history('cam')!.size).toBe(2)
    expect(filter.history('cam')!.observations().map((o) => o.lastSeenMs)).toEqual([T0 + MINUTE, T0 + MINUTE])
  })

  test('test_getting_segmentation_detections: segmentations are never stored nor suppressed', () => {
    const filter = newFilter()
    expect(filter.causes({ segmentation_detections: [segmentation({})] }, 'cam', T0)).toEqual([SEGMENTATION_CAUSE])
    expect(filter.causes({
      segmentation_detections: [segmentation({ shape: { points: [{ x: 105, y: 205 }, { x: 305, y: 405 }] }, confidence: 0.9 })],
    }, 'cam', T0 + 1)).toEqual([SEGMENTATION_CAUSE])
    expect(filter.history('cam')).toBeUndefined()
  })

  test('classifications give `uncertain` only inside the window and are never stored', () => {
    const filter = newFilter()
    const classification = (confidence: number) => ({ category_name: 'c', model_name: 'm', confidence, category_id: null })
    expect(filter.causes({ classification_detections: [classification(0.42)] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes({ classification_detections: [classification(0.42)] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes({ classification_detections: [classification(0.9)] }, 'cam', T0)).toEqual([])
    expect(filter.history('cam')).toBeUndefined()
  })

  test('a second identical detection in the same image matches the first', () => {
    const filter = newFilter()
    expect(filter.causes({ box_detections: [dirt, dirt] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.history('cam')!.size).toBe(1)
  })

  test('test_filter_is_used_by_node[filtered]: the same result twice is sent once', () => {
    const filter = newFilter()
    const result = { box_detections: [box({ confidence: 0.42 })], point_detections: [point({ confidence: 0.42 })] }
    expect(filter.causes(result, null, T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes(result, null, T0 + 100)).toEqual([])
  })

  test('histories are per camera', () => {
    const filter = newFilter()
    expect(filter.causes({ box_detections: [dirt] }, 'a', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes({ box_detections: [dirt] }, 'b', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes({ box_detections: [dirt] }, null, T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.causes({ box_detections: [dirt] }, 'a', T0)).toEqual([])
    expect(filter.cameraCount).toBe(3)
  })

  test('the window comes from the constructor', () => {
    const filter = new RelevanceFilter({ minUncertain: 0.5, maxUncertain: 0.7 })
    expect(filter.causes({ box_detections: [box({ confidence: 0.3 })] }, 'cam', T0)).toEqual([])
    expect(filter.causes({ box_detections: [box({ x: 500, confidence: 0.7 })] }, 'cam', T0)).toEqual([UNCERTAIN_CAUSE])
    expect(() => new RelevanceFilter({ minUncertain: 0.7, maxUncertain: 0.5 })).toThrow(/minUncertain/)
  })
})

describe('unexpected observations count (upstream inbox_filter/test_unexpected_observations_count)', () => {
  const highBox = box({ confidence: 0.9 })
  const highPoint = point({ confidence: 0.9 })
  const lowPoint = point({ confidence: 0.3 })
  const cases: [string, { box_detections: BoxDetection[]; point_detections: PointDetection[] }, string[]][] = [
    ['40 high boxes + 40 high points', { box_detections: Array(40).fill(highBox), point_detections: Array(40).fill(highPoint) }, [UNEXPECTED_OBSERVATIONS_CAUSE]],
    ['1 high box + 1 high point', { box_detections: [highBox], point_detections: [highPoint] }, []],
    ['40 high boxes + 40 low points', { box_detections: Array(40).fill(highBox), point_detections: Array(40).fill(lowPoint) }, [UNCERTAIN_CAUSE, UNEXPECTED_OBSERVATIONS_CAUSE]],
    ['1 high box + 1 low point', { box_detections: [highBox], point_detections: [lowPoint] }, [UNCERTAIN_CAUSE]],
  ]
  for (const [name, metadata, expected] of cases) {
    test(name, () => {
      expect(newFilter().causes(metadata, '0:0:0:0', T0)).toEqual(expected)
    })
  }

  test('79 detections are not unexpected; segmentations and classifications count too', () => {
    const classification = { category_name: 'c', model_name: 'm', confidence: 0.9, category_id: null }
    expect(newFilter().causes({ box_detections: Array(79).fill(highBox) }, 'cam', T0)).toEqual([])
    expect(newFilter().causes({ box_detections: Array(40).fill(highBox), classification_detections: Array(40).fill(classification) }, 'cam', T0))
      .toEqual([UNEXPECTED_OBSERVATIONS_CAUSE])
    const withSegmentations = newFilter().causes({ box_detections: Array(79).fill(highBox), segmentation_detections: [segmentation({})] }, 'cam', T0)
    expect(withSegmentations).toEqual([SEGMENTATION_CAUSE, UNEXPECTED_OBSERVATIONS_CAUSE])
  })
})

describe('fix of §15.8 and bounded memory', () => {
  test('the history of requests without a camera id is pruned too', () => {
    const filter = newFilter()
    expect(filter.causes({ box_detections: [box({})] }, undefined, T0)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.history(null)!.size).toBe(1)
    // upstream never prunes this history, so the box would stay suppressed for ever
    filter.causes({}, 'cam', T0 + FORGET_AFTER_MS + 1)
    expect(filter.history(null)).toBeUndefined()
    expect(filter.causes({ box_detections: [box({})] }, null, T0 + FORGET_AFTER_MS + 2)).toEqual([UNCERTAIN_CAUSE])
  })

  test('exactly at the forget age an observation is kept (strictly older is forgotten)', () => {
    const filter = newFilter()
    filter.causes({ box_detections: [box({})] }, null, T0)
    filter.causes({}, null, T0 + FORGET_AFTER_MS)
    expect(filter.history(null)!.size).toBe(1)
  })

  test('a full history drops its least recently seen observation and counts it', () => {
    const filter = new RelevanceFilter({ minUncertain: 0.3, maxUncertain: 0.6, maxObservationsPerCamera: 3 })
    for (let i = 0; i < 3; i++) filter.causes({ box_detections: [box({ x: i * 1000 })] }, 'cam', T0 + i)
    filter.causes({ box_detections: [box({ x: 0 })] }, 'cam', T0 + 10) // refresh the first
    expect(filter.causes({ box_detections: [box({ x: 5000 })] }, 'cam', T0 + 11)).toEqual([UNCERTAIN_CAUSE])
    expect(filter.history('cam')!.size).toBe(3)
    expect(filter.evictedObservations).toBe(1)
    const xs = filter.history('cam')!.observations().map((o) => o.detection.x).sort((a, b) => a - b)
    expect(xs).toEqual([0, 2000, 5000])
  })

  test('the number of cameras is capped, least recently used first out', () => {
    const filter = new RelevanceFilter({ minUncertain: 0.3, maxUncertain: 0.6, maxCameras: 2 })
    filter.causes({ box_detections: [box({})] }, 'a', T0)
    filter.causes({ box_detections: [box({})] }, 'b', T0)
    filter.causes({ box_detections: [box({})] }, 'a', T0)
    filter.causes({ box_detections: [box({})] }, 'c', T0)
    expect(filter.cameraCount).toBe(2)
    expect(filter.history('b')).toBeUndefined()
    expect(filter.history('a')).toBeDefined()
    expect(filter.evictedCameras).toBe(1)
  })

  test('ObservationHistory.forgetOlderThan reports how many it forgot', () => {
    const history = new ObservationHistory()
    history.observe('box', box({}), T0)
    history.observe('point', point({}), T0 + MINUTE)
    expect(history.forgetOlderThan(MINUTE / 2, T0 + MINUTE)).toBe(1)
    expect(history.size).toBe(1)
  })
})
