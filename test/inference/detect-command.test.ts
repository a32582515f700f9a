import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeTinyYoloModel, tinyModelJson, writeTinyModelPackage } from '../../scripts/make-test-models.ts'
import { UsageError } from '../../src/cli/arguments.ts'
import { runDetectCommand } from '../../src/cli/detect-command.ts'
import { decode, ImageMetadata } from '../../src/contract/index.ts'
import { createZip } from '../../src/foundation/zip-archive.ts'
import { jpegClaimingSize } from '../support/image-bombs.ts'
import { makeTempDir } from '../support/temp.ts'

const fixture = (name: string) => join(import.meta.dir, '..', 'fixtures', name)
const planted = [{ anchor: 5, cx: 20, cy: 24, w: 16, h: 12, classIndex: 1, score: 0.9 }]

let temp: Awaited<ReturnType<typeof makeTempDir>>
let zipPath: string
beforeAll(async () => {
  temp = await makeTempDir('lln-detect-cli-')
  zipPath = join(temp.path, 'tiny.zip')
  const zip = createZip({
    'tiny/model.json': JSON.stringify(tinyModelJson(['cat', 'dog'])),
    'tiny/model.onnx': makeTinyYoloModel({ layout: 'yolov5', featureScale: 0.001, planted }),
  })
  await writeFile(zipPath, zip)
})
afterAll(async () => { await temp.cleanup() })

async function run(args: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runDetectCommand(args, { out: (t) => out.push(t), err: (t) => err.push(t) })
  return { code, out, err }
}

const scratchFolders = async () => (await readdir(tmpdir())).filter((n) => n.startsWith('lln-detect-model-')).sort()

describe('learning-loop-node detect', () => {
  test('--model ZIP: one ImageMetadata JSON line per file; the unpacked model is removed afterwards', async () => {
    const before = await scratchFolders()
    const { code, out, err } = await run([fixture('astronaut.jpg'), fixture('coffee.jpg'), '--model', zipPath, '--json', '--backend', 'cpu', '--threads', '1'])
    expect(err).toEqual([])
    expect(code).toBe(0)
    expect(out).toHaveLength(2)
    const [astronaut, coffee] = out.map((line) => decode(ImageMetadata, JSON.parse(line)))
    // 512×512: the planted (12,18)-(28,30) box scales by 8
    expect(astronaut!.box_detections).toEqual([expect.objectContaining({ category_name: 'dog', category_id: 'class-1', model_name: '1.0', x: 96, y: 144, width: 128, height: 96 })])
    // 600×400 into 64×64: resized to 64×43 (scale x 64/600, y 43/400), 10 px of padding on top:
    // x 12/0.1067 = 112.5 → 113, y (18 − 10)/0.1075 = 74.4 → 74, right 262.5 → 263, bottom 186.0 → 186
    expect(coffee!.box_detections![0]).toMatchObject({ category_name: 'dog', x: 113, y: 74, width: 150, height: 112 })
    expect(astronaut!.created).toMatch(/^\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.\d{3}$/)
    expect(await scratchFolders()).toEqual(before)
  })

  test('--model DIR and human-readable output', async () => {
    const dir = await writeTinyModelPackage(join(temp.path, 'dir-model'), { layout: 'yolov8', featureScale: 0.001, planted })
    const { code, out, err } = await run([fixture('chelsea.jpg'), '--model', dir, '--backend=cpu'])
    expect(code).toBe(0)
    expect(err[0]).toContain('model 1.0 on cpu')
    expect(out[0]).toStartWith('==> chelsea.jpg (451×300')
    expect(JSON.parse(out.slice(1).join('\n')).box_detections).toHaveLength(1)
  })

  test('a missing or broken file fails that file only (exit 1); the others are printed', async () => {
    const broken = join(temp.path, 'broken.jpg')
    await writeFile(broken, (await Bun.file(fixture('rocket.jpg')).bytes()).subarray(0, 3000))
    const { code, out, err } = await run([join(temp.path, 'missing.jpg'), broken, fixture('rocket.jpg'), '--model', zipPath, '--json', '--backend', 'cpu'])
    expect(code).toBe(1)
    expect(out).toHaveLength(1)
    expect(err).toEqual([expect.stringContaining('missing.jpg: file not found'), expect.stringContaining('broken.jpg: the JPEG image is damaged')])
  })

  test('an image over the pixel budget fails that file naming size and budget; --max-image-pixels sets the budget', async () => {
    const bomb = join(temp.path, 'bomb.jpg')
    await writeFile(bomb, jpegClaimingSize(9999, 9999))
    const { code, out, err } = await run([bomb, fixture('rocket.jpg'), '--model', zipPath, '--json', '--backend', 'cpu', '--threads', '1'])
    expect(code).toBe(1)
    expect(out).toHaveLength(1)
    expect(err).toEqual([expect.stringMatching(/bomb\.jpg: .*9999×9999.*pixel budget of 50000000/)])
    // rocket.jpg is 640×427 = 273280 pixels
    const small = await run([fixture('rocket.jpg'), '--model', zipPath, '--json', '--backend', 'cpu', '--threads', '1', '--max-image-pixels', '273279'])
    expect(small.code).toBe(1)
    expect(small.err).toEqual([expect.stringContaining('pixel budget of 273279')])
    await expect(run([fixture('rocket.jpg'), '--max-image-pixels', '0'])).rejects.toThrow('--max-image-pixels')
  })

  test('a bad model or backend is reported with exit 1', async () => {
    const badModel = await writeTinyModelPackage(join(temp.path, 'bad-model'), { layout: 'yolov8', modelJson: { id: 'x', host: null } })
    const bad = await run([fixture('rocket.jpg'), '--model', badModel])
    expect(bad.code).toBe(1)
    expect(bad.err[0]).toContain('/organization')
    const cuda = await run([fixture('rocket.jpg'), '--model', zipPath, '--backend', 'cuda'])
    expect(cuda.code).toBe(1)
    expect(cuda.err[0]).toContain('no inference backend can run this model: cuda: CUDA provider libraries')
  })

  test('--help, and usage errors for missing files and bad flags', async () => {
    const help = await run(['--help'])
    expect(help.code).toBe(0)
    expect(help.out[0]).toContain('usage: learning-loop-node detect FILE...')
    await expect(run([])).rejects.toBeInstanceOf(UsageError)
    await expect(run([fixture('rocket.jpg'), '--backend', 'tpu'])).rejects.toThrow('unknown inference backend')
    await expect(run([fixture('rocket.jpg'), '--threads', '0'])).rejects.toThrow('--threads')
    await expect(run([fixture('rocket.jpg'), '--model', join(temp.path, 'nope.zip')])).rejects.toThrow('does not exist')
    await expect(run([fixture('rocket.jpg'), '--bogus'])).rejects.toThrow('unknown flag --bogus')
  })
})
