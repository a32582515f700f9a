import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CommandTrainerConfig } from '../contract/index.ts'
import { EMBEDDED_ASSETS } from '../foundation/embedded-assets.ts'
import { unpackEmbeddedFiles } from '../foundation/embedded-files.ts'
import { CommandTrainer, type CommandTrainerOptions } from './command-trainer.ts'

const SCRIPT_NAME = 'testing-trainer-script.ts'

/**
 * The script's path: beside this module from source; in a compiled binary it is embedded and copied out
 * once, because the child process (the binary itself, acting as `bun` with BUN_BE_BUN=1) needs a real file.
 */
export function testingTrainerScriptPath(env: Record<string, string | undefined> = process.env): string {
  const embedded = EMBEDDED_ASSETS?.testingTrainerScript
  if (!embedded) return fileURLToPath(new URL(`./${SCRIPT_NAME}`, import.meta.url))
  return join(unpackEmbeddedFiles({ [SCRIPT_NAME]: embedded }, `testing-trainer-${embedded.sha256.slice(0, 12)}`, 'the testing trainer script', env), SCRIPT_NAME)
}

/**
 * The command-trainer configuration of the testing trainer (`learning-loop-node trainer --logic testing`): a
 * real child process that trains for `epochs` × `epoch_ms`, reports a confusion matrix per category and a
 * checkpoint every epoch, resumes from its checkpoint after a crash, and detects one box per image.
 * Its behaviour comes from the training's hyperparameters (see testing-trainer-script.ts): `epochs` (3),
 * `epoch_ms` (100), `fail_at`, `crash_at`, `forever`, `formats` ("mocked,mocked_2"), `grandchild`,
 * `stubborn_grandchild`, `ignore_sigterm`.
 */
export function testingTrainerConfig(modelFormat = 'mocked'): CommandTrainerConfig {
  const script = testingTrainerScriptPath()
  const train = `{bun} ${quoted(script)} train --training-file {training_file} --output {training_folder} --format {model_format}`
  return {
    model_format: modelFormat,
    command: train,
    resume_command: `${train} --resume-from {checkpoint}`,
    detect_command: `{bun} ${quoted(script)} detect --images-list {images_list} --model-folder {model_folder}`,
    model_architecture: 'testing',
    pretrained_models: [{ name: 'small', label: 'Small', description: 'the testing trainer (a stand-in training program)' }],
    // a compiled binary runs a script only when told to act as bun; plain bun ignores the variable
    env: { BUN_BE_BUN: '1' },
    error_patterns: [],
  }
}

/** A CommandTrainer running the testing trainer script. */
export function testingTrainer(options: CommandTrainerOptions & { modelFormat?: string } = {}): CommandTrainer {
  const { modelFormat, ...rest } = options
  return new CommandTrainer(testingTrainerConfig(modelFormat), rest)
}

/** Single-quoted for the command template (which is split shell-style). */
function quoted(path: string): string {
  return `'${path.replaceAll("'", `'\\''`)}'`
}
