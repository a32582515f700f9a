import { Type, type Static } from '@sinclair/typebox'
import { StringEnum } from './schema-helpers.ts'

export const OUTPUT_DECODERS = ['yolo', 'yolov5', 'yolov8', 'blazeface'] as const
export const RESIZE_MODES = ['letterbox', 'stretch'] as const
export const TENSOR_LAYOUTS = ['nchw', 'nhwc'] as const
export const CHANNEL_ORDERS = ['rgb', 'bgr'] as const
export const NMS_MODES = ['greedy', 'weighted'] as const

const Triple = Type.Array(Type.Number(), { minItems: 3, maxItems: 3 })

/**
 * The optional `inference` section of `model.json` (our extension of §6.4; the Loop ignores unknown keys).
 * Every field is optional; what is missing is taken from the ONNX file (input shape, `imgsz`/`names`
 * metadata) or from the decoder's defaults. A tensor value is `(pixel * scale - mean[c]) / std[c]`,
 * with `pixel` in 0–255 in `channel_order`.
 *
 * ```json
 * "inference": { "model_file": "model.onnx", "decoder": "yolo", "input_width": 640, "input_height": 640,
 *   "resize": "letterbox", "pad_value": 114, "layout": "nchw", "channel_order": "rgb",
 *   "scale": 0.00392156862745098, "mean": [0, 0, 0], "std": [1, 1, 1],
 *   "confidence_threshold": 0.2, "iou_threshold": 0.45, "max_detections": 1000 }
 * ```
 */
export const ModelInferenceSettings = Type.Object({
  /** the ONNX file, relative to model.json; default: the only `*.onnx` beside it */
  model_file: Type.Optional(Type.String({ minLength: 1 })),
  /** output decoder; `yolo` tells v5 `[1,N,5+C]` from v8/v11 `[1,4+C,N]` by the output shape (default) */
  decoder: Type.Optional(StringEnum(OUTPUT_DECODERS)),
  /** network input size; default: the ONNX input shape, then `resolution`, then the `imgsz` metadata */
  input_width: Type.Optional(Type.Integer({ minimum: 1, maximum: 8192 })),
  input_height: Type.Optional(Type.Integer({ minimum: 1, maximum: 8192 })),
  /** keep the aspect ratio and pad (letterbox, default for YOLO) or stretch (default for BlazeFace) */
  resize: Type.Optional(StringEnum(RESIZE_MODES)),
  /** grey level of letterbox padding, 0–255 (default 114, as Ultralytics) */
  pad_value: Type.Optional(Type.Number({ minimum: 0, maximum: 255 })),
  /** default: read from the ONNX input shape (channels of 3 in position 1 → nchw), else nchw */
  layout: Type.Optional(StringEnum(TENSOR_LAYOUTS)),
  channel_order: Type.Optional(StringEnum(CHANNEL_ORDERS)),
  scale: Type.Optional(Type.Number()),
  mean: Type.Optional(Triple),
  std: Type.Optional(Triple),
  /** engine options override these */
  confidence_threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  iou_threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  max_detections: Type.Optional(Type.Integer({ minimum: 1 })),
  /** greedy drops overlapping boxes; weighted (BlazeFace default, as MediaPipe) blends them by score */
  nms: Type.Optional(StringEnum(NMS_MODES)),
  /** BlazeFace anchor grids in output order, e.g. `[{"grid": 16, "per_cell": 2}, {"grid": 8, "per_cell": 6}]` */
  anchors: Type.Optional(Type.Array(Type.Object({
    grid: Type.Integer({ minimum: 1 }),
    per_cell: Type.Integer({ minimum: 1 }),
  }), { minItems: 1 })),
}, { $id: 'ModelInferenceSettings' })
export type ModelInferenceSettings = Static<typeof ModelInferenceSettings>
