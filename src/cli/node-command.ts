import { loadNodeConfig, type NodeConfig } from '../config/node-config.ts'
import { parseLevel, setLogLevel } from '../foundation/log.ts'
import type { NodeRuntime } from '../node/node-runtime.ts'

/** The node config from env and flags, with its log level applied before anything logs. */
export function loadCommandConfig(env: Record<string, string | undefined>, flags: Record<string, string>): NodeConfig {
  const config = loadNodeConfig(env, flags)
  const level = parseLevel(config.logLevel)
  if (level) setLogLevel(level)
  return config
}

/**
 * Installs the signal handlers, starts the node and prints `readyLine()` on stdout (one plain line that scripts
 * and tests wait for); then runs until SIGTERM/SIGINT ends the process through the graceful shutdown.
 */
export async function serveUntilSignalled(runtime: NodeRuntime, start: () => Promise<unknown>, readyLine: () => string): Promise<never> {
  runtime.installSignalHandlers()
  await start()
  console.log(readyLine())
  return new Promise<never>(() => {})
}
