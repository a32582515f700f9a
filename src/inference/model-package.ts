/**
 * Model packages: a zip (or folder) holding `model.json` (§6.4) and the model file(s), either at the
 * root or inside one top-level folder. Installing validates `model.json` before anything is written,
 * extracts with the safe extractor into a staging folder and moves the package root into place, so a
 * bad package leaves nothing behind.
 */
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ContractError, ModelInferenceSettings, ModelInformation, decode } from '../contract/index.ts'
import { quoteInput } from '../foundation/log.ts'
import { ModelPackageError } from './inference-errors.ts'
import { extractZip, listZipEntries, readZipEntry, ZipError, type ZipEntry, type ZipLimits } from '../foundation/zip-archive.ts'

export const MODEL_JSON = 'model.json'

export type ModelInformationWithFormat = ModelInformation & { format?: string }

export interface ModelPackage {
  /** absolute folder holding model.json */
  root: string
  information: ModelInformationWithFormat
  inference: ModelInferenceSettings
  /** absolute path of the ONNX file */
  modelFile: string
}

/** Entries that archivers add beside the real content and that never belong to a package. */
const isArchiverNoise = (name: string) => name.startsWith('__MACOSX/') || name.split('/').pop() === '.DS_Store'

/** Decodes model.json text; every problem becomes a ModelPackageError naming the offending fields. */
export function parseModelJson(text: string, where: string): { information: ModelInformationWithFormat; inference: ModelInferenceSettings } {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (error) {
    throw new ModelPackageError(`${where} is not valid JSON: ${(error as Error).message}`)
  }
  try {
    const information = decode(ModelInformation, raw) as ModelInformationWithFormat
    const record = raw as Record<string, unknown>
    const inference = decode(ModelInferenceSettings, record.inference ?? {})
    if (typeof record.format === 'string') information.format = record.format
    return { information, inference }
  } catch (error) {
    if (error instanceof ContractError) {
      const fields = error.issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')
      throw new ModelPackageError(`${where} is invalid (${error.shape === 'ModelInferenceSettings' ? 'inference section' : 'fields'}: ${fields})`)
    }
    throw error
  }
}

/** The folder holding model.json: `dir` itself or its single top-level sub-folder. */
export async function findModelRoot(dir: string): Promise<string> {
  const root = resolve(dir)
  const names = await readdir(root).catch((error: NodeJS.ErrnoException) => {
    throw new ModelPackageError(`model folder ${root} cannot be read: ${error.code === 'ENOENT' ? 'it does not exist' : error.message}`)
  })
  if (names.includes(MODEL_JSON)) return root
  const visible = names.filter((n) => !n.startsWith('.') && n !== '__MACOSX')
  if (visible.length === 1) {
    const only = join(root, visible[0]!)
    if ((await stat(only)).isDirectory() && (await readdir(only)).includes(MODEL_JSON)) return only
  }
  throw new ModelPackageError(`no ${MODEL_JSON} in ${root} (looked at the root and in a single top-level folder)`)
}

/** Reads and validates a model folder (model.json at the root or in one sub-folder) and picks its ONNX file. */
export async function readModelPackage(dir: string): Promise<ModelPackage> {
  const root = await findModelRoot(dir)
  const jsonPath = join(root, MODEL_JSON)
  const { information, inference } = parseModelJson(await readFile(jsonPath, 'utf8'), jsonPath)
  information.model_root_path = root
  let modelFile: string
  if (inference.model_file) {
    modelFile = resolve(root, inference.model_file)
    if (!modelFile.startsWith(root + '/')) throw new ModelPackageError(`inference.model_file ${quoteInput(inference.model_file)} points outside the package`)
    if (!(await stat(modelFile).then((s) => s.isFile(), () => false))) {
      throw new ModelPackageError(`model file ${inference.model_file} named in ${jsonPath} does not exist`)
    }
  } else {
    const onnxFiles = (await readdir(root)).filter((n) => n.toLowerCase().endsWith('.onnx'))
    if (onnxFiles.length === 0) throw new ModelPackageError(`no .onnx model file in ${root}; add one or name it in model.json inference.model_file`)
    if (onnxFiles.length > 1) throw new ModelPackageError(`several .onnx files in ${root} (${onnxFiles.join(', ')}); name one in model.json inference.model_file`)
    modelFile = join(root, onnxFiles[0]!)
  }
  return { root, information, inference, modelFile }
}

/** What an install may unpack: the zip limits, compression bombs included (see ZipLimits). */
export type InstallLimits = ZipLimits

/**
 * Validates a model zip and extracts it so that `targetDir/model.json` exists (a single top-level
 * folder in the zip is flattened). `targetDir` must not exist or be empty. Returns model.json's
 * content with `model_root_path` set to the absolute target.
 */
export async function installModelPackage(zip: Uint8Array, targetDir: string, limits: InstallLimits = {}): Promise<ModelInformationWithFormat> {
  const target = resolve(targetDir)
  let entries: ZipEntry[]
  try {
    entries = listZipEntries(zip, limits).filter((e) => !isArchiverNoise(e.name))
  } catch (error) {
    throw new ModelPackageError(`model package rejected: ${(error as Error).message}`)
  }
  const files = entries.filter((e) => !e.isDirectory)
  let prefix = ''
  let jsonEntry = files.find((e) => e.name === MODEL_JSON)
  if (!jsonEntry) {
    const tops = new Set(entries.map((e) => e.name.split('/')[0]))
    const nested = files.find((e) => /^[^/]+\/model\.json$/.test(e.name))
    if (nested && tops.size === 1) {
      jsonEntry = nested
      prefix = nested.name.slice(0, -MODEL_JSON.length)
    }
  }
  if (!jsonEntry) throw new ModelPackageError(`model package has no ${MODEL_JSON} at its root or in a single top-level folder`)
  let jsonText: string
  try {
    jsonText = new TextDecoder().decode(readZipEntry(zip, jsonEntry))
  } catch (error) {
    throw new ModelPackageError(`model package rejected: ${(error as Error).message}`)
  }
  const { information } = parseModelJson(jsonText, `${MODEL_JSON} in the model package`)

  const existing = await readdir(target).catch(() => [] as string[])
  if (existing.length > 0) throw new ModelPackageError(`cannot install the model into ${target}: the folder is not empty`)
  const staging = `${target}.installing-${crypto.randomUUID().slice(0, 8)}`
  try {
    await extractZip(zip, staging, limits)
    await rm(target, { recursive: true, force: true })
    await rename(prefix ? join(staging, prefix) : staging, target)
  } catch (error) {
    if (error instanceof ZipError) throw new ModelPackageError(`model package rejected: ${error.message}`)
    throw error
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
  information.model_root_path = target
  return information
}
