/**
 * Everything the worker needs to run one model, decided from model.json (and its `inference`
 * section), the ONNX header and the engine options, in that order of precedence: engine options >
 * model.json > ONNX file > decoder defaults. Pure, so every rule is testable without a session.
 */
import type { Category, ModelInferenceSettings } from '../contract/index.ts'
import { BLAZEFACE_ANCHOR_GRIDS, matchBlazeFaceOutputs, type AnchorGrid } from './blazeface-decoding.ts'
import { ModelPackageError } from './inference-errors.ts'
import type { PreprocessingSpec } from './image-preprocessing.ts'
import type { ModelInformationWithFormat } from './model-package.ts'
import { parseUltralyticsImageSize, parseUltralyticsNames, type OnnxModelHeader } from './onnx-model-header.ts'
import type { YoloLayout } from './yolo-decoding.ts'

export interface ModelSpec {
  decoder: 'yolo' | 'blazeface'
  /** forced YOLO layout; undefined means "tell from the output shape" */
  yoloLayout?: YoloLayout
  inputName: string
  /** the dims to feed, batch 1 */
  inputDims: number[]
  /** the ONNX input's batch dimension is symbolic (an export with a dynamic batch axis): several images fit one run */
  dynamicBatch: boolean
  preprocessing: PreprocessingSpec
  categories: Category[]
  /** BlazeFace: point categories in keypoint order */
  keypointCategories: Category[]
  blazeFaceOutputs: { anchors: AnchorGrid; scores: string; regressors: string }[]
  yoloOutput?: string
  confidenceThreshold: number
  iouThreshold: number
  maxDetections: number
  nms: 'greedy' | 'weighted'
  modelName: string
}

export interface ThresholdOverrides {
  confidenceThreshold?: number
  iouThreshold?: number
}

const YOLO_DEFAULTS = { confidence: 0.2, iou: 0.45, resize: 'letterbox', padValue: 114, scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], nms: 'greedy' } as const
const BLAZEFACE_DEFAULTS = { confidence: 0.5, iou: 0.3, resize: 'stretch', padValue: 0, scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1], nms: 'weighted' } as const

const staticDim = (d: number | string | null | undefined) => (typeof d === 'number' && d > 0 ? d : undefined)

/** Categories in class-index order: model.json's, else the ONNX `names` metadata (id = name). */
function resolveCategories(information: ModelInformationWithFormat, header: OnnxModelHeader): Category[] {
  if (information.categories && information.categories.length > 0) return information.categories
  const names = parseUltralyticsNames(header.metadata.names)
  if (!names) throw new ModelPackageError('model.json lists no categories and the ONNX file has no `names` metadata; add categories in class-index order')
  return names.map((name) => ({ id: name, name, description: null, hotkey: null, color: null, point_size: null, type: 'box' }))
}

export function resolveModelSpec(
  information: ModelInformationWithFormat, inference: ModelInferenceSettings, header: OnnxModelHeader, overrides: ThresholdOverrides = {},
): ModelSpec {
  const input = header.inputs[0]
  if (!input) throw new ModelPackageError('the ONNX model has no graph input')
  if (header.inputs.length > 1) throw new ModelPackageError(`the ONNX model has ${header.inputs.length} inputs (${header.inputs.map((i) => i.name).join(', ')}); one image input is supported`)
  if (input.dims.length !== 4) throw new ModelPackageError(`the ONNX input ${input.name} has ${input.dims.length} dimensions; an image input must be [1, 3, H, W] or [1, H, W, 3]`)

  const outputs = header.outputs.map((o) => ({ name: o.name, dims: o.dims.map((d) => (typeof d === 'number' ? d : -1)) }))
  const anchors = inference.anchors?.map((a) => ({ grid: a.grid, perCell: a.per_cell })) ?? BLAZEFACE_ANCHOR_GRIDS
  const blazeFaceOutputs = matchBlazeFaceOutputs(outputs, anchors)
  const decoder: ModelSpec['decoder'] = inference.decoder === 'blazeface' || (!inference.decoder && blazeFaceOutputs && outputs.length === 2 * anchors.length)
    ? 'blazeface' : 'yolo'
  if (decoder === 'blazeface' && !blazeFaceOutputs) {
    throw new ModelPackageError(`model.json asks for the blazeface decoder but the outputs [${outputs.map((o) => `${o.name} [${o.dims.join(',')}]`).join('; ')}] do not fit its anchor grids`)
  }
  if (decoder === 'yolo' && header.outputs.length < 1) throw new ModelPackageError('the ONNX model has no graph output')
  const defaults = decoder === 'blazeface' ? BLAZEFACE_DEFAULTS : YOLO_DEFAULTS

  const [, d1, d2, d3] = input.dims
  const detectedLayout = staticDim(d1) === 3 || staticDim(d1) === 1 ? 'nchw' : staticDim(d3) === 3 ? 'nhwc' : undefined
  const layout = inference.layout ?? detectedLayout ?? 'nchw'
  const shapeHeight = staticDim(layout === 'nchw' ? d2 : d1)
  const shapeWidth = staticDim(layout === 'nchw' ? d3 : d2)
  const imgsz = parseUltralyticsImageSize(header.metadata.imgsz)
  const width = inference.input_width ?? shapeWidth ?? information.resolution ?? imgsz?.width
  const height = inference.input_height ?? shapeHeight ?? information.resolution ?? imgsz?.height
  if (!width || !height) {
    throw new ModelPackageError('cannot tell the model input size: set model.json `resolution` or inference.input_width/input_height (the ONNX input is dynamic and has no imgsz metadata)')
  }
  if ((shapeWidth && shapeWidth !== width) || (shapeHeight && shapeHeight !== height)) {
    throw new ModelPackageError(`model.json input size ${width}×${height} differs from the ONNX input ${input.name} [${input.dims.join(', ')}]`)
  }

  if (inference.std?.some((s) => s === 0)) throw new ModelPackageError('model.json inference.std must not contain 0')
  const categories = resolveCategories(information, header)
  const keypointCategories = decoder === 'blazeface' ? categories.filter((c) => c.type === 'point') : []
  const boxCategories = decoder === 'blazeface' ? [categories.find((c) => c.type !== 'point') ?? categories[0]!] : categories

  return {
    decoder,
    yoloLayout: inference.decoder === 'yolov5' || inference.decoder === 'yolov8' ? inference.decoder : undefined,
    inputName: input.name,
    inputDims: layout === 'nchw' ? [1, 3, height, width] : [1, height, width, 3],
    dynamicBatch: staticDim(input.dims[0]) === undefined,
    preprocessing: {
      width, height, layout,
      resize: inference.resize ?? defaults.resize,
      padValue: inference.pad_value ?? defaults.padValue,
      channelOrder: inference.channel_order ?? 'rgb',
      scale: inference.scale ?? defaults.scale,
      mean: (inference.mean ?? [...defaults.mean]) as [number, number, number],
      std: (inference.std ?? [...defaults.std]) as [number, number, number],
    },
    categories: boxCategories,
    keypointCategories,
    blazeFaceOutputs: blazeFaceOutputs ?? [],
    yoloOutput: decoder === 'yolo' ? header.outputs[0]!.name : undefined,
    confidenceThreshold: overrides.confidenceThreshold ?? inference.confidence_threshold ?? defaults.confidence,
    iouThreshold: overrides.iouThreshold ?? inference.iou_threshold ?? defaults.iou,
    maxDetections: inference.max_detections ?? 1000,
    nms: inference.nms ?? defaults.nms,
    modelName: information.version,
  }
}
