/**
 * The built-in annotation tool: drag a box around an object and get its outline; Shift-drag over parts
 * the outline missed, drag (without Shift) over parts it wrongly took; Enter or Escape starts over.
 * Every finished drag re-segments (box-segmentation.ts, in a worker) and sends the outline to the Loop
 * as one SegmentationAnnotation whose id stays the same while the object is refined.
 */
import type { SegmentationAnnotation, ToolOutput, UserInput } from '../contract/index.ts'
import type { AnnotationContext, AnnotatorLogic } from './annotator-logic.ts'
import {
  applyAnnotationEvent, brushRadius, createSegmentationHistory, draggedBox, resetHistory, type SegmentationHistory,
} from './segmentation-interaction.ts'
import { createWorkerSegmenter, type Segmenter } from './segmenter.ts'
import { renderOverlay } from './svg-overlay.ts'

export interface BoxSegmentationToolOptions {
  /** default: a worker segmenter */
  segmenter?: Segmenter
  /** working-resolution budget per segmentation (see SegmentationRequest.maxWorkingPixels) */
  maxWorkingPixels?: number
  newId?: () => string
}

export class BoxSegmentationTool implements AnnotatorLogic<SegmentationHistory> {
  readonly segmenter: Segmenter
  private readonly newId: () => string

  constructor(private readonly options: BoxSegmentationToolOptions = {}) {
    this.segmenter = options.segmenter ?? createWorkerSegmenter()
    this.newId = options.newId ?? (() => crypto.randomUUID())
  }

  createEmptyHistory(): SegmentationHistory {
    return createSegmentationHistory()
  }

  async handleUserInput(input: UserInput, history: SegmentationHistory, context: AnnotationContext): Promise<ToolOutput> {
    const data = input.data
    if (history.imageUuid !== data.image_uuid) resetHistory(history, data.image_uuid)
    history.imageSize ??= await this.segmenter.imageSize(context.imagePath)
    const step = applyAnnotationEvent(history, data, history.imageSize)
    const box = draggedBox(history)
    const radius = box ? brushRadius(box) : 2
    let annotation: SegmentationAnnotation | null = null
    if (step === 'segment' && box) {
      const result = await this.segmenter.segment(context.imagePath, {
        box,
        foreground: history.strokes.filter((s) => s.foreground).map((s) => ({ points: s.points, radius })),
        background: history.strokes.filter((s) => !s.foreground).map((s) => ({ points: s.points, radius })),
        epsilon: data.epsilon ?? null,
        maxWorkingPixels: this.options.maxWorkingPixels,
      })
      history.phase = 'segmented'
      history.polygon = result.polygon
      history.annotationId ??= this.newId()
      annotation = {
        id: history.annotationId,
        shape: { points: result.polygon.map((p) => ({ x: p.x, y: p.y })) },
        image_id: data.image_uuid,
        category_id: data.category.id,
      }
    }
    return { svg: renderOverlay(history, { colour: data.category.color, brushRadius: radius }), annotation }
  }

  logoutUser(_frontendId: string): boolean {
    // histories live in the node's sessions, which it frees itself; nothing else is per user here
    return true
  }

  dispose(): Promise<void> {
    return this.segmenter.dispose()
  }
}
