import type { SettingName } from '../config/settings.ts'
import { ConverterNode, DEFAULT_CONVERSION_INTERVAL_MS } from '../converter/converter-node.ts'
import { ONNX_PACKAGE_FORMAT, YOLO_ONNX_FORMAT, YoloOnnxConverter } from '../converter/yolo-onnx-converter.ts'
import { resolveNodeHome } from '../node/node-identity.ts'
import { createLogger } from '../foundation/log.ts'
import { describeSettings, parseArguments, UsageError } from './arguments.ts'
import { loadCommandConfig, serveUntilSignalled } from './node-command.ts'

export const DEFAULT_CONVERTER_PORT = 8006

const CONVERTER_SETTINGS: SettingName[] = [
  'port', 'hostname', 'dataFolder', 'loopHost', 'username', 'password', 'organization', 'project', 'sslCertPath',
  'requestTimeoutMs', 'localLoopPort', 'skipRepeatOnStart', 'logLevel',
]

const HELP = `usage: learning-loop-node converter [--from FORMAT] [--to FORMAT] [flags]

Runs the converter node: every interval it lists the Loop's projects and models (all projects, or only
LOOP_ORGANIZATION/LOOP_PROJECT when set), downloads each model that has the --from format but not the --to
format, converts it and uploads the result as the --to format of the same model. A model that cannot be
converted is skipped and reported (GET /status, and the node's errors); a failing one is retried 3 times
with backoff. What was done is kept in <data>/converter/, so a restart does not redo it.

The built-in conversion reads an Ultralytics YOLO ONNX export (class names and input size from its ONNX
metadata_props "names" and "imgsz") and writes this project's ONNX model package (model.onnx + model.json
with categories and resolution), the format detectors deploy. --from/--to name the formats on the Loop.

flags (each also an environment variable):
  --from <value>
      source format on the Loop (default: ${YOLO_ONNX_FORMAT})
      env: CONVERTER_SOURCE_FORMAT
  --to <value>
      target format on the Loop (default: ${ONNX_PACKAGE_FORMAT})
      env: CONVERTER_TARGET_FORMAT
  --interval <number>
      seconds between two checks of the Loop (default: ${DEFAULT_CONVERSION_INTERVAL_MS / 1000})
      env: CONVERTER_INTERVAL_SEC
  --name <value>
      node name (default: converter)
      env: NODE_NAME
${describeSettings(CONVERTER_SETTINGS)}`

const FORMAT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/

/** `learning-loop-node converter --from F --to F`: runs until SIGTERM/SIGINT, then exits 0. */
export async function runConverterCommand(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { flags, positionals } = parseArguments(args, { extraFlags: ['from', 'to', 'interval', 'name'] })
  if (flags.help) {
    console.log(HELP)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (see --help)`)
  const sourceFormat = flags.from ?? env.CONVERTER_SOURCE_FORMAT ?? YOLO_ONNX_FORMAT
  const targetFormat = flags.to ?? env.CONVERTER_TARGET_FORMAT ?? ONNX_PACKAGE_FORMAT
  for (const [flag, value] of [['--from', sourceFormat], ['--to', targetFormat]]) {
    if (!FORMAT_NAME.test(value!)) throw new UsageError(`${flag} ${JSON.stringify(value)} is not a format name (letters, digits, '_', '.', '-')`)
  }
  if (sourceFormat === targetFormat) throw new UsageError(`--from and --to are both ${JSON.stringify(sourceFormat)}`)
  const intervalText = flags.interval ?? env.CONVERTER_INTERVAL_SEC
  const interval = intervalText === undefined || intervalText === '' ? DEFAULT_CONVERSION_INTERVAL_MS / 1000 : Number(intervalText)
  if (!Number.isFinite(interval) || interval <= 0) throw new UsageError(`--interval must be a positive number of seconds, got ${JSON.stringify(intervalText)}`)
  const config = loadCommandConfig(env, flags)
  const name = flags.name ?? env.NODE_NAME ?? 'converter'
  const log = createLogger('converter')
  const { dataFolder, uuid } = await resolveNodeHome({ configured: config.dataFolder, name, log })
  const node = await ConverterNode.create({
    name, uuid, config, dataFolder, log,
    port: config.port ?? DEFAULT_CONVERTER_PORT, intervalMs: interval * 1000,
    logic: new YoloOnnxConverter({ sourceFormat, targetFormat }),
  })
  return serveUntilSignalled(node.runtime, () => node.start(), () => `converter (${sourceFormat} → ${targetFormat}) listening on ${node.runtime.url}`)
}

if (import.meta.main) process.exit(await runConverterCommand(process.argv.slice(2)))
