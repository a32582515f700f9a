import { describe, expect, test } from 'bun:test'
import { makeTinyYoloModel, tinyModelJson } from '../../scripts/make-test-models.ts'
import { decode, ModelInferenceSettings, ModelInformation } from '../../src/contract/index.ts'
import { ModelPackageError } from '../../src/inference/inference-errors.ts'
import { resolveModelSpec } from '../../src/inference/model-spec.ts'
import { readOnnxModelHeader, type OnnxModelHeader } from '../../src/inference/onnx-model-header.ts'

const info = (extra: Record<string, unknown> = {}) => decode(ModelInformation, tinyModelJson(['a', 'b'], extra))
const settings = (value: Record<string, unknown> = {}) => decode(ModelInferenceSettings, value)
const tinyHeader = (options: Parameters<typeof makeTinyYoloModel>[0]) => readOnnxModelHeader(makeTinyYoloModel(options))

const blazeFaceHeader: OnnxModelHeader = {
  metadata: {},
  inputs: [{ name: 'input:0', elementType: 1, dims: [1, 128, 128, 3] }],
  outputs: [
    { name: 'Identity:0', elementType: 1, dims: [1, 512, 1] }, { name: 'Identity_1:0', elementType: 1, dims: [1, 384, 1] },
    { name: 'Identity_2:0', elementType: 1, dims: [1, 512, 16] }, { name: 'Identity_3:0', elementType: 1, dims: [1, 384, 16] },
  ],
}

describe('model spec resolution', () => {
  test('YOLO defaults: letterbox 114, 1/255, NCHW from the input shape, conf 0.2, IoU 0.45', () => {
    const spec = resolveModelSpec(info(), settings(), tinyHeader({ layout: 'yolov8', size: 64 }))
    expect(spec).toMatchObject({
      decoder: 'yolo', inputName: 'images', inputDims: [1, 3, 64, 64], yoloOutput: 'output0',
      confidenceThreshold: 0.2, iouThreshold: 0.45, maxDetections: 1000, nms: 'greedy', modelName: '1.0',
      preprocessing: { width: 64, height: 64, resize: 'letterbox', padValue: 114, layout: 'nchw', channelOrder: 'rgb', scale: 1 / 255 },
    })
    expect(spec.categories.map((c) => c.name)).toEqual(['a', 'b'])
  })

  test('engine options beat model.json, which beats the defaults', () => {
    const spec = resolveModelSpec(info(), settings({ confidence_threshold: 0.6, iou_threshold: 0.5, channel_order: 'bgr' }), tinyHeader({ layout: 'yolov8' }), { iouThreshold: 0.3 })
    expect([spec.confidenceThreshold, spec.iouThreshold, spec.preprocessing.channelOrder]).toEqual([0.6, 0.3, 'bgr'])
  })

  test('categories fall back to the ONNX names metadata', () => {
    const header = tinyHeader({ layout: 'yolov8', metadata: { names: "{0: 'person', 1: 'car'}" } })
    const spec = resolveModelSpec(info({ categories: [] }), settings(), header)
    expect(spec.categories.map((c) => [c.id, c.name, c.type])).toEqual([['person', 'person', 'box'], ['car', 'car', 'box']])
    expect(() => resolveModelSpec(info({ categories: [] }), settings(), tinyHeader({ layout: 'yolov8' }))).toThrow('lists no categories')
  })

  test('input size of a dynamic model: inference section, then resolution, then imgsz', () => {
    const header = tinyHeader({ layout: 'yolov8', dynamicInput: true, metadata: { imgsz: '[96, 128]' } })
    expect(resolveModelSpec(info(), settings(), header).inputDims).toEqual([1, 3, 96, 128])
    expect(resolveModelSpec(info({ resolution: 320 }), settings(), header).inputDims).toEqual([1, 3, 320, 320])
    expect(resolveModelSpec(info({ resolution: 320 }), settings({ input_width: 64, input_height: 32 }), header).inputDims).toEqual([1, 3, 32, 64])
    const bare = tinyHeader({ layout: 'yolov8', dynamicInput: true })
    expect(() => resolveModelSpec(info(), settings(), bare)).toThrow(ModelPackageError)
  })

  test('a resolution that contradicts a static ONNX input is an error', () => {
    expect(() => resolveModelSpec(info(), settings({ input_width: 320 }), tinyHeader({ layout: 'yolov8', size: 64 }))).toThrow('differs from the ONNX input')
  })

  test('BlazeFace is recognised from its outputs; NHWC from the input shape; keypoints from point categories', () => {
    const categories = [{ id: 'f', name: 'face', type: 'box' }, { id: 'r', name: 'right_eye', type: 'point' }, { id: 'l', name: 'left_eye', type: 'point' }]
    const spec = resolveModelSpec(info({ categories }), settings(), blazeFaceHeader)
    expect(spec).toMatchObject({
      decoder: 'blazeface', inputName: 'input:0', inputDims: [1, 128, 128, 3], nms: 'weighted', confidenceThreshold: 0.5, iouThreshold: 0.3,
      preprocessing: { layout: 'nhwc', resize: 'stretch', scale: 1 / 127.5, mean: [1, 1, 1] },
    })
    expect(spec.categories.map((c) => c.name)).toEqual(['face'])
    expect(spec.keypointCategories.map((c) => c.name)).toEqual(['right_eye', 'left_eye'])
    expect(spec.blazeFaceOutputs.map((o) => o.scores)).toEqual(['Identity:0', 'Identity_1:0'])
  })

  test('asking for the BlazeFace decoder on a YOLO model names the outputs', () => {
    expect(() => resolveModelSpec(info(), settings({ decoder: 'blazeface' }), tinyHeader({ layout: 'yolov8' }))).toThrow('output0 [1,6,64]')
  })

  test('models with several inputs or a non-image input are refused', () => {
    const two: OnnxModelHeader = { ...blazeFaceHeader, inputs: [...blazeFaceHeader.inputs, { name: 'scale', elementType: 1, dims: [1] }] }
    expect(() => resolveModelSpec(info(), settings(), two)).toThrow('2 inputs')
    const flat: OnnxModelHeader = { ...blazeFaceHeader, inputs: [{ name: 'x', elementType: 1, dims: [1, 100] }] }
    expect(() => resolveModelSpec(info(), settings(), flat)).toThrow('2 dimensions')
  })
})
