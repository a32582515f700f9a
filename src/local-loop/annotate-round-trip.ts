import { socketFailure, type AnnotateRequest, type Category, type SegmentationAnnotation } from '../contract/index.ts'
import { LoopRequestError } from './loop-errors.ts'
import type { NodeSelector } from './node-hub.ts'

/**
 * The web page's annotation tool: a box drawn on an image goes to an annotator node as the mouse events of a drag
 * (`handle_user_input`, §10: down at one corner, a move and up at the other), the way the Loop's own annotation tool
 * forwards them. The node answers the mouse-up with its outline as SVG and stores the segmentation annotation in the
 * Loop (update_segmentation_annotation) before it acknowledges; the page shows both. Each box is a session of its
 * own (a fresh frontend id, logged out afterwards), so every box becomes a new annotation.
 */
export interface AnnotatorPort {
  emit(target: NodeSelector, event: string, args: unknown[], options?: { timeoutMs?: number; expectAck?: boolean }): Promise<unknown>
}

export interface AnnotateTarget {
  organization: string
  project: string
  imageId: string
  category: Category
  /** the image's segmentation annotations before the drag, to find the one the node stored */
  segmentationAnnotations: () => SegmentationAnnotation[]
}

const SEGMENTATION_TIMEOUT_MS = 60_000
const isAnnotator = Object.assign((node: { nodeType: string }) => node.nodeType === 'annotation_node', {
  description: 'an annotation node (start one: learning-loop-node annotator)',
})

/** The mouse events of a drag from (x0, y0) to (x1, y1) (pure). */
export function dragEvents(box: Pick<AnnotateRequest, 'x0' | 'y0' | 'x1' | 'y1'>): { event_type: string; x: number; y: number }[] {
  return [
    { event_type: 'left_mouse_down', x: box.x0, y: box.y0 },
    { event_type: 'mouse_move', x: Math.round((box.x0 + box.x1) / 2), y: Math.round((box.y0 + box.y1) / 2) },
    { event_type: 'mouse_move', x: box.x1, y: box.y1 },
    { event_type: 'left_mouse_up', x: box.x1, y: box.y1 },
  ]
}

export async function annotateWithNode(port: AnnotatorPort, target: AnnotateTarget, request: AnnotateRequest): Promise<{ svg: string; annotation: SegmentationAnnotation | null }> {
  const node: NodeSelector = request.node ?? isAnnotator
  const frontendId = `web-${crypto.randomUUID()}`
  const before = new Map(target.segmentationAnnotations().map((a) => [a.id, JSON.stringify(a)]))
  let svg = ''
  try {
    for (const step of dragEvents(request)) {
      const input = {
        frontend_id: frontendId,
        data: {
          coordinate: { x: step.x, y: step.y }, event_type: step.event_type, context: { organization: target.organization, project: target.project },
          image_uuid: target.imageId, category: target.category, key_up: null, key_down: null, epsilon: null, is_shift_key_pressed: null,
        },
      }
      const ack = await port.emit(node, 'handle_user_input', [input], { timeoutMs: SEGMENTATION_TIMEOUT_MS })
      svg = answerOf(ack)
    }
  } finally {
    await port.emit(node, 'user_logout', [frontendId], { expectAck: false }).catch(() => undefined)
  }
  const stored = target.segmentationAnnotations().find((a) => before.get(a.id) !== JSON.stringify(a)) ?? null
  return { svg, annotation: stored }
}

/** The SVG of an ack `{success: true, payload: svg}`; a refusal becomes a 502 naming the node's message. */
function answerOf(ack: unknown): string {
  const response = (typeof ack === 'object' && ack !== null ? ack : socketFailure('no answer')) as { success?: unknown; payload?: unknown; error_msg?: unknown }
  if (response.success !== true) throw new LoopRequestError(502, `the annotator refused the input: ${String(response.error_msg ?? 'no message')}`)
  return typeof response.payload === 'string' ? response.payload : ''
}
