import { describe, expect, test } from 'bun:test'
import { ActiveDetector, DetectorUnavailableError } from '../../src/detector/active-detector.ts'
import type { DetectorLogic, LogicOutput } from '../../src/detector/detector-logic.ts'

/** A model whose detections finish when the test says so, and which records its dispose. */
function controllableLogic(version: string) {
  const waiting: (() => void)[] = []
  const logic = {
    disposed: false,
    modelInfo: { id: version, version, categories: [], resolution: 128 } as never,
    backend: 'test',
    detect: () => new Promise<LogicOutput>((resolve) => waiting.push(() => resolve({ box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [], width: 1, height: 1 }))),
    detectBatch: async () => [],
    dispose: async () => void (logic.disposed = true),
  }
  return { logic: logic as DetectorLogic & { disposed: boolean }, finishAll: () => waiting.splice(0).forEach((finish) => finish()) }
}

describe('active detector', () => {
  test('a swap serves new requests at once; the old model is freed after its last request', async () => {
    const active = new ActiveDetector()
    const first = controllableLogic('1')
    await active.swap(first.logic)
    const inFlight = active.use((logic) => logic.detect({ kind: 'encoded', bytes: new Uint8Array(1) }))
    const second = controllableLogic('2')
    const swapped = active.swap(second.logic)
    expect(active.version).toBe('2')
    expect(first.logic.disposed).toBe(false)
    first.finishAll()
    await inFlight
    await swapped
    expect(first.logic.disposed).toBe(true)
  })

  test('close cuts off requests that outlive the drain time, and frees a model built after it at once', async () => {
    const active = new ActiveDetector()
    const stuck = controllableLogic('1')
    await active.swap(stuck.logic)
    void active.use((logic) => logic.detect({ kind: 'encoded', bytes: new Uint8Array(1) }))
    expect(await active.close(50)).toBe(1)
    expect(stuck.logic.disposed).toBe(true)
    await expect(active.use(async () => undefined)).rejects.toBeInstanceOf(DetectorUnavailableError)
    // a model update that was still building when the node shut down
    const late = controllableLogic('2')
    await active.swap(late.logic)
    expect(late.logic.disposed).toBe(true)
    expect(active.logic).toBeUndefined()
  })
})
