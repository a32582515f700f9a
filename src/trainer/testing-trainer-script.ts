#!/usr/bin/env bun
/**
 * A stand-in training program for tests and demos, like upstream's testing trainer: a real child process that
 * speaks the command-trainer protocol (see command-trainer.ts) on stdout.
 *
 *   bun testing-trainer-script.ts train [options]
 *     --training-file FILE  the command trainer's training.json: its categories feed the confusion matrix and its
 *                           hyperparameters set the options below (`epochs`, `epoch_ms`, `fail_at`, `crash_at`,
 *                           `forever`, `formats`, `ignore_sigterm`, `grandchild`, `stubborn_grandchild`);
 *                           flags given on the command line win
 *     --epochs N            epochs to run (default 3)
 *     --epoch-ms MS         time per epoch (default 100)
 *     --forever             never finish on its own (until signalled)
 *     --output DIR          where model files and the checkpoint go (default: cwd)
 *     --format F            model format named in the model_files line (default mocked); `a,b` reports the
 *                           model in several formats (one file each)
 *     --categories a,b      category ids for the confusion matrix
 *     --resume-from FILE    continue after the epoch stored in FILE
 *     --fail-at E           print {"error": …} at epoch E and exit 1
 *     --crash-at E          exit 3 at epoch E without an error line
 *     --ignore-sigterm      ignore SIGTERM (tests SIGKILL escalation)
 *     --grandchild          start `sleep 600` in the same process group and report its pid
 *     --stubborn-grandchild the same, but the grandchild ignores SIGTERM
 *   bun testing-trainer-script.ts detect --images-list FILE --model-folder DIR
 *     prints one {"detections": …} line per image listed in FILE (one path per line)
 *
 * On SIGTERM (unless ignored) it saves the model, reports it and exits 0: a graceful stop keeps the model.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

interface TrainingFile {
  categories?: { id: string }[]
  hyperparameters?: Record<string, unknown>
}

let fromFile: TrainingFile = {}

/** `--name value`, else the hyperparameter `name` (dashes as underscores) of the training file. */
function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`)
  if (i >= 0) return args[i + 1]
  const value = fromFile.hyperparameters?.[name.replaceAll('-', '_')]
  if (value === undefined || value === null) return undefined
  return Array.isArray(value) ? value.join(',') : String(value)
}
const flag = (args: string[], name: string) => {
  if (args.includes(`--${name}`)) return true
  const value = fromFile.hyperparameters?.[name.replaceAll('-', '_')]
  return value === true || value === 'true' || value === 1
}
const say = (message: Record<string, unknown>) => process.stdout.write(JSON.stringify(message) + '\n')

async function train(args: string[]): Promise<never> {
  const trainingFile = args.includes('--training-file') ? args[args.indexOf('--training-file') + 1] : undefined
  if (trainingFile) fromFile = JSON.parse(readFileSync(resolve(trainingFile), 'utf8')) as TrainingFile
  const epochs = Number(option(args, 'epochs') ?? 3)
  const epochMs = Number(option(args, 'epoch-ms') ?? 100)
  const output = resolve(option(args, 'output') ?? '.')
  const formats = (option(args, 'formats') ?? option(args, 'format') ?? 'mocked').split(',').filter(Boolean)
  const categories = (option(args, 'categories') ?? (fromFile.categories ?? []).map((c) => c.id).join(',')).split(',').filter(Boolean)
  const failAt = option(args, 'fail-at') !== undefined ? Number(option(args, 'fail-at')) : undefined
  const crashAt = option(args, 'crash-at') !== undefined ? Number(option(args, 'crash-at')) : undefined
  const resumeFrom = option(args, 'resume-from')
  const forever = flag(args, 'forever')
  mkdirSync(output, { recursive: true })

  let epoch = 0
  if (resumeFrom) {
    epoch = (JSON.parse(readFileSync(resolve(resumeFrom), 'utf8')) as { epoch: number }).epoch
    say({ resumed_at_epoch: epoch })
  }
  say({ pid: process.pid })

  if (flag(args, 'grandchild') || flag(args, 'stubborn-grandchild')) {
    const script = flag(args, 'stubborn-grandchild') ? "trap '' TERM; exec sleep 600" : 'exec sleep 600'
    const child = spawn('/bin/sh', ['-c', script], { stdio: 'ignore' })
    child.unref()
    say({ grandchild_pid: child.pid })
  }

  const saveModel = () => {
    const files: Record<string, string[]> = {}
    for (const [i, format] of formats.entries()) {
      const name = i === 0 ? 'model.bin' : `model_${format}.bin`
      writeFileSync(join(output, name), `${format} weights after epoch ${epoch}\n`)
      files[format] = [name]
    }
    say({ model_files: files })
  }

  if (flag(args, 'ignore-sigterm')) {
    process.on('SIGTERM', () => console.error('ignoring SIGTERM'))
  } else {
    process.on('SIGTERM', () => {
      console.error('SIGTERM: saving the model and stopping')
      saveModel()
      process.exit(0)
    })
  }

  while (forever || epoch < epochs) {
    await sleep(epochMs)
    epoch++
    if (failAt === epoch) {
      say({ error: `simulated training failure at epoch ${epoch}` })
      process.exit(1)
    }
    if (crashAt === epoch) {
      console.error(`simulated crash at epoch ${epoch}`)
      process.exit(3)
    }
    console.error(`epoch ${epoch} done`)
    const matrix = Object.fromEntries(categories.map((id, i) => [id, { tp: epoch + i, fp: 1, fn: 1 }]))
    say({ epoch, confusion_matrix: matrix, meta_information: { weights: `epoch_${epoch}.bin` } })
    writeFileSync(join(output, 'checkpoint.json'), JSON.stringify({ epoch }))
    say({ checkpoint: 'checkpoint.json' })
    say({ progress: forever ? null : epoch / epochs })
  }
  saveModel()
  process.exit(0)
}

function detect(args: string[]): never {
  const list = option(args, 'images-list')
  if (!list) {
    say({ error: '--images-list is required' })
    process.exit(2)
  }
  const modelFolder = option(args, 'model-folder') ?? '.'
  const images = readFileSync(list, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean)
  images.forEach((path, i) => {
    say({
      detections: {
        image_id: basename(path).replace(/\.[^.]+$/, ''),
        box_detections: [{ category_name: 'thing', x: i, y: i, width: 10, height: 10, model_name: basename(modelFolder), confidence: 0.5, category_id: null }],
      },
    })
  })
  process.exit(0)
}

const [mode = 'train', ...rest] = process.argv.slice(2)
if (mode === 'detect') detect(rest)
else await train(mode === 'train' ? rest : [mode, ...rest])
