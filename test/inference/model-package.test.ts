import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { zipSync } from 'fflate'
import { makeTinyYoloModel, tinyModelJson } from '../../scripts/make-test-models.ts'
import { ModelPackageError } from '../../src/inference/inference-errors.ts'
import { installModelPackage, readModelPackage } from '../../src/inference/model-package.ts'
import { createZip } from '../../src/foundation/zip-archive.ts'
import { makeTempDir } from '../support/temp.ts'

let temp: Awaited<ReturnType<typeof makeTempDir>>
beforeEach(async () => { temp = await makeTempDir('lln-model-package-') })
afterEach(async () => { await temp.cleanup() })

const modelJson = JSON.stringify(tinyModelJson(['a', 'b'], { format: 'onnx' }))
const onnxBytes = makeTinyYoloModel({ layout: 'yolov8' })

async function expectRejected(zip: Uint8Array, fragment: string): Promise<void> {
  const target = join(temp.path, 'model')
  const error = await installModelPackage(zip, target).then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ModelPackageError)
  expect((error as Error).message).toContain(fragment)
  // nothing behind: no target content, no staging folders beside it, nothing outside
  expect(await readdir(temp.path)).toEqual([])
}

describe('installing model zips', () => {
  test('a flat zip keeps its sub-folders and returns model.json with the root path and format', async () => {
    const zip = createZip({ 'model.json': modelJson, 'model.onnx': onnxBytes, 'extra/notes.txt': 'hello' })
    const target = join(temp.path, 'models', '1.0')
    const info = await installModelPackage(zip, target)
    expect(info).toMatchObject({ version: '1.0', format: 'onnx', model_root_path: target })
    expect((await readdir(target)).sort()).toEqual(['extra', 'model.json', 'model.onnx'])
    expect(await Bun.file(join(target, 'extra', 'notes.txt')).text()).toBe('hello')
    expect(await readdir(join(temp.path, 'models'))).toEqual(['1.0'])
  })

  test('a single top-level folder is flattened into the target', async () => {
    const zip = createZip({ 'yolo-1.0/model.json': modelJson, 'yolo-1.0/weights/model.onnx': onnxBytes })
    const target = join(temp.path, 'model')
    await installModelPackage(zip, target)
    expect((await readdir(target)).sort()).toEqual(['model.json', 'weights'])
    const pkg = await readModelPackage(target).catch((e: Error) => e)
    expect(pkg).toBeInstanceOf(ModelPackageError) // the .onnx is in a sub-folder and not named in inference.model_file
  })

  test('model.json missing → typed error, nothing written', async () => {
    await expectRejected(createZip({ 'model.onnx': onnxBytes }), 'no model.json')
    await expectRejected(createZip({ 'a/model.json': modelJson, 'b/model.onnx': onnxBytes }), 'no model.json')
  })

  test('model.json missing fields → the fields are named', async () => {
    const broken = JSON.stringify({ id: 'x', host: null, organization: 'o', categories: [{ name: 'no id' }] })
    const zip = createZip({ 'model.json': broken, 'model.onnx': onnxBytes })
    const target = join(temp.path, 'model')
    const error = await installModelPackage(zip, target).catch((e: Error) => e)
    expect(error).toBeInstanceOf(ModelPackageError)
    for (const field of ['/project', '/version', '/categories/0/id']) expect((error as Error).message).toContain(field)
    expect(await readdir(temp.path)).toEqual([])
  })

  test('malformed model.json and a bad inference section are explained', async () => {
    await expectRejected(createZip({ 'model.json': '{ nope', 'model.onnx': onnxBytes }), 'not valid JSON')
    const badInference = JSON.stringify({ ...JSON.parse(modelJson), inference: { layout: 'chw' } })
    await expectRejected(createZip({ 'model.json': badInference }), 'inference section')
  })

  test('zip slip: entries escaping the folder or with absolute paths are refused', async () => {
    await expectRejected(zipSync({ 'model.json': new TextEncoder().encode(modelJson), '../evil.txt': new Uint8Array([1]) }), 'escapes the target folder')
    await expectRejected(zipSync({ 'model.json': new TextEncoder().encode(modelJson), '/tmp/evil.txt': new Uint8Array([1]) }), 'absolute path')
    expect(existsSync(join(temp.path, '..', 'evil.txt'))).toBe(false)
  })

  test('zip bomb: an entry that expands a thousandfold is refused before anything is written', async () => {
    const zeros = new Uint8Array(24 * 1024 * 1024)
    const bomb = zipSync({ 'model.json': [new TextEncoder().encode(modelJson), { level: 9 }], 'model.onnx': [zeros, { level: 9 }] })
    expect(bomb.length).toBeLessThan(200_000)
    await expectRejected(bomb, 'zip bomb')
  })

  test('a size cap applies to the whole archive', async () => {
    const zip = createZip({ 'model.json': modelJson, 'model.onnx': onnxBytes })
    const error = await installModelPackage(zip, join(temp.path, 'model'), { maxTotalBytes: 1000 }).catch((e: Error) => e)
    expect(error).toBeInstanceOf(ModelPackageError)
    expect((error as Error).message).toContain('limit')
    expect(await readdir(temp.path)).toEqual([])
  })

  test('corrupt bytes and a non-empty target are refused', async () => {
    await expectRejected(new TextEncoder().encode('PK but not really a zip'), 'not a zip')
    const target = join(temp.path, 'model')
    await mkdir(target)
    await writeFile(join(target, 'old.txt'), 'keep me')
    const error = await installModelPackage(createZip({ 'model.json': modelJson }), target).catch((e: Error) => e)
    expect((error as Error).message).toContain('not empty')
    expect(await readdir(target)).toEqual(['old.txt'])
    expect(await readdir(temp.path)).toEqual(['model'])
  })
})

describe('reading model folders', () => {
  test('picks the only .onnx file, or the one model.json names', async () => {
    await writeFile(join(temp.path, 'model.json'), modelJson)
    await writeFile(join(temp.path, 'best.onnx'), onnxBytes)
    expect((await readModelPackage(temp.path)).modelFile).toBe(join(temp.path, 'best.onnx'))
    await writeFile(join(temp.path, 'other.onnx'), onnxBytes)
    await expect(readModelPackage(temp.path)).rejects.toThrow('several .onnx files')
    await writeFile(join(temp.path, 'model.json'), JSON.stringify({ ...JSON.parse(modelJson), inference: { model_file: 'other.onnx' } }))
    expect((await readModelPackage(temp.path)).modelFile).toBe(join(temp.path, 'other.onnx'))
  })

  test('model_file must stay inside the package and exist', async () => {
    await writeFile(join(temp.path, 'model.json'), JSON.stringify({ ...JSON.parse(modelJson), inference: { model_file: '../x.onnx' } }))
    await expect(readModelPackage(temp.path)).rejects.toThrow('outside the package')
    await writeFile(join(temp.path, 'model.json'), JSON.stringify({ ...JSON.parse(modelJson), inference: { model_file: 'gone.onnx' } }))
    await expect(readModelPackage(temp.path)).rejects.toThrow('does not exist')
  })

  test('model.json is found in a single sub-folder; a missing folder is explained', async () => {
    await mkdir(join(temp.path, 'pkg'))
    await writeFile(join(temp.path, 'pkg', 'model.json'), modelJson)
    await writeFile(join(temp.path, 'pkg', 'model.onnx'), onnxBytes)
    expect((await readModelPackage(temp.path)).root).toBe(join(temp.path, 'pkg'))
    await expect(readModelPackage(join(temp.path, 'nowhere'))).rejects.toThrow('does not exist')
    await mkdir(join(temp.path, 'second'))
    await expect(readModelPackage(temp.path)).rejects.toThrow('no model.json')
  })
})
