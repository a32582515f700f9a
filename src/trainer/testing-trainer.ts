import type { CommandTrainerConfig } from '../contract/index.ts'
import { CommandTrainer, type CommandTrainerOptions } from './command-trainer.ts'

const SCRIPT = new URL('./testing-trainer-script.ts', import.meta.url).pathname

/**
 * The command-trainer configuration of the testing trainer (`learning-loop-node trainer --logic testing`): a
 * real child process that trains for `epochs` × `epoch_ms`, reports a confusion matrix per category and a
 * checkpoint every epoch, resumes from its checkpoint after a crash, and detects one box per image.
 * Its behaviour comes from the training's hyperparameters (see testing-trainer-script.ts): `epochs` (3),
 * `epoch_ms` (100), `fail_at`, `crash_at`, `forever`, `formats` ("mocked,mocked_2"), `grandchild`,
 * `stubborn_grandchild`, `ignore_sigterm`.
 */
export function testingTrainerConfig(modelFormat = 'mocked'): CommandTrainerConfig {
  const train = `{bun} ${quoted(SCRIPT)} train --training-file {training_file} --output {training_folder} --format {model_format}`
  return {
    model_format: modelFormat,
    command: train,
    resume_command: `${train} --resume-from {checkpoint}`,
    detect_command: `{bun} ${quoted(SCRIPT)} detect --images-list {images_list} --model-folder {model_folder}`,
    model_architecture: 'testing',
    pretrained_models: [{ name: 'small', label: 'Small', description: 'the testing trainer (a stand-in training program)' }],
    env: {},
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
