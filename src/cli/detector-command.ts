import { loadNodeConfig } from '../config/node-config.ts'
import type { SettingName } from '../config/settings.ts'
import { DEFAULT_DETECTOR_PORT, DetectorNode } from '../detector/detector-node.ts'
import { parseLevel, setLogLevel } from '../node/log.ts'
import { describeSettings, parseArguments } from './arguments.ts'

const DETECTOR_SETTINGS: SettingName[] = [
  'port', 'hostname', 'dataFolder', 'loopHost', 'username', 'password', 'organization', 'project', 'sslCertPath',
  'requestTimeoutMs', 'localLoopPort', 'modelFormat', 'versionControlDefault', 'syncCycles', 'exclusiveModelBuild',
  'minUncertainThreshold', 'maxUncertainThreshold', 'inferenceBackend', 'inferenceThreads', 'inferenceSpinWait', 'ortLibDir',
  'skipRepeatOnStart', 'useBackdoorControls', 'logLevel',
]

const HELP = `usage: learning-loop-node detector [flags]

Runs the detector node: REST and socket.io (/ws/socket.io) on one port (default ${DEFAULT_DETECTOR_PORT}), a status page
at /, the model the Loop deploys (the built-in face model until then), and a crash-safe outbox that uploads
uncertain or novel images. Without LOOP_HOST it starts an embedded local loop in the same process, so
detections, uploads and model versions all work offline. Stops gracefully on SIGTERM/SIGINT.

flags (each also an environment variable):
${describeSettings(DETECTOR_SETTINGS)}`

/** `learning-loop-node detector`: runs until SIGTERM/SIGINT, then exits 0. */
export async function runDetectorCommand(args: string[]): Promise<number> {
  const { flags, positionals } = parseArguments(args)
  if (flags.help) {
    console.log(HELP)
    return 0
  }
  if (positionals.length > 0) {
    console.error(`learning-loop-node detector: unexpected argument ${JSON.stringify(positionals[0])} (see --help)`)
    return 2
  }
  const config = loadNodeConfig(process.env, flags)
  const level = parseLevel(config.logLevel)
  if (level) setLogLevel(level)
  const node = await DetectorNode.create({ config })
  node.runtime.installSignalHandlers()
  await node.runtime.start()
  console.log(`detector listening on ${node.url}`)
  // keeps running: the signal handlers end the process
  await new Promise(() => {})
  return 0
}

if (import.meta.main) process.exit(await runDetectorCommand(process.argv.slice(2)))
