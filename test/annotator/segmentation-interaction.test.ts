import { describe, expect, test } from 'bun:test'
import type { AnnotationData } from '../../src/contract/index.ts'
import {
  AnnotationInputError, applyAnnotationEvent, createSegmentationHistory, MAX_POINTS_PER_STROKE, resetHistory,
} from '../../src/annotator/segmentation-interaction.ts'
import { renderOverlay, safeColour } from '../../src/annotator/svg-overlay.ts'

const SIZE = { width: 600, height: 400 }
function event(event_type: string, x: number, y: number, extra: Partial<AnnotationData> = {}): AnnotationData {
  return {
    coordinate: { x, y }, event_type, context: { organization: 'o', project: 'p' }, image_uuid: 'img',
    category: { id: 'c', name: 'cup', description: null, hotkey: null, color: '#ff0000', point_size: null, type: 'segmentation' },
    key_up: null, key_down: null, epsilon: null, is_shift_key_pressed: null, ...extra,
  }
}

describe('the box-segmentation state machine', () => {
  test('a drag draws a box, mouse up asks for a segmentation; a drag after that is a stroke', () => {
    const h = createSegmentationHistory()
    expect(applyAnnotationEvent(h, event('left_mouse_down', 300, 200), SIZE)).toBe('render')
    expect(applyAnnotationEvent(h, event('mouse_move', 250, 120), SIZE)).toBe('render')
    expect(renderOverlay(h)).toBe('<rect x="250" y="120" width="51" height="81" fill="none" stroke="#2196f3" stroke-width="2" stroke-dasharray="6 4"/>')
    // dragging beyond the image edge is clamped, not refused
    expect(applyAnnotationEvent(h, event('left_mouse_up', 900, -40), SIZE)).toBe('segment')
    expect(h.boxEnd).toEqual({ x: 599, y: 0 })
    h.phase = 'segmented'
    h.polygon = [{ x: 310, y: 10 }, { x: 590, y: 10 }, { x: 450, y: 190 }]
    expect(applyAnnotationEvent(h, event('left_mouse_down', 400, 50, { is_shift_key_pressed: true }), SIZE)).toBe('render')
    expect(h.phase as string).toBe('stroking')
    applyAnnotationEvent(h, event('mouse_move', 401, 50), SIZE) // too close: dropped
    applyAnnotationEvent(h, event('mouse_move', 420, 60), SIZE)
    expect(applyAnnotationEvent(h, event('left_mouse_up', 440, 70), SIZE)).toBe('segment')
    expect(h.strokes).toEqual([{ foreground: true, points: [{ x: 400, y: 50 }, { x: 420, y: 60 }, { x: 440, y: 70 }] }])
    h.phase = 'segmented'
    const svg = renderOverlay(h, { colour: '#ff0000', brushRadius: 4 })
    expect(svg).toContain('<polygon points="310,10 590,10 450,190" fill="#ff0000"')
    expect(svg).toContain('<polyline points="400,50 420,60 440,70" fill="none" stroke="#00c853"')
  })

  test('a click without a drag, Enter and Escape start over; keys and right clicks change nothing', () => {
    const h = createSegmentationHistory()
    applyAnnotationEvent(h, event('left_mouse_down', 10, 10), SIZE)
    expect(applyAnnotationEvent(h, event('left_mouse_up', 11, 11), SIZE)).toBe('reset')
    expect(h.phase).toBe('idle')
    applyAnnotationEvent(h, event('left_mouse_down', 10, 10), SIZE)
    expect(applyAnnotationEvent(h, event('key_down', 0, 0, { key_down: 'a' }), SIZE)).toBe('render')
    expect(applyAnnotationEvent(h, event('right_mouse_down', 0, 0), SIZE)).toBe('render')
    expect(h.phase).toBe('drawing_box')
    expect(applyAnnotationEvent(h, event('key_up', 0, 0, { key_up: 'Enter' }), SIZE)).toBe('reset')
    expect(renderOverlay(h)).toBe('')
  })

  test('a press outside the image and an unknown event type are input errors; strokes are bounded', () => {
    const h = createSegmentationHistory()
    expect(() => applyAnnotationEvent(h, event('left_mouse_down', -1, 10), SIZE)).toThrow(AnnotationInputError)
    expect(() => applyAnnotationEvent(h, event('left_mouse_down', 600, 10), SIZE)).toThrow('outside the 600×400 image')
    expect(() => applyAnnotationEvent(h, event('wheel', 1, 1), SIZE)).toThrow('unknown event_type "wheel"')
    h.phase = 'stroking'
    h.currentStroke = { foreground: false, points: [{ x: 0, y: 0 }] }
    for (let i = 1; i < 3 * MAX_POINTS_PER_STROKE; i++) applyAnnotationEvent(h, event('mouse_move', (i * 3) % 600, Math.floor(i / 200)), SIZE)
    expect(h.currentStroke.points.length).toBe(MAX_POINTS_PER_STROKE)
  })

  test('resetHistory keeps the image size for the same image only', () => {
    const h = createSegmentationHistory()
    h.imageUuid = 'a'
    h.imageSize = SIZE
    resetHistory(h)
    expect(h.imageSize).toEqual(SIZE)
    resetHistory(h, 'b')
    expect(h).toMatchObject({ imageUuid: 'b', imageSize: null })
  })

  test('category colours that could break out of the attribute are replaced', () => {
    expect(safeColour('#a1b2c3')).toBe('#a1b2c3')
    expect(safeColour('red')).toBe('red')
    expect(safeColour('"/><script>')).toBe('#2196f3')
    expect(safeColour(null)).toBe('#2196f3')
  })
})
