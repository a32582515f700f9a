import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { ConfigError } from '../config/read-settings.ts'
import type { SettingName } from '../config/settings.ts'
import { CommandTrainer } from '../trainer/command-trainer.ts'
import { testingTrainer } from '../trainer/testing-trainer.ts'
import type { TrainerLogic } from '../trainer/trainer-logic.ts'
import { DEFAULT_TRAINER_PORT, TrainerNode, type TrainerTiming } from '../trainer/trainer-node.ts'
import { describeSettings, parseArguments, UsageError } from './arguments.ts'
import { loadCommandConfig, serveUntilSignalled } from './node-command.ts'

const TRAINER_SETTINGS: SettingName[] = [
  'port', 'hostname', 'dataFolder', 'loopHost', 'username', 'password', 'organization', 'project', 'sslCertPath',
  'requestTimeoutMs', 'localLoopPort', 'trainerIdleTimeoutSec', 'restartAfterTraining', 'keepOldTrainings',
  'inferenceBatchSize', 'skipRepeatOnStart', 'useBackdoorControls', 'logLevel',
]

/** Trainer tuning: flag, environment variable, what it sets. Integers ≥ 0; production defaults in TrainerNode. */
const TUNING = [
  { flag: 'status-interval-ms', env: 'TRAINER_STATUS_INTERVAL_MS', help: 'repeat cycle: update_trainer, resume and idle checks (default 5000)' },
  { flag: 'retry-attempts', env: 'TRAINER_RETRY_ATTEMPTS', help: 'attempts of a failing step before the training is marked failed (default 10)' },
  { flag: 'retry-base-ms', env: 'TRAINER_RETRY_BASE_MS', help: 'wait before the second attempt; doubles after that (default 2000)' },
  { flag: 'retry-max-ms', env: 'TRAINER_RETRY_MAX_MS', help: 'longest wait between attempts (default 300000)' },
  { flag: 'loop-wait-max-ms', env: 'TRAINER_LOOP_WAIT_MAX_MS', help: 'longest wait between checks while the Loop is unreachable (default 10000)' },
  { flag: 'stop-grace-ms', env: 'TRAINER_STOP_GRACE_MS', help: 'stop_training: SIGTERM to the training process group, SIGKILL after this (default 15000)' },
  { flag: 'cancel-grace-ms', env: 'TRAINER_CANCEL_GRACE_MS', help: 'abort and shutdown: the same, with this grace (default 3000)' },
  { flag: 'upload-pause-ms', env: 'TRAINER_UPLOAD_PAUSE_MS', help: 'test knob: pause before every model/detection upload request (default 0)' },
] as const

const HELP = `usage: learning-loop-node trainer --logic command (--command TEMPLATE [--model-format F] [--detect-command T] [--resume-command T] | --trainer-config FILE.json)
       learning-loop-node trainer --logic testing [--model-format F]

Runs a trainer node (port ${DEFAULT_TRAINER_PORT} by default). The Loop starts, stops and aborts trainings over socket.io
(begin_training, stop_training, abort_training); each training is a persisted state machine (download data,
train in a child process group, sync metrics, upload the model, detect, upload detections) that resumes after a
crash or restart, also while the Loop is down. Without LOOP_HOST an embedded local loop runs in the same process;
drive it with \`learning-loop-node loop admin start-training|stop-training|abort-training --url <its url> --node trainer\`.
GET /ready answers 200 while the node is connected to the Loop. Stops gracefully on SIGTERM/SIGINT (exit 0): the
training process group is killed and the training resumes at the next start.

trainer:
  --logic command          train with any program: TEMPLATE is split shell-style, then placeholders are filled in,
                           e.g. 'python train.py --data {data_dir} --epochs {hyperparameters.epochs}'. The program
                           reports progress, metrics and model files as JSON lines on stdout (placeholders and the
                           protocol: src/trainer/command-trainer.ts, trainer-output-protocol.ts)
  --command TEMPLATE       the training command
  --model-format F         the model format the training produces (default onnx; testing: mocked)   env: MODEL_FORMAT
  --detect-command T       detections after training ({model_folder}, {images_list}); without it none are made
  --resume-command T       continue an interrupted training from {checkpoint}
  --trainer-config FILE    all of the above (and env, error_patterns, pretrained_models …) as a JSON file
  --logic testing          the built-in testing trainer (a stand-in training program; its behaviour comes from the
                           hyperparameters epochs, epoch_ms, fail_at, crash_at, formats …), for demos and tests
  --name NAME              node name, sent in the status and keying its uuid in <data>/uuids.json (default trainer)

tuning:
${TUNING.map((t) => `  --${t.flag} <integer>\n      ${t.help}\n      env: ${t.env}`).join('\n')}

flags (each also an environment variable):
${describeSettings(TRAINER_SETTINGS)}`

const OWN_FLAGS = ['logic', 'command', 'detect-command', 'resume-command', 'trainer-config', 'name', ...TUNING.map((t) => t.flag)]

/** `learning-loop-node trainer`: runs until SIGTERM/SIGINT (graceful, exit 0), the idle timeout or a restart request. */
export async function runTrainerCommand(args: string[]): Promise<number> {
  const { flags, positionals } = parseArguments(args, { extraFlags: OWN_FLAGS })
  if (flags.help) {
    console.log(HELP)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (see --help)`)
  const { nodeFlags, own } = splitFlags(flags)
  const config = loadCommandConfig(process.env, nodeFlags)
  const timing = readTiming(own, process.env)
  const logic = await trainerLogicFrom(own, process.env, timing)
  const node = await TrainerNode.create({ config, logic, timing, ...(own.name ? { name: own.name } : {}) })
  // the ready line carries the uuid, so scripts and tests can address the trainer
  return serveUntilSignalled(node.runtime, () => node.runtime.start(), () => `trainer ${node.uuid} listening on ${node.url}`)
}

/** The command's own flags apart from the settings-table flags (`--model-format` is read here, not as the detector's). */
function splitFlags(flags: Record<string, string>): { nodeFlags: Record<string, string>; own: Record<string, string> } {
  const nodeFlags: Record<string, string> = {}
  const own: Record<string, string> = {}
  for (const [name, value] of Object.entries(flags)) {
    if (OWN_FLAGS.includes(name) || name === 'model-format') own[name] = value
    else nodeFlags[name] = value
  }
  return { nodeFlags, own }
}

function readTiming(own: Record<string, string>, env: Record<string, string | undefined>): TrainerTiming {
  const value = (flag: (typeof TUNING)[number]['flag']): number | undefined => {
    const spec = TUNING.find((t) => t.flag === flag)!
    const fromFlag = own[flag]
    const text = fromFlag ?? (env[spec.env] || undefined)
    if (text === undefined) return undefined
    if (!/^\d+$/.test(text.trim())) throw new ConfigError(`${fromFlag !== undefined ? `--${flag}` : spec.env}=${JSON.stringify(text)} is not a non-negative integer`)
    return Number(text)
  }
  const attempts = value('retry-attempts')
  if (attempts === 0) throw new ConfigError('--retry-attempts must be at least 1')
  const retry = { maxAttempts: attempts, baseDelayMs: value('retry-base-ms'), maxDelayMs: value('retry-max-ms') }
  const loopWaitMax = value('loop-wait-max-ms')
  const executor = { stopGraceMs: value('stop-grace-ms'), cancelGraceMs: value('cancel-grace-ms') }
  return {
    statusIntervalMs: value('status-interval-ms'),
    retry: withoutUndefined(retry),
    ...(loopWaitMax !== undefined ? { loopWait: { initialMs: Math.min(500, Math.max(1, loopWaitMax)), maxMs: Math.max(1, loopWaitMax) } } : {}),
    executor: withoutUndefined(executor),
    uploadPauseMs: value('upload-pause-ms'),
  }
}

async function trainerLogicFrom(own: Record<string, string>, env: Record<string, string | undefined>, timing: TrainerTiming): Promise<TrainerLogic> {
  const modelFormat = own['model-format'] ?? (env.MODEL_FORMAT || undefined)
  const logicName = own.logic ?? (own.command || own['trainer-config'] ? 'command' : undefined)
  const executor = timing.executor ?? {}
  if (logicName === 'testing') return testingTrainer({ executor, ...(modelFormat ? { modelFormat } : {}) })
  if (logicName !== 'command') {
    throw new UsageError(`choose a trainer: --logic command --command TEMPLATE, --logic command --trainer-config FILE, or --logic testing${logicName ? ` (not ${JSON.stringify(logicName)})` : ''}`)
  }
  let trainerConfig: Record<string, unknown>
  if (own['trainer-config']) {
    let text: string
    try {
      text = await readFile(own['trainer-config'], 'utf8')
    } catch (error) {
      throw new UsageError(`--trainer-config ${own['trainer-config']} cannot be read: ${(error as Error).message}`)
    }
    try {
      trainerConfig = JSON.parse(text) as Record<string, unknown>
    } catch (error) {
      throw new UsageError(`--trainer-config ${own['trainer-config']} is not valid JSON: ${(error as Error).message}`)
    }
    if (typeof trainerConfig !== 'object' || trainerConfig === null || Array.isArray(trainerConfig)) throw new UsageError(`--trainer-config ${own['trainer-config']} must hold a JSON object`)
    // flags given next to the file override it
    if (own.command) trainerConfig.command = own.command
    if (own['detect-command']) trainerConfig.detect_command = own['detect-command']
    if (own['resume-command']) trainerConfig.resume_command = own['resume-command']
    if (modelFormat) trainerConfig.model_format = modelFormat
  } else {
    if (!own.command) throw new UsageError('--logic command needs --command TEMPLATE or --trainer-config FILE')
    trainerConfig = {
      model_format: modelFormat ?? 'onnx',
      command: own.command,
      ...(own['detect-command'] ? { detect_command: own['detect-command'] } : {}),
      ...(own['resume-command'] ? { resume_command: own['resume-command'] } : {}),
    }
  }
  try {
    const configDir = own['trainer-config'] ? dirname(resolve(own['trainer-config'])) : undefined
    return new CommandTrainer(trainerConfig, { executor, ...(configDir ? { configDir } : {}) })
  } catch (error) {
    throw new UsageError(`invalid trainer configuration: ${(error as Error).message}`)
  }
}

function withoutUndefined<T extends Record<string, unknown>>(value: T): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<{ [K in keyof T]: Exclude<T[K], undefined> }>
}

if (import.meta.main) {
  let code: number
  try {
    code = await runTrainerCommand(process.argv.slice(2))
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof ConfigError)) throw error
    console.error(`learning-loop-node trainer: ${error.message}`)
    code = 2
  }
  process.exit(code)
}
