/** Interactive annotation: the annotator node, its session store, the tool interface and the built-in box-segmentation tool. */
export { AnnotatorNode, AnnotatorRequestError, ANNOTATOR_CAPABILITIES, ANNOTATOR_NODE_TYPE, type AnnotatorNodeOptions } from './annotator-node.ts'
export { AnnotationToolError, type AnnotatorLogic, type AnnotationContext } from './annotator-logic.ts'
export { AnnotationSessions, DEFAULT_SESSION_OPTIONS, type AnnotationSessionsOptions } from './annotation-sessions.ts'
export { BoxSegmentationTool, type BoxSegmentationToolOptions } from './box-segmentation-tool.ts'
export { segmentBox, SegmentationInputError, type PixelBox, type Stroke, type SegmentationRequest, type SegmentationResult } from './box-segmentation.ts'
export { AnnotationInputError, createSegmentationHistory, type SegmentationHistory } from './segmentation-interaction.ts'
export { createInProcessSegmenter, createWorkerSegmenter, SegmenterUnavailableError, type Segmenter, type ImageSize } from './segmenter.ts'
