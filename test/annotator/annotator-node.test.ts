/**
 * The annotator node against a real local loop: the Loop emits the events of a box drag around the
 * coffee cup on a real photo; the node answers with an SVG outline, stores the annotation in the Loop,
 * reports its status and frees sessions on logout, Escape and idle timeout. Bad input gets failure acks.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { polygonContains, type PolygonPoint } from '../../src/annotator/mask-contour.ts'
import { waitFor } from '../support/temp.ts'
import { annotatorSelector, COFFEE_ID, ORG, PROJECT, startAnnotator, userInput, type AnnotatorFixture } from './annotator-fixture.ts'

type Ack = { success: boolean; error_msg: string | null; payload: unknown }

/** The points of the first `<polygon>` in an SVG fragment. */
function polygonOf(svg: string): PolygonPoint[] {
  const match = /<polygon points="([^"]+)"/.exec(svg)
  if (!match) throw new Error(`no polygon in ${svg.slice(0, 200)}`)
  return match[1]!.split(' ').map((pair) => {
    const [x, y] = pair.split(',').map(Number)
    return { x: x!, y: y! }
  })
}

// the cup on its saucer in coffee.jpg (600×400) lies inside this box; its corners are wood
const BOX = { x0: 70, y0: 10, x1: 485, y1: 393 }
const OBJECT_POINTS = [[290, 150], [100, 250], [455, 230], [280, 370], [365, 290], [230, 270]] as const
const WOOD_POINTS = [[85, 30], [470, 30], [90, 385], [475, 385]] as const

let f: AnnotatorFixture
const emit = (...args: unknown[]) => f.loop.emitToNode(annotatorSelector, 'handle_user_input', ...args) as Promise<Ack>

async function dragBox(frontendId: string, box = BOX): Promise<Ack[]> {
  const acks = [await emit(userInput(frontendId, 'left_mouse_down', box.x0, box.y0))]
  for (let step = 1; step <= 4; step++) {
    acks.push(await emit(userInput(frontendId, 'mouse_move', box.x0 + ((box.x1 - box.x0) * step) / 4, box.y0 + ((box.y1 - box.y0) * step) / 4)))
  }
  acks.push(await emit(userInput(frontendId, 'left_mouse_up', box.x1, box.y1)))
  return acks
}

beforeAll(async () => {
  f = await startAnnotator()
})
afterAll(() => f.cleanup())

describe('a box drag around an object', () => {
  test('answers with an SVG outline around the cup, stores the annotation in the Loop, and logout frees the history', async () => {
    const acks = await dragBox('frontend-1')
    for (const ack of acks) expect(ack).toMatchObject({ success: true, error_msg: null })
    // while dragging: the box
    expect(acks[2]!.payload).toContain('<rect x="70" y="10"')
    const svg = acks.at(-1)!.payload as string
    expect(svg.length).toBeLessThan(8_000)
    const polygon = polygonOf(svg)
    expect(polygon.length).toBeGreaterThan(8)
    for (const [x, y] of OBJECT_POINTS) expect({ x, y, inside: polygonContains(polygon, x, y) }).toEqual({ x, y, inside: true })
    for (const [x, y] of WOOD_POINTS) expect({ x, y, inside: polygonContains(polygon, x, y) }).toEqual({ x, y, inside: false })
    const xs = polygon.map((p) => p.x)
    const ys = polygon.map((p) => p.y)
    // the saucer spans about x 77–480 and the cup reaches up to y ≈ 18
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(BOX.x0)
    expect(Math.min(...xs)).toBeLessThan(100)
    expect(Math.max(...xs)).toBeGreaterThan(450)
    expect(Math.min(...ys)).toBeLessThan(40)

    const stored = f.loop.imageData(ORG, PROJECT, COFFEE_ID) as { segmentation_annotations: { id: string; category_id: string; image_id: string; shape: { points: PolygonPoint[] } }[] }
    expect(stored.segmentation_annotations).toHaveLength(1)
    const annotation = stored.segmentation_annotations[0]!
    expect(annotation).toMatchObject({ image_id: COFFEE_ID, category_id: 'category-cup' })
    expect(annotation.shape.points).toEqual(polygon)

    expect(f.node.sessions.size).toBe(1)
    expect(await f.loop.emitToNode(annotatorSelector, 'user_logout', 'frontend-1')).toEqual({ success: true, error_msg: null, payload: null })
    expect(f.node.sessions.size).toBe(0)
  })

  test('a background stroke over the saucer refines the same annotation; Escape answers "" and frees the history', async () => {
    await dragBox('frontend-2')
    const first = f.loop.imageData(ORG, PROJECT, COFFEE_ID) as { segmentation_annotations: { id: string; shape: { points: PolygonPoint[] } }[] }
    const before = first.segmentation_annotations.at(-1)!
    // plain drag (no shift) across the lower saucer: background
    const stroke: [number, number][] = [[110, 300], [200, 345], [300, 360], [400, 330], [450, 280]]
    expect((await emit(userInput('frontend-2', 'left_mouse_down', stroke[0]![0]!, stroke[0]![1]!))).success).toBe(true)
    for (const [x, y] of stroke.slice(1, -1)) expect((await emit(userInput('frontend-2', 'mouse_move', x, y))).payload).toContain('<polyline')
    const refined = await emit(userInput('frontend-2', 'left_mouse_up', stroke.at(-1)![0]!, stroke.at(-1)![1]!))
    expect(refined.success).toBe(true)
    const polygon = polygonOf(refined.payload as string)
    // the stroke's pixels are background now; the cup is still inside
    for (const [x, y] of stroke) expect(polygonContains(polygon, x, y)).toBe(false)
    expect(polygonContains(polygon, 290, 150)).toBe(true)
    const after = (f.loop.imageData(ORG, PROJECT, COFFEE_ID) as { segmentation_annotations: { id: string; shape: { points: PolygonPoint[] } }[] }).segmentation_annotations
    expect(after.filter((a) => a.id === before.id)).toHaveLength(1)
    expect(after.find((a) => a.id === before.id)!.shape.points).toEqual(polygon)

    expect(f.node.sessions.has('frontend-2')).toBe(true)
    const escape = await emit(userInput('frontend-2', 'key_up', 0, 0, { key_up: 'Escape' }))
    expect(escape).toEqual({ success: true, error_msg: null, payload: '' })
    expect(f.node.sessions.has('frontend-2')).toBe(false)
  })

  test('the photo was downloaded once into <data>/<org>/<project>/images/<uuid>.jpg', async () => {
    expect(await readdir(join(f.dataFolder, ORG, PROJECT, 'images'))).toEqual([`${COFFEE_ID}.jpg`])
    expect(f.node.runtime.metrics.render()).toMatch(/annotator_image_downloads_total\{result="downloaded"\} 1\n/)
  })

  test('the node reports AnnotationNodeStatus with capability segmentation every cycle', async () => {
    const statuses = await waitFor(() => {
      const list = f.loop.statusHistory(f.node.runtime.status.id)
      return list.length >= 2 ? list : undefined
    }, 10_000, 'two status updates')
    expect(statuses[0]!.event).toBe('update_annotation_node')
    expect(statuses.at(-1)!.status).toMatchObject({ id: f.node.runtime.status.id, name: 'annotator test node', state: 'online', capabilities: ['segmentation'] })
    expect((await fetch(`${f.node.runtime.url}/ready`)).status).toBe(200)
  })
})

describe('bad input gets a failure ack and the node keeps running', () => {
  test('unknown image id', async () => {
    const ack = await emit(userInput('bad-1', 'left_mouse_down', 10, 10, {}, '00000000-0000-0000-0000-000000000000'))
    expect(ack.success).toBe(false)
    expect(ack.error_msg).toContain('image 00000000-0000-0000-0000-000000000000 does not exist')
  })

  test('a click outside the image', async () => {
    const ack = await emit(userInput('bad-2', 'left_mouse_down', 650, 20))
    expect(ack).toMatchObject({ success: false })
    expect(ack.error_msg).toContain('outside the 600×400 image')
    // the tool error dropped the history
    expect(f.node.sessions.has('bad-2')).toBe(false)
  })

  test('malformed user input, an unsafe project name and an unknown event type', async () => {
    const missing = await emit({ frontend_id: 'bad-3', data: { event_type: 'left_mouse_down' } })
    expect(missing.success).toBe(false)
    expect(missing.error_msg).toContain('/data/coordinate')
    expect((await emit('not an object')).success).toBe(false)
    const traversal = userInput('bad-3', 'left_mouse_down', 10, 10)
    ;(traversal.data as { context: { project: string } }).context.project = '..'
    expect((await emit(traversal)).error_msg).toContain('is not a plain name')
    expect((await emit(userInput('bad-3', 'double_click', 10, 10))).error_msg).toContain('unknown event_type "double_click"')
    expect((await f.loop.emitToNode(annotatorSelector, 'user_logout', 42)) as Ack).toMatchObject({ success: false })
  })

  test('a 10 KB event type, project name or Loop event: short failure acks, and metrics keep their labels bounded', async () => {
    const longType = await emit(userInput('bad-4', 'e'.repeat(10_000), 10, 10))
    expect(longType.success).toBe(false)
    expect(longType.error_msg).toContain('unknown event_type')
    expect(longType.error_msg!.length).toBeLessThan(400)
    for (const name of ['constructor', '__proto__', 'toString']) {
      expect((await emit(userInput('bad-4', name, 10, 10))).error_msg).toContain(`unknown event_type "${name}"`)
    }
    const longProject = userInput('bad-4', 'left_mouse_down', 10, 10)
    ;(longProject.data as { context: { project: string } }).context.project = '../'.repeat(3_000)
    const refused = await emit(longProject)
    expect(refused.error_msg).toContain('is not a plain name')
    expect(refused.error_msg!.length).toBeLessThan(400)
    const unknownEvent = (await f.loop.emitToNode(annotatorSelector, 'constructor', { x: 1 })) as Ack
    expect(unknownEvent).toMatchObject({ success: false })
    expect(unknownEvent.error_msg).toContain('unknown event "constructor"')
    const metrics = f.node.runtime.metrics.render()
    expect(metrics).not.toContain('e'.repeat(200))
    expect(metrics).not.toContain('event_type="constructor"')
    expect(metrics).toMatch(/annotator_user_inputs_total\{event_type="unknown",result="refused"\} [4-9]/)
  })

  test('after all that a drag still works, and failures were counted', async () => {
    const acks = await dragBox('after-bad', { x0: 160, y0: 15, x1: 420, y1: 310 })
    expect(acks.at(-1)!.success).toBe(true)
    expect(polygonContains(polygonOf(acks.at(-1)!.payload as string), 290, 150)).toBe(true)
    const metrics = f.node.runtime.metrics.render()
    expect(metrics).toMatch(/annotator_user_inputs_total\{event_type="left_mouse_down",result="refused"\} [3-9]/)
    expect(metrics).toMatch(/annotator_sessions \d/)
  })
})

describe('idle sessions', () => {
  test('expire after the idle timeout', async () => {
    const g = await startAnnotator({ sessionIdleTimeoutMs: 300, repeatIntervalMs: 100 })
    try {
      const ack = await g.loop.emitToNode(annotatorSelector, 'handle_user_input', userInput('idle-user', 'left_mouse_down', 100, 100)) as Ack
      expect(ack.success).toBe(true)
      expect(g.node.sessions.size).toBe(1)
      await waitFor(() => g.node.sessions.size === 0, 5_000, 'the idle session to expire')
      expect(g.node.runtime.metrics.render()).toContain('annotator_sessions_closed_total{reason="idle"} 1')
    } finally {
      await g.cleanup()
    }
  })
})
