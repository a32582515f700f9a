/**
 * Deterministic tiny ONNX models for tests and backend verification, written with onnx-proto (a
 * devDependency: only tests and this script use it; the runtime reads ONNX with its own small reader).
 *
 * - makeVerificationModel(): Conv → Relu → Conv → Sigmoid on a 16×16 input; a few KB, committed as
 *   src/inference/verification-model.onnx (`bun scripts/make-test-models.ts` rewrites it) and used to
 *   compare a GPU backend against the CPU before trusting it.
 * - makeTinyYoloModel(): a YOLO-shaped net in either layout (v8 `[1, 4+C, N]`, v5 `[1, N, 5+C]`):
 *   Conv(3→8, s2)+Relu → Conv(8→A, s4) → Reshape, scaled by `featureScale` and added to `planted`
 *   outputs, so tests can both compare backends on real arithmetic and plant known detections. With
 *   `dynamicBatch` its batch dimension is symbolic (`batch`), as in an export with a dynamic batch axis, so
 *   several images run in one session run (dynamic batching).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { onnx } from 'onnx-proto'

const FLOAT = 1
const INT64 = 7

/** Park–Miller generator: the same weights on every machine and run. */
function seededRandom(seed: number): () => number {
  let state = seed % 2147483647
  if (state <= 0) state += 2147483646
  return () => {
    state = (state * 16807) % 2147483647
    return (state - 1) / 2147483646
  }
}

function floatTensor(name: string, dims: number[], values: ArrayLike<number>): onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(Float32Array.from(values).buffer) }
}

function randomTensor(name: string, dims: number[], random: () => number, spread: number): onnx.ITensorProto {
  const count = dims.reduce((a, b) => a * b, 1)
  return floatTensor(name, dims, Array.from({ length: count }, () => (random() - 0.5) * 2 * spread))
}

function int64Tensor(name: string, values: number[]): onnx.ITensorProto {
  return { name, dims: [values.length], dataType: INT64, int64Data: values }
}

function valueInfo(name: string, dims: number[]): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } }
}

const ints = (name: string, values: number[]): onnx.IAttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values })
const conv = (input: string, weight: string, bias: string, output: string, kernel: number, stride: number, pad: number): onnx.INodeProto => ({
  opType: 'Conv', input: [input, weight, bias], output: [output],
  attribute: [ints('kernel_shape', [kernel, kernel]), ints('strides', [stride, stride]), ints('pads', [pad, pad, pad, pad])],
})

function encodeModel(graph: onnx.IGraphProto, metadata: Record<string, string> = {}): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'learning-loop-node make-test-models',
    graph,
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  })
  return onnx.ModelProto.encode(model).finish()
}

export const VERIFICATION_INPUT_DIMS = [1, 3, 16, 16]

/** The committed GPU-verification model: input `input` [1,3,16,16] → output `output` [1,4,8,8]. */
export function makeVerificationModel(): Uint8Array {
  const random = seededRandom(20261128)
  return encodeModel({
    name: 'backend-verification',
    node: [
      conv('input', 'w1', 'b1', 'c1', 3, 1, 1),
      { opType: 'Relu', input: ['c1'], output: ['r1'] },
      conv('r1', 'w2', 'b2', 'c2', 3, 2, 1),
      { opType: 'Sigmoid', input: ['c2'], output: ['output'] },
    ],
    initializer: [
      randomTensor('w1', [8, 3, 3, 3], random, 0.5), randomTensor('b1', [8], random, 0.1),
      randomTensor('w2', [4, 8, 3, 3], random, 0.3), randomTensor('b2', [4], random, 0.1),
    ],
    input: [valueInfo('input', VERIFICATION_INPUT_DIMS)],
    output: [valueInfo('output', [1, 4, 8, 8])],
  })
}

/** A deterministic input for the verification model (values in 0–1). */
export function verificationInput(): Float32Array {
  const random = seededRandom(7)
  return Float32Array.from({ length: VERIFICATION_INPUT_DIMS.reduce((a, b) => a * b, 1) }, () => random())
}

/** A detection to plant, in network-input pixels; `objectness` is used by the v5 layout only. */
export interface PlantedBox {
  anchor: number
  cx: number
  cy: number
  w: number
  h: number
  classIndex: number
  score: number
  objectness?: number
}

export interface TinyYoloOptions {
  layout: 'yolov8' | 'yolov5'
  /** square input size, a multiple of 8 (default 64) */
  size?: number
  classes?: number
  /** multiplies the convolution features before `planted` is added (default 1) */
  featureScale?: number
  planted?: PlantedBox[]
  /** written as ONNX metadata_props, e.g. Ultralytics' `names` and `imgsz` */
  metadata?: Record<string, string>
  /** make the input size dynamic (`height`/`width` symbols) */
  dynamicInput?: boolean
  /** make the batch dimension of input and output dynamic (a `batch` symbol), as exports with dynamic axes do */
  dynamicBatch?: boolean
  /** with dynamicBatch: reshape to batch 1 inside the graph anyway, as a careless export does (a batch of 2+ then fails) */
  batchFixedInside?: boolean
  seed?: number
}

/** A YOLO-shaped model in the requested layout; its output is named `output0`. */
export function makeTinyYoloModel(options: TinyYoloOptions): Uint8Array {
  const size = options.size ?? 64
  if (size % 8 !== 0) throw new Error('size must be a multiple of 8')
  const classes = options.classes ?? 2
  const attributes = options.layout === 'yolov8' ? 4 + classes : 5 + classes
  const boxes = (size / 8) ** 2
  const random = seededRandom(options.seed ?? 1234)
  // planted values live in the attribute-major [attributes, boxes] grid, transposed for v5 below
  const planted = new Float32Array(attributes * boxes)
  for (const box of options.planted ?? []) {
    const set = (attribute: number, value: number) => { planted[attribute * boxes + box.anchor] = value }
    set(0, box.cx); set(1, box.cy); set(2, box.w); set(3, box.h)
    if (options.layout === 'yolov8') set(4 + box.classIndex, box.score)
    else { set(4, box.objectness ?? 1); set(5 + box.classIndex, box.score) }
  }
  const node: onnx.INodeProto[] = [
    conv('images', 'w1', 'b1', 'c1', 3, 2, 1),
    { opType: 'Relu', input: ['c1'], output: ['r1'] },
    conv('r1', 'w2', 'b2', 'c2', 4, 4, 0),
    { opType: 'Reshape', input: ['c2', 'shape'], output: ['features'] },
    { opType: 'Mul', input: ['features', 'feature_scale'], output: ['scaled'] },
    { opType: 'Add', input: ['scaled', 'planted'], output: options.layout === 'yolov8' ? ['output0'] : ['attribute_major'] },
  ]
  if (options.layout === 'yolov5') node.push({ opType: 'Transpose', input: ['attribute_major'], output: ['output0'], attribute: [ints('perm', [0, 2, 1])] })
  const batch: onnx.TensorShapeProto.IDimension = options.dynamicBatch ? { dimParam: 'batch' } : { dimValue: 1 }
  const spatial: onnx.TensorShapeProto.IDimension[] = options.dynamicInput ? [{ dimParam: 'height' }, { dimParam: 'width' }] : [{ dimValue: size }, { dimValue: size }]
  const input: onnx.IValueInfoProto = { name: 'images', type: { tensorType: { elemType: FLOAT, shape: { dim: [batch, { dimValue: 3 }, ...spatial] } } } }
  const outputDims = options.layout === 'yolov8' ? [attributes, boxes] : [boxes, attributes]
  return encodeModel({
    name: `tiny-${options.layout}`,
    node,
    initializer: [
      randomTensor('w1', [8, 3, 3, 3], random, 0.5), randomTensor('b1', [8], random, 0.1),
      randomTensor('w2', [attributes, 8, 4, 4], random, 0.25), randomTensor('b2', [attributes], random, 0.1),
      // Reshape's 0 keeps the incoming batch size
      int64Tensor('shape', [options.dynamicBatch && !options.batchFixedInside ? 0 : 1, attributes, boxes]),
      floatTensor('feature_scale', [1], [options.featureScale ?? 1]),
      floatTensor('planted', [1, attributes, boxes], planted),
    ],
    input: [input],
    output: [{ name: 'output0', type: { tensorType: { elemType: FLOAT, shape: { dim: [batch, ...outputDims.map((d) => ({ dimValue: d }))] } } } }],
  }, options.metadata)
}

export interface TestPackageOptions extends TinyYoloOptions {
  /** model.json content; `false` writes none */
  modelJson?: Record<string, unknown> | false
}

/** model.json for a tiny test model with categories `class-<i>` named from `names`. */
export function tinyModelJson(names: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '00000000-0000-4000-8000-000000000001', host: null, organization: 'tests', project: 'tiny', version: '1.0',
    categories: names.map((name, i) => ({ id: `class-${i}`, name, type: 'box' })),
    ...extra,
  }
}

/** Writes `model.onnx` (+ model.json) into `dir`; returns the folder. */
export async function writeTinyModelPackage(dir: string, options: TestPackageOptions): Promise<string> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'model.onnx'), makeTinyYoloModel(options))
  const json = options.modelJson ?? tinyModelJson(Array.from({ length: options.classes ?? 2 }, (_, i) => `class${i}`))
  if (json !== false) await writeFile(join(dir, 'model.json'), JSON.stringify(json, null, 2))
  return dir
}

if (import.meta.main) {
  const target = join(import.meta.dir, '..', 'src', 'inference', 'verification-model.onnx')
  const bytes = makeVerificationModel()
  await writeFile(target, bytes)
  console.log(`wrote ${target} (${bytes.length} bytes)`)
}
