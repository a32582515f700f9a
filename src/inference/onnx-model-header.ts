/**
 * Reads what the engine needs from an ONNX file without a protobuf library: `metadata_props`
 * (Ultralytics writes `names` and `imgsz` there) and the graph's input/output names and shapes.
 * onnx-proto is a devDependency only, so the runtime carries this ~100-line reader instead.
 * Tensor data (initializers) is skipped by length, so a 50 MB model is walked in well under a millisecond.
 */
import { ModelPackageError } from './inference-errors.ts'

export interface OnnxValueInfo {
  name: string
  /** TensorProto.DataType (1 = float32); 0 when absent */
  elementType: number
  /** numbers for static dimensions, strings for symbolic ones, null when unknown */
  dims: (number | string | null)[]
}

export interface OnnxModelHeader {
  metadata: Record<string, string>
  inputs: OnnxValueInfo[]
  outputs: OnnxValueInfo[]
}

const VARINT = 0
const FIXED64 = 1
const LENGTH_DELIMITED = 2
const FIXED32 = 5

interface Field { number: number; wireType: number; value: number; start: number; end: number }

/** Iterates the fields of one protobuf message in `bytes[start, end)`. */
function* readFields(bytes: Uint8Array, start: number, end: number): Generator<Field> {
  let at = start
  const readVarint = (): number => {
    let result = 0
    let multiplier = 1
    for (let i = 0; i < 10; i++) {
      if (at >= end) throw new Error('truncated varint')
      const byte = bytes[at++]!
      result += (byte & 0x7f) * multiplier
      if ((byte & 0x80) === 0) return result
      multiplier *= 128
    }
    throw new Error('varint longer than 10 bytes')
  }
  while (at < end) {
    const key = readVarint()
    const wireType = key % 8
    const number = Math.floor(key / 8)
    if (wireType === VARINT) {
      const value = readVarint()
      yield { number, wireType, value, start: at, end: at }
    } else if (wireType === LENGTH_DELIMITED) {
      const length = readVarint()
      if (at + length > end) throw new Error(`field ${number} runs past the end of its message`)
      yield { number, wireType, value: length, start: at, end: at + length }
      at += length
    } else if (wireType === FIXED64 || wireType === FIXED32) {
      at += wireType === FIXED64 ? 8 : 4
      if (at > end) throw new Error('truncated fixed-width field')
    } else {
      throw new Error(`unsupported protobuf wire type ${wireType}`)
    }
  }
}

const text = new TextDecoder()
const readString = (bytes: Uint8Array, field: Field) => text.decode(bytes.subarray(field.start, field.end))

function readDimension(bytes: Uint8Array, field: Field): number | string | null {
  for (const part of readFields(bytes, field.start, field.end)) {
    if (part.number === 1 && part.wireType === VARINT) return part.value
    if (part.number === 2 && part.wireType === LENGTH_DELIMITED) return readString(bytes, part)
  }
  return null
}

function readValueInfo(bytes: Uint8Array, field: Field): OnnxValueInfo {
  const info: OnnxValueInfo = { name: '', elementType: 0, dims: [] }
  for (const part of readFields(bytes, field.start, field.end)) {
    if (part.number === 1 && part.wireType === LENGTH_DELIMITED) info.name = readString(bytes, part)
    if (part.number !== 2 || part.wireType !== LENGTH_DELIMITED) continue
    for (const typeField of readFields(bytes, part.start, part.end)) {
      if (typeField.number !== 1 || typeField.wireType !== LENGTH_DELIMITED) continue // tensor_type only
      for (const tensorField of readFields(bytes, typeField.start, typeField.end)) {
        if (tensorField.number === 1 && tensorField.wireType === VARINT) info.elementType = tensorField.value
        if (tensorField.number === 2 && tensorField.wireType === LENGTH_DELIMITED) {
          for (const dim of readFields(bytes, tensorField.start, tensorField.end)) {
            if (dim.number === 1 && dim.wireType === LENGTH_DELIMITED) info.dims.push(readDimension(bytes, dim))
          }
        }
      }
    }
  }
  return info
}

function readInitializerName(bytes: Uint8Array, field: Field): string | undefined {
  for (const part of readFields(bytes, field.start, field.end)) {
    if (part.number === 8 && part.wireType === LENGTH_DELIMITED) return readString(bytes, part)
  }
  return undefined
}

/** Parses the header of an ONNX model; throws ModelPackageError when the bytes are not an ONNX model. */
export function readOnnxModelHeader(bytes: Uint8Array, fileName = 'model'): OnnxModelHeader {
  const header: OnnxModelHeader = { metadata: {}, inputs: [], outputs: [] }
  try {
    let sawGraph = false
    for (const field of readFields(bytes, 0, bytes.length)) {
      if (field.number === 14 && field.wireType === LENGTH_DELIMITED) {
        let key = ''
        let value = ''
        for (const part of readFields(bytes, field.start, field.end)) {
          if (part.number === 1 && part.wireType === LENGTH_DELIMITED) key = readString(bytes, part)
          if (part.number === 2 && part.wireType === LENGTH_DELIMITED) value = readString(bytes, part)
        }
        header.metadata[key] = value
      }
      if (field.number === 7 && field.wireType === LENGTH_DELIMITED) {
        sawGraph = true
        const initializers = new Set<string>()
        const inputs: OnnxValueInfo[] = []
        for (const part of readFields(bytes, field.start, field.end)) {
          if (part.wireType !== LENGTH_DELIMITED) continue
          if (part.number === 5) {
            const name = readInitializerName(bytes, part)
            if (name) initializers.add(name)
          }
          if (part.number === 11) inputs.push(readValueInfo(bytes, part))
          if (part.number === 12) header.outputs.push(readValueInfo(bytes, part))
        }
        // IR < 4 lists initializers among the inputs; they are weights, not feeds
        header.inputs = inputs.filter((input) => !initializers.has(input.name))
      }
    }
    if (!sawGraph) throw new Error('no graph found')
  } catch (error) {
    throw new ModelPackageError(`${fileName} is not a readable ONNX model (${(error as Error).message})`)
  }
  return header
}

/** Class names from Ultralytics' `names` metadata, e.g. `{0: 'person', 1: "it's"}`, in index order. */
export function parseUltralyticsNames(value: string | undefined): string[] | undefined {
  if (!value) return undefined
  const names: string[] = []
  for (const match of value.matchAll(/(\d+)\s*:\s*(['"])(.*?)\2\s*(?=,|\})/g)) names[Number(match[1])] = match[3]!
  if (names.length === 0) return undefined
  for (let i = 0; i < names.length; i++) if (names[i] === undefined) names[i] = `class_${i}`
  return names
}

/** Input size from Ultralytics' `imgsz` metadata (`[640, 640]` is [height, width]; a single number is square). */
export function parseUltralyticsImageSize(value: string | undefined): { width: number; height: number } | undefined {
  if (!value) return undefined
  const numbers = [...value.matchAll(/\d+/g)].map((m) => Number(m[0]))
  if (numbers.length === 1) return { width: numbers[0]!, height: numbers[0]! }
  if (numbers.length === 2) return { width: numbers[1]!, height: numbers[0]! }
  return undefined
}
