/**
 * `learning-loop-node detect FILE... [--model ZIP|DIR] [--backend B] [--threads N] [--ort-lib-dir D] [--max-image-pixels N] [--json]`:
 * runs a model on image files offline (no Loop) and prints one ImageMetadata (§6.5) per file.
 * The built-in face detector is used unless --model names a model package.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { readEnvSetting } from '../config/read-settings.ts'
import { SETTINGS } from '../config/settings.ts'
import { formatCreated } from '../contract/index.ts'
import { toImageMetadata } from '../detector/detection-service.ts'
import { errorMessage } from '../foundation/log.ts'
import { builtinModelDir } from '../inference/builtin-model.ts'
import { createInferenceEngine, type InferenceEngine } from '../inference/inference-engine.ts'
import { DEFAULT_MAX_IMAGE_PIXELS } from '../config/inference-settings.ts'
import { installModelPackage } from '../inference/model-package.ts'
import { parseBackendChoice } from '../inference/backend-choice.ts'
import { parseArguments, UsageError } from './arguments.ts'

export const DETECT_USAGE = `usage: learning-loop-node detect FILE... [flags]

Detects objects in JPEG/PNG files without a Loop and prints one ImageMetadata JSON per file.
Without --model the built-in face detector (MediaPipe BlazeFace) is used.

flags:
  --model ZIP|DIR      a model package: a zip or folder with model.json and an .onnx file
  --backend B          auto | fastest | webgpu | webgpu-native | cuda | cpu | wasm (env INFERENCE_BACKEND; default auto)
  --threads N          inference threads (env INFERENCE_THREADS; default: all cores)
  --ort-lib-dir DIR    folder with the onnxruntime CUDA provider libraries (env ORT_LIB_DIR)
  --max-image-pixels N larger images (width × height, from the header) are refused undecoded (env MAX_IMAGE_PIXELS; default ${DEFAULT_MAX_IMAGE_PIXELS})
  --json               one compact JSON object per line and nothing else on stdout
  --help               this text

exit status: 0 every file was processed, 1 some file failed, 2 usage error`

export interface DetectCommandIo {
  out(text: string): void
  err(text: string): void
}

const defaultIo: DetectCommandIo = {
  out: (text) => process.stdout.write(text + '\n'),
  err: (text) => process.stderr.write(text + '\n'),
}

function parsePositive(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`--${flag} ${JSON.stringify(text)} is not a positive integer`)
  return value
}

async function openModel(model: string | undefined): Promise<{ dir: string; cleanup(): Promise<void> }> {
  if (model === undefined) return { dir: builtinModelDir(), cleanup: async () => undefined }
  const info = await stat(model).catch(() => undefined)
  if (!info) throw new UsageError(`--model ${model} does not exist`)
  if (info.isDirectory()) return { dir: model, cleanup: async () => undefined }
  const scratch = await mkdtemp(join(tmpdir(), 'lln-detect-model-'))
  const cleanup = () => rm(scratch, { recursive: true, force: true })
  try {
    await installModelPackage(new Uint8Array(await readFile(model)), join(scratch, 'model'))
  } catch (error) {
    await cleanup()
    throw error
  }
  return { dir: join(scratch, 'model'), cleanup }
}

export async function runDetectCommand(args: string[], io: DetectCommandIo = defaultIo): Promise<number> {
  const { positionals, flags } = parseArguments(args, { extraFlags: ['model'], booleanFlags: ['json'] })
  if (flags.help === 'true') {
    io.out(DETECT_USAGE)
    return 0
  }
  if (positionals.length === 0) throw new UsageError(`no image files given\n\n${DETECT_USAGE}`)
  let backend
  try {
    backend = parseBackendChoice(flags.backend ?? readEnvSetting(SETTINGS.inferenceBackend, process.env))
  } catch (error) {
    throw new UsageError(errorMessage(error))
  }
  const threads = parsePositive('threads', flags.threads ?? readEnvSetting(SETTINGS.inferenceThreads, process.env))
  const maxImagePixels = parsePositive('max-image-pixels', flags['max-image-pixels'] ?? readEnvSetting(SETTINGS.maxImagePixels, process.env))
  const ortLibDir = flags['ort-lib-dir'] ?? readEnvSetting(SETTINGS.ortLibDir, process.env)
  const json = flags.json === 'true'

  let model: Awaited<ReturnType<typeof openModel>>
  let engine: InferenceEngine
  try {
    model = await openModel(flags.model)
  } catch (error) {
    if (error instanceof UsageError) throw error
    io.err(`learning-loop-node detect: ${errorMessage(error)}`)
    return 1
  }
  try {
    // the files are detected one after another: a second worker would only cost its start-up
    engine = await createInferenceEngine({ modelDir: model.dir, backend, threads, workers: 1, ortLibDir, maxImagePixels })
  } catch (error) {
    io.err(`learning-loop-node detect: ${errorMessage(error)}`)
    await model.cleanup()
    return 1
  }
  let failures = 0
  try {
    if (!json) io.err(`model ${engine.modelInfo.version} on ${engine.backend}${engine.rejected.length ? ` (rejected: ${engine.rejected.map((r) => `${r.backend}: ${r.reason}`).join('; ')})` : ''}`)
    for (const file of positionals) {
      try {
        const [bytes, info] = await Promise.all([readFile(file), stat(file)])
        const output = await engine.detect({ kind: 'encoded', bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) })
        // `created` is the file's modification time
        const metadata = toImageMetadata(output, { source: 'learning-loop-node detect', creationDate: formatCreated(info.mtime) })
        if (json) {
          io.out(JSON.stringify(metadata))
        } else {
          const total = output.timings.decodeMs + output.timings.preprocessMs + output.timings.inferenceMs + output.timings.postprocessMs
          io.out(`==> ${basename(file)} (${output.width}×${output.height}, ${total.toFixed(1)} ms)`)
          io.out(JSON.stringify(metadata, null, 2))
        }
      } catch (error) {
        failures++
        const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : errorMessage(error)
        io.err(`learning-loop-node detect: ${file}: ${reason}`)
      }
    }
  } finally {
    await engine.dispose()
    await model.cleanup()
  }
  return failures > 0 ? 1 : 0
}
