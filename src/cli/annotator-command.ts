import { AnnotatorNode } from '../annotator/annotator-node.ts'
import { BoxSegmentationTool } from '../annotator/box-segmentation-tool.ts'
import { DEFAULT_SESSION_OPTIONS } from '../annotator/annotation-sessions.ts'
import type { SettingName } from '../config/settings.ts'
import { resolveNodeHome } from '../node/node-identity.ts'
import { createLogger } from '../foundation/log.ts'
import { describeSettings, parseArguments, UsageError } from './arguments.ts'
import { loadCommandConfig, serveUntilSignalled } from './node-command.ts'

export const DEFAULT_ANNOTATOR_PORT = 8005

const ANNOTATOR_SETTINGS: SettingName[] = [
  'port', 'hostname', 'dataFolder', 'loopHost', 'username', 'password', 'organization', 'project', 'sslCertPath',
  'requestTimeoutMs', 'localLoopPort', 'skipRepeatOnStart', 'logLevel',
]

const HELP = `usage: learning-loop-node annotator [flags]

Runs the annotator node: a socket.io client of the Loop that answers the Loop's handle_user_input events
with the built-in box-segmentation tool (drag a box around an object; Shift-drag to add what the outline
missed, drag to remove what it took; Enter or Escape starts over) and stores the outline as a segmentation
annotation. /health, /ready and /metrics on its own port (default ${DEFAULT_ANNOTATOR_PORT}). Without LOOP_HOST it starts
an embedded local loop. Stops gracefully on SIGTERM/SIGINT.

flags (each also an environment variable):
  --name <value>
      node name, sent in its status (default: annotator)
      env: NODE_NAME
  --session-idle-timeout <number>
      seconds after which an unused annotation session is freed (default: ${DEFAULT_SESSION_OPTIONS.idleTimeoutMs / 1000})
      env: ANNOTATOR_SESSION_IDLE_TIMEOUT_SEC
${describeSettings(ANNOTATOR_SETTINGS)}`

function positiveSeconds(name: string, text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${name} must be a positive number of seconds, got ${JSON.stringify(text)}`)
  return value
}

/** `learning-loop-node annotator`: runs until SIGTERM/SIGINT, then exits 0. */
export async function runAnnotatorCommand(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { flags, positionals } = parseArguments(args, { extraFlags: ['name', 'session-idle-timeout'] })
  if (flags.help) {
    console.log(HELP)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (see --help)`)
  const config = loadCommandConfig(env, flags)
  const idleSeconds = positiveSeconds('--session-idle-timeout', flags['session-idle-timeout'] ?? env.ANNOTATOR_SESSION_IDLE_TIMEOUT_SEC)
  const name = flags.name ?? env.NODE_NAME ?? 'annotator'
  const log = createLogger('annotator')
  const { dataFolder, uuid } = await resolveNodeHome({ configured: config.dataFolder, name, log })
  const node = await AnnotatorNode.create({
    name, uuid, config, dataFolder, log,
    port: config.port ?? DEFAULT_ANNOTATOR_PORT, logic: new BoxSegmentationTool(),
    sessionIdleTimeoutMs: idleSeconds === undefined ? undefined : idleSeconds * 1000,
  })
  return serveUntilSignalled(node.runtime, () => node.start(), () => `annotator listening on ${node.runtime.url}`)
}

if (import.meta.main) process.exit(await runAnnotatorCommand(process.argv.slice(2)))
