import type { SettingName } from '../config/settings.ts'
import { DEFAULT_DETECTOR_PORT, DetectorNode } from '../detector/detector-node.ts'
import { describeSettings, parseArguments } from './arguments.ts'
import { loadCommandConfig, serveUntilSignalled } from './node-command.ts'

const DETECTOR_SETTINGS: SettingName[] = [
  'port', 'hostname', 'dataFolder', 'loopHost', 'username', 'password', 'organization', 'project', 'sslCertPath',
  'requestTimeoutMs', 'localLoopPort', 'modelFormat', 'versionControlDefault', 'syncCycles', 'exclusiveModelBuild',
  'minUncertainThreshold', 'maxUncertainThreshold', 'outboxMaxItems', 'outboxMaxBytes', 'inferenceBackend', 'inferenceWorkers', 'inferenceThreads', 'inferenceSpinWait', 'inferenceBatchWindowMs', 'inferenceMaxBatch', 'ortLibDir', 'maxImagePixels',
  'skipRepeatOnStart', 'useBackdoorControls', 'logLevel',
]

const HELP = `usage: learning-loop-node detector [flags]

Runs the detector node: REST and socket.io (/ws/socket.io) on one port (default ${DEFAULT_DETECTOR_PORT}), a status page
at /, the model the Loop deploys (the built-in face model until then), and a crash-safe outbox that uploads
uncertain or novel images. Without LOOP_HOST it starts an embedded local loop in the same process, so
detections, uploads and model versions all work offline. Stops gracefully on SIGTERM/SIGINT.

flags (each also an environment variable):
  --name <value>
      node name: sent in its status, keys its uuid in <data>/uuids.json, and the \`source\` of the images it
      uploads when a client names none (default: detector)
      env: NODE_NAME
${describeSettings(DETECTOR_SETTINGS)}`

/** `learning-loop-node detector`: runs until SIGTERM/SIGINT, then exits 0. */
export async function runDetectorCommand(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { flags: allFlags, positionals } = parseArguments(args, { extraFlags: ['name'] })
  const { name: nameFlag, ...flags } = allFlags
  if (flags.help) {
    console.log(HELP)
    return 0
  }
  if (positionals.length > 0) {
    console.error(`learning-loop-node detector: unexpected argument ${JSON.stringify(positionals[0])} (see --help)`)
    return 2
  }
  const name = nameFlag ?? env.NODE_NAME ?? 'detector'
  const node = await DetectorNode.create({ config: loadCommandConfig(env, flags), name })
  return serveUntilSignalled(node.runtime, () => node.runtime.start(), () => `detector listening on ${node.url}`)
}

if (import.meta.main) process.exit(await runDetectorCommand(process.argv.slice(2)))
