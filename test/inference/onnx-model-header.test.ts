import { describe, expect, test } from 'bun:test'
import { onnx } from 'onnx-proto'
import { makeTinyYoloModel, makeVerificationModel } from '../../scripts/make-test-models.ts'
import { ModelPackageError } from '../../src/inference/inference-errors.ts'
import { parseUltralyticsImageSize, parseUltralyticsNames, readOnnxModelHeader } from '../../src/inference/onnx-model-header.ts'

describe('ONNX header reader', () => {
  test('metadata, inputs and outputs match what onnx-proto decodes', () => {
    const metadata = { names: "{0: 'person', 1: 'bicycle'}", imgsz: '[64, 64]', stride: '8' }
    const bytes = makeTinyYoloModel({ layout: 'yolov5', classes: 2, metadata })
    const header = readOnnxModelHeader(bytes)
    const oracle = onnx.ModelProto.decode(bytes)
    expect(header.metadata).toEqual(Object.fromEntries(oracle.metadataProps.map((p) => [p.key, p.value])))
    expect(header.metadata).toEqual(metadata)
    const dims = (info: onnx.IValueInfoProto) => info.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue))
    expect(header.inputs).toEqual(oracle.graph!.input!.map((i) => ({ name: i.name!, elementType: 1, dims: dims(i) })))
    expect(header.outputs).toEqual([{ name: 'output0', elementType: 1, dims: [1, 64, 7] }])
  })

  test('symbolic dimensions come back as their names', () => {
    const header = readOnnxModelHeader(makeTinyYoloModel({ layout: 'yolov8', dynamicInput: true }))
    expect(header.inputs[0]!.dims).toEqual([1, 3, 'height', 'width'])
  })

  test('the committed verification model is exactly what the script generates', async () => {
    const committed = await Bun.file(new URL('../../src/inference/verification-model.onnx', import.meta.url).pathname).bytes()
    expect(Buffer.from(committed).equals(Buffer.from(makeVerificationModel()))).toBe(true)
    expect(readOnnxModelHeader(committed).inputs).toEqual([{ name: 'input', elementType: 1, dims: [1, 3, 16, 16] }])
  })

  test('bytes that are not an ONNX model are a ModelPackageError naming the file', () => {
    for (const bytes of [new TextEncoder().encode('{"not": "onnx"}'), new Uint8Array([0x0a, 0xff, 0xff]), new Uint8Array(0)]) {
      expect(() => readOnnxModelHeader(bytes, 'weights.onnx')).toThrow(ModelPackageError)
    }
    expect(() => readOnnxModelHeader(new Uint8Array([0x08, 0x08]), 'weights.onnx')).toThrow('weights.onnx is not a readable ONNX model')
  })
})

describe('Ultralytics metadata', () => {
  test('names in index order, quotes of either kind, gaps filled', () => {
    expect(parseUltralyticsNames("{0: 'person', 1: 'traffic light'}")).toEqual(['person', 'traffic light'])
    expect(parseUltralyticsNames(`{0: "it's", 2: 'b'}`)).toEqual(["it's", 'class_1', 'b'])
    expect(parseUltralyticsNames('not a dict')).toBeUndefined()
    expect(parseUltralyticsNames(undefined)).toBeUndefined()
  })

  test('imgsz is [height, width] or one number', () => {
    expect(parseUltralyticsImageSize('[480, 640]')).toEqual({ width: 640, height: 480 })
    expect(parseUltralyticsImageSize('320')).toEqual({ width: 320, height: 320 })
    expect(parseUltralyticsImageSize('[1, 2, 3]')).toBeUndefined()
  })
})
