import { describe, expect, test } from 'bun:test'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeTinyYoloModel } from '../../scripts/make-test-models.ts'
import { ConversionLedger, decideConversion, recordFailure, recordSuccess } from '../../src/converter/conversion-ledger.ts'
import { categoriesForClassNames, YoloOnnxConverter } from '../../src/converter/yolo-onnx-converter.ts'
import { ModelNotConvertibleError } from '../../src/converter/converter-logic.ts'
import { selectModelsToConvert } from '../../src/converter/converter-node.ts'
import type { ModelInformation } from '../../src/contract/index.ts'
import { makeTempDir } from '../support/temp.ts'

const ref = { organization: 'o', project: 'p', model_id: 'm', version: '1.0' }
const policy = { maxAttempts: 3, initialBackoffMs: 1_000, maxBackoffMs: 3_000 }

describe('conversion ledger decisions', () => {
  test('failures wait an exponential backoff (capped), then are skipped after the last attempt', () => {
    expect(decideConversion(undefined, 0)).toBe('convert')
    const first = recordFailure(undefined, ref, 'boom', 10_000, { permanent: false, policy })
    expect(first).toMatchObject({ outcome: 'failed', attempts: 1, next_attempt_at: 11_000, last_error: 'boom' })
    expect(decideConversion(first, 10_999)).toBe('wait')
    expect(decideConversion(first, 11_000)).toBe('convert')
    const second = recordFailure(first, ref, 'boom', 20_000, { permanent: false, policy })
    expect(second.next_attempt_at).toBe(22_000)
    const third = recordFailure(second, ref, 'boom', 30_000, { permanent: false, policy })
    expect(third).toMatchObject({ outcome: 'skipped', attempts: 3, next_attempt_at: null })
    expect(decideConversion(third, 1e12)).toBe('skipped')
    expect(recordFailure({ ...second, attempts: 1 }, ref, 'x', 0, { permanent: false, policy: { ...policy, maxAttempts: 10 } }).next_attempt_at).toBe(2_000)
    expect(recordFailure(undefined, ref, 'x', 0, { permanent: false, policy: { ...policy, maxAttempts: 10 } }).next_attempt_at).toBe(1_000)
    expect(recordFailure({ ...second, attempts: 5 }, ref, 'x', 0, { permanent: false, policy: { ...policy, maxAttempts: 10 } }).next_attempt_at).toBe(3_000)
  })

  test('a model that cannot be converted is skipped at once; success is final', () => {
    expect(recordFailure(undefined, ref, 'no names', 0, { permanent: true, policy })).toMatchObject({ outcome: 'skipped', attempts: 1 })
    const done = recordSuccess(recordFailure(undefined, ref, 'x', 0, { permanent: false, policy }), ref, 5)
    expect(done).toMatchObject({ outcome: 'converted', attempts: 2, last_error: null })
    expect(decideConversion(done, 0)).toBe('converted')
  })

  test('models to convert: a version, the source format, not yet the target', () => {
    const model = (id: string, version: string, formats: string[]) => ({ id, version, formats, created: null, comment: null, host: null })
    expect(selectModelsToConvert([
      model('a', '1.0', ['yolo_onnx']), model('b', '1.1', ['yolo_onnx', 'onnx']), model('c', '', ['yolo_onnx']), model('d', '1.2', ['mocked']),
    ], 'yolo_onnx', 'onnx').map((m) => m.id)).toEqual(['a'])
  })

  test('the ledger file survives a reopen, and a corrupt or mismatched file is a clear error', async () => {
    const temp = await makeTempDir('lln-ledger-')
    try {
      const ledger = await ConversionLedger.open(temp.path, 'a', 'b')
      await ledger.set('o/p/m', recordSuccess(undefined, ref, 1))
      expect((await ConversionLedger.open(temp.path, 'a', 'b')).get('o/p/m')).toMatchObject({ outcome: 'converted' })
      await writeFile(ledger.path, JSON.stringify({ source_format: 'z', target_format: 'b', models: {} }))
      await expect(ConversionLedger.open(temp.path, 'a', 'b')).rejects.toThrow('is for z → b, not a → b')
      await writeFile(ledger.path, '{"source_format": "a", "target_format": "b", "models": {"k": {"outcome": "maybe"}}}')
      await expect(ConversionLedger.open(temp.path, 'a', 'b')).rejects.toThrow('is unreadable')
    } finally {
      await temp.cleanup()
    }
  })
})

describe('YoloOnnxConverter', () => {
  const info: ModelInformation = { id: 'm1', host: 'loop', organization: 'o', project: 'p', version: '2.0', categories: [], resolution: null, model_root_path: null, model_size: null }

  async function convert(onnx: Uint8Array | Uint8Array[], model: ModelInformation = info): Promise<Record<string, any>> {
    const temp = await makeTempDir('lln-yolo-convert-')
    try {
      const source = join(temp.path, 'source')
      await mkdir(source)
      const files = Array.isArray(onnx) ? onnx : [onnx]
      for (const [i, bytes] of files.entries()) await writeFile(join(source, `export-${i}.onnx`), bytes)
      const written = await new YoloOnnxConverter().convert(model, source, join(temp.path, 'target'))
      expect(written.map((f) => f.split('/').pop())).toEqual(['model.onnx', 'model.json'])
      return JSON.parse(await readFile(written[1]!, 'utf8'))
    } finally {
      await temp.cleanup()
    }
  }

  test('a rectangular imgsz becomes input_width/height; a dynamic input needs imgsz', async () => {
    const json = await convert(makeTinyYoloModel({ layout: 'yolov5', dynamicInput: true, metadata: { names: "{0: 'a', 1: 'b'}", imgsz: '[64, 128]' } }))
    expect(json).toMatchObject({ resolution: 128, inference: { input_width: 128, input_height: 64, model_file: 'model.onnx' }, converted_from: 'yolo_onnx', version: '2.0' })
    expect(json.model_root_path).toBeUndefined()
    await expect(convert(makeTinyYoloModel({ layout: 'yolov8', dynamicInput: true, metadata: { names: "{0: 'a', 1: 'b'}" } }))).rejects.toThrow('input size is unknown')
  })

  test('the ONNX input must agree with imgsz, and there must be exactly one .onnx file', async () => {
    await expect(convert(makeTinyYoloModel({ layout: 'yolov8', metadata: { names: "{0: 'a', 1: 'b'}", imgsz: '[32, 32]' } }))).rejects.toThrow(ModelNotConvertibleError)
    const ok = makeTinyYoloModel({ layout: 'yolov8', metadata: { names: "{0: 'a', 1: 'b'}" } })
    await expect(convert([ok, ok])).rejects.toThrow('holds 2 .onnx files')
    await expect(convert([])).rejects.toThrow('holds no .onnx file')
    expect((await convert(ok)).resolution).toBe(64)
  })

  test('class names map onto project categories by name, case-insensitively', () => {
    const project = [{ id: 'x1', name: 'Dog', description: null, hotkey: '1', color: '#f00', point_size: null, type: 'box' }]
    expect(categoriesForClassNames(['dog', 'cat'], project)).toEqual([
      project[0]!, { id: 'cat', name: 'cat', description: null, hotkey: null, color: null, point_size: null, type: 'box' },
    ])
  })
})
