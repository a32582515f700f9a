import type { ToolOutput, UserInput } from '../contract/index.ts'

/** What the annotator node hands a tool besides the user input. */
export interface AnnotationContext {
  /** the photo named by `input.data.image_uuid`, downloaded to `<data>/<org>/<project>/images/<uuid>.jpg` */
  imagePath: string
}

/**
 * An annotation tool (§10): turns one user input plus that user's history into an SVG overlay and,
 * when it has produced a shape, a segmentation annotation. The node keeps one history per frontend
 * (created with `createEmptyHistory`, dropped on logout, Escape, idle timeout and when the tool throws).
 * A throw becomes a failure ack with the error's message, so messages are written for the user.
 */
export interface AnnotatorLogic<History = unknown> {
  createEmptyHistory(): History
  handleUserInput(input: UserInput, history: History, context: AnnotationContext): Promise<ToolOutput>
  /** the Loop's `user_logout(sid)`; its boolean is the ack's `success` */
  logoutUser(frontendId: string): boolean | Promise<boolean>
  /** frees what the tool holds (workers, caches) when the node stops */
  dispose?(): Promise<void>
}

/**
 * Base of the errors a tool throws for input it cannot act on (a click outside the photo, a box with no
 * object). The node answers them with a failure ack and an info log line; other errors are logged as errors.
 */
export class AnnotationToolError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'AnnotationToolError'
  }
}
