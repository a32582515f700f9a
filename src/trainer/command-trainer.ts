import { existsSync } from 'node:fs'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import {
  CommandTrainerConfig, decode, imageFileName,
  type Detections, type PretrainedModel, type Training, type TrainingStateData,
} from '../contract/index.ts'
import { writeFileAtomic } from '../foundation/atomic-file.ts'
import { createLogger, type Logger } from '../foundation/log.ts'
import { scriptRunnerCommand } from '../runtime/script-runner.ts'
import { checkTemplate, CommandTemplateError, expandCommand, hyperparameterText, type PlaceholderValues } from './command-template.ts'
import { Executor, type ExecutorOptions } from './executor.ts'
import { TRAINING_FILE_NAMES } from './active-training-files.ts'
import { RotatingLogFile } from './rotating-log-file.ts'
import type { DetectionRequest, ModelFiles, TrainerLogic, TrainingRun } from './trainer-logic.ts'
import { applyProtocolLine, emptyOutputState, type TrainerOutputState } from './trainer-output-protocol.ts'
import { CriticalError, StepCancelledError } from './training-errors.ts'

/**
 * A TrainerLogic driven by configuration, not code: command templates for training (from scratch, from a base
 * model, resuming) and detection, usable with any training framework installed on the machine.
 *
 * Placeholders (each argument is split shell-style first, then filled in; no shell runs the command):
 *   {training_folder}       the training's folder (also the working directory)
 *   {data_dir}              <training_folder>/data, holding training.json (written before every start)
 *   {training_file}         <training_folder>/data/training.json: id, context, categories, hyperparameters,
 *                           model_variant, training_number, images_folder, image_data (id, file, set, annotations …)
 *   {images_dir}            the project's shared image folder (<id>.jpg files; other ids encoded: use image_data[].file)
 *   {hyperparameters.NAME}  one hyperparameter (strings as is, other values as JSON); missing → CriticalError
 *   {hyperparameters_json}  all hyperparameters as JSON
 *   {resolution}            hyperparameters.resolution
 *   {model_variant} {model_format} {training_number} {training_id}
 *   {base_model_dir}        <training_folder>/base_model, where the base model was unpacked ('' from scratch)
 *   {base_model_path}       the single non-JSON file in base_model_dir, else base_model_dir ('' from scratch)
 *   {checkpoint}            the last reported checkpoint (resume command only)
 *   {model_folder} {images_list}   detection command only: the model's folder, a file listing image paths
 *   {bun}                   the command that runs a script with this node's runtime: Bun's executable, or on Deno
 *                           `deno run` with this node's permissions (runtime/script-runner.ts)
 *   {config_dir}            the folder of --trainer-config FILE (else the node's working directory): programs
 *                           kept beside the configuration, e.g. `{bun} {config_dir}/train.ts`
 *
 * The program reports through JSON lines (protocol in trainer-output-protocol.ts): {"progress":0.4},
 * {"epoch":3,"confusion_matrix":{…}}, {"model_files":{"onnx":["best.onnx"]}}, {"checkpoint":"last.pt"},
 * {"error":"…"}, and for detection {"detections":{…}}. Everything else is just log output.
 */

const TRAINING_PLACEHOLDERS = [
  'training_folder', 'data_dir', 'training_file', 'images_dir', 'hyperparameters.', 'hyperparameters_json', 'resolution',
  'model_variant', 'model_format', 'training_number', 'training_id', 'base_model_dir', 'base_model_path', 'bun', 'config_dir',
]
const RESUME_PLACEHOLDERS = [...TRAINING_PLACEHOLDERS, 'checkpoint']
const DETECT_PLACEHOLDERS = [...TRAINING_PLACEHOLDERS, 'model_folder', 'images_list']

export const BASE_MODEL_FOLDER = 'base_model'
export const TRAINING_DATA_FOLDER = 'data'
export const DETECT_LOG_NAME = 'detect.log'

export interface CommandTrainerOptions {
  log?: Logger
  /** passed to every Executor the trainer creates (detection), e.g. shorter grace periods in tests */
  executor?: Partial<Omit<ExecutorOptions, 'cwd' | 'logPath'>>
  /** `{config_dir}`: the folder of the configuration file (default: the working directory) */
  configDir?: string
}

export class CommandTrainer implements TrainerLogic {
  readonly config: CommandTrainerConfig
  private output: TrainerOutputState = emptyOutputState()
  /** the training `output` belongs to; another training (or none after a restart) replays its log instead */
  private outputTrainingId: string | undefined
  private publishedState: TrainingStateData | null = null
  private readonly errorPatterns: RegExp[]
  private readonly log: Logger
  private readonly reportedInvalid = new Set<string>()

  /** `config` is checked against the contract and every template's placeholders; errors name the problem. */
  constructor(config: unknown, private readonly options: CommandTrainerOptions = {}) {
    this.config = decode(CommandTrainerConfig, config)
    checkTemplate(this.config.command, TRAINING_PLACEHOLDERS)
    if (this.config.base_model_command) checkTemplate(this.config.base_model_command, TRAINING_PLACEHOLDERS)
    if (this.config.resume_command) checkTemplate(this.config.resume_command, RESUME_PLACEHOLDERS)
    if (this.config.detect_command) checkTemplate(this.config.detect_command, DETECT_PLACEHOLDERS)
    this.errorPatterns = (this.config.error_patterns ?? []).map((p) => {
      try {
        return new RegExp(p)
      } catch (error) {
        throw new Error(`error_patterns: ${JSON.stringify(p)} is not a regular expression (${(error as Error).message})`)
      }
    })
    this.log = (options.log ?? createLogger('trainer')).child('command')
  }

  get modelFormat(): string {
    return this.config.model_format
  }
  get modelArchitecture(): string | null {
    return this.config.model_architecture ?? null
  }
  get providedPretrainedModels(): readonly PretrainedModel[] {
    return this.config.pretrained_models ?? []
  }

  trainingProgress(): number | null {
    return this.outputTrainingId ? this.output.progress : null
  }

  startTrainingFromScratch(run: TrainingRun): Promise<void> {
    return this.launch(run, this.config.command, {})
  }

  startTrainingFromBaseModel(run: TrainingRun): Promise<void> {
    return this.launch(run, this.config.base_model_command ?? this.config.command, {})
  }

  async canResume(run: TrainingRun): Promise<boolean> {
    if (!this.config.resume_command) return false
    const checkpoint = this.checkpointPath(run.training)
    return checkpoint !== undefined && existsSync(checkpoint)
  }

  async resume(run: TrainingRun): Promise<void> {
    const checkpoint = this.checkpointPath(run.training)
    if (!this.config.resume_command || !checkpoint) throw new Error('nothing to resume from')
    await this.launch(run, this.config.resume_command, { checkpoint })
  }

  async errorFromLog(run: TrainingRun): Promise<string | null> {
    return this.outputTrainingId === run.training.id ? this.output.error : null
  }

  async newBestTrainingState(_training: Readonly<Training>): Promise<TrainingStateData | null> {
    const pending = this.output.pendingState
    return pending && pending !== this.publishedState ? structuredClone(pending) : null
  }

  async onMetricsPublished(state: TrainingStateData, _training: Readonly<Training>): Promise<void> {
    const pending = this.output.pendingState
    if (pending && pending.epoch === state.epoch && JSON.stringify(pending.confusion_matrix) === JSON.stringify(state.confusion_matrix)) {
      this.publishedState = pending
    }
  }

  /** The last model_files line of this run — or, after a node restart, of the log on disk. */
  async latestModelFiles(training: Readonly<Training>): Promise<ModelFiles | null> {
    const files = this.outputOf(training).modelFiles
    if (!files) return null
    const absolute = (p: string) => (isAbsolute(p) ? p : join(training.training_folder, p))
    const resolved: Record<string, string[]> = Array.isArray(files)
      ? { [this.modelFormat]: files.map(absolute) }
      : Object.fromEntries(Object.entries(files).map(([format, list]) => [format, list.map(absolute)]))
    for (const list of Object.values(resolved)) {
      for (const path of list) if (!existsSync(path)) throw new Error(`the training reported model file ${path}, but it does not exist`)
    }
    return resolved
  }

  async detect(request: DetectionRequest): Promise<Detections[]> {
    if (!this.config.detect_command) {
      this.log.warn('no detect_command configured; no detections are made', { training_id: request.training.id })
      return []
    }
    if (request.imagePaths.length === 0) return []
    const folder = join(request.training.training_folder, 'detect')
    await mkdir(folder, { recursive: true })
    const imagesList = join(folder, `images_${crypto.randomUUID().slice(0, 8)}.txt`)
    await writeFileAtomic(imagesList, request.imagePaths.join('\n') + '\n')
    const state = emptyOutputState()
    const executor = new Executor({ ...this.options.executor, cwd: request.training.training_folder, logPath: join(request.training.training_folder, DETECT_LOG_NAME), log: this.log })
    executor.onLine((line) => applyProtocolLine(state, line))
    const values = await this.placeholderValues(request.training, { model_folder: request.modelFolder, images_list: imagesList })
    const onAbort = () => void executor.cancel()
    try {
      executor.start(expandCommand(this.config.detect_command, values), this.config.env ?? {})
      request.signal.addEventListener('abort', onAbort, { once: true })
      const exit = await executor.wait()
      if (request.signal.aborted) throw new StepCancelledError('detection cancelled')
      if (state.error) throw new Error(`detection failed: ${state.error}`)
      if (exit.code !== 0) throw new Error(`detection command ended with ${exit.signal ?? `exit code ${exit.code}`}: ${executor.logTail(3).join(' | ')}`)
      this.reportInvalidLines(state)
      return state.detections
    } finally {
      request.signal.removeEventListener('abort', onAbort)
      if (executor.isRunning) await executor.cancel()
      await rm(imagesList, { force: true })
    }
  }

  /** Removes the dataset description and the unpacked base model; the log and the model files stay. */
  async clearTrainingData(trainingFolder: string): Promise<void> {
    await rm(join(trainingFolder, TRAINING_DATA_FOLDER), { recursive: true, force: true })
    await rm(join(trainingFolder, BASE_MODEL_FOLDER), { recursive: true, force: true })
    await rm(join(trainingFolder, 'detect'), { recursive: true, force: true })
  }

  private checkpointPath(training: Readonly<Training>): string | undefined {
    const checkpoint = this.outputOf(training).checkpoint
    if (!checkpoint) return undefined
    return isAbsolute(checkpoint) ? checkpoint : join(training.training_folder, checkpoint)
  }

  private outputOf(training: Readonly<Training>): TrainerOutputState {
    if (this.outputTrainingId === training.id && (this.output.modelFiles || this.output.checkpoint)) return this.output
    const replayed = this.replayLog(training)
    if (this.outputTrainingId !== training.id) return replayed
    return { ...this.output, modelFiles: this.output.modelFiles ?? replayed.modelFiles, checkpoint: this.output.checkpoint ?? replayed.checkpoint }
  }

  /** The protocol state of everything in the training log (all runs), for a node that restarted. */
  private replayLog(training: Readonly<Training>): TrainerOutputState {
    const state = emptyOutputState()
    const log = new RotatingLogFile(join(training.training_folder, TRAINING_FILE_NAMES.log))
    for (const line of log.readAll().split(/\r\n|\n|\r/)) applyProtocolLine(state, line)
    return state
  }

  private async launch(run: TrainingRun, template: string, extra: Record<string, string>): Promise<void> {
    // a new run: errors and progress of earlier runs (also in the log) do not count
    const checkpoint = this.outputTrainingId === run.training.id ? this.output.checkpoint : null
    this.output = emptyOutputState()
    this.output.checkpoint = checkpoint
    this.outputTrainingId = run.training.id
    this.publishedState = null
    await this.writeTrainingFile(run.training)
    let argv: string[]
    try {
      argv = expandCommand(template, await this.placeholderValues(run.training, extra))
    } catch (error) {
      // a missing hyperparameter does not appear by retrying
      if (error instanceof CommandTemplateError) throw new CriticalError(error.message)
      throw error
    }
    run.executor.onLine((line) => this.onOutputLine(line))
    run.log.info('starting the training command', { training_id: run.training.id, argv })
    run.executor.start(argv, this.config.env ?? {})
  }

  private onOutputLine(line: string): void {
    if (!applyProtocolLine(this.output, line)) {
      const pattern = this.errorPatterns.find((p) => p.test(line))
      if (pattern && !this.output.error) this.output.error = line.trim()
    }
    this.reportInvalidLines(this.output)
  }

  private reportInvalidLines(state: TrainerOutputState): void {
    for (const line of state.invalidLines) {
      if (this.reportedInvalid.has(line)) continue
      this.reportedInvalid.add(line)
      this.log.warn('the training program wrote a protocol line that is not understood', { line })
    }
  }

  private async writeTrainingFile(training: Readonly<Training>): Promise<void> {
    const description = {
      id: training.id,
      context: training.context,
      categories: training.categories,
      hyperparameters: training.hyperparameters,
      model_variant: training.model_variant,
      training_number: training.training_number,
      images_folder: training.images_folder,
      // each image's file: `<id>.jpg` for the Loop's UUIDs, an encoded name for any other id
      image_data: (training.image_data ?? []).map((image) => ({ ...image, file: join(training.images_folder, imageFileName(image.id)) })),
    }
    await writeFileAtomic(join(training.training_folder, TRAINING_DATA_FOLDER, 'training.json'), JSON.stringify(description))
  }

  private async placeholderValues(training: Readonly<Training>, extra: Record<string, string>): Promise<PlaceholderValues> {
    const baseModelDir = join(training.training_folder, BASE_MODEL_FOLDER)
    const hasBaseModel = existsSync(baseModelDir)
    const baseModelPath = hasBaseModel ? await singleModelFile(baseModelDir) : ''
    const dataDir = join(training.training_folder, TRAINING_DATA_FOLDER)
    const fixed: Record<string, string | readonly string[] | undefined> = {
      training_folder: training.training_folder,
      data_dir: dataDir,
      training_file: join(dataDir, 'training.json'),
      images_dir: training.images_folder,
      hyperparameters_json: JSON.stringify(training.hyperparameters),
      resolution: hyperparameterText(training.hyperparameters.resolution),
      model_variant: training.model_variant,
      model_format: this.modelFormat,
      training_number: String(training.training_number),
      training_id: training.id,
      base_model_dir: hasBaseModel ? baseModelDir : '',
      base_model_path: baseModelPath,
      bun: scriptRunnerCommand(),
      config_dir: this.options.configDir ?? process.cwd(),
      ...extra,
    }
    // own keys only: `{hyperparameters.__proto__}` must be missing, not Object.prototype
    const own = (values: object, key: string) => (Object.hasOwn(values, key) ? (values as Record<string, unknown>)[key] : undefined)
    return (name) => (name.startsWith('hyperparameters.') ? hyperparameterText(own(training.hyperparameters, name.slice('hyperparameters.'.length))) : (own(fixed, name) as string | readonly string[] | undefined))
  }
}

async function singleModelFile(folder: string): Promise<string> {
  const files: string[] = []
  for (const name of await readdir(folder)) {
    if (name.endsWith('.json')) continue
    if ((await stat(join(folder, name))).isFile()) files.push(name)
  }
  return files.length === 1 ? join(folder, files[0]!) : folder
}
