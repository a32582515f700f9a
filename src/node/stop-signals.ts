import { errorMessage, type Logger } from '../foundation/log.ts'
import { watchNpmLauncher } from './launcher-watch.ts'

/** A second signal this soon after the first is its echo: Ctrl-C under npm reaches the process from the terminal and from npm. */
const SIGNAL_ECHO_MS = 1_000

export interface StopOnSignals {
  /** the graceful stop; the process exits 0 when it resolves, 1 when it rejects */
  stop(reason: string): Promise<void>
  /** the last resort if something in the stop ignores its deadline: exit 1 this long after the first signal */
  hardExitMs(): number
  log: Logger
  exit?: (code: number) => never
}

/**
 * SIGTERM/SIGINT → `stop` → exit, for every long-running command (the nodes, the local loop): a process that waited
 * for its event loop to empty instead could stay alive after its stop (the local loop under Deno did). A second signal
 * exits at once (130), unless it comes within SIGNAL_ECHO_MS of the first. Started by npm (`npx learning-loop-node`),
 * the exit of its parent is a stop request too (launcher-watch.ts).
 */
export function exitOnStopSignals({ stop, hardExitMs, log, exit = process.exit }: StopOnSignals): void {
  let signalledAt: number | undefined
  const begin = (reason: string) => {
    if (signalledAt !== undefined) return
    signalledAt = performance.now()
    const afterMs = hardExitMs()
    setTimeout(() => {
      log.error('shutdown still running; exiting', { afterMs })
      exit(1)
    }, afterMs).unref()
    stop(reason).then(() => exit(0), (error: unknown) => {
      log.error('shutdown failed', { error: errorMessage(error) })
      exit(1)
    })
  }
  const onSignal = (signal: string) => {
    if (signalledAt !== undefined && performance.now() - signalledAt >= SIGNAL_ECHO_MS) exit(130)
    begin(`received ${signal}`)
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGINT', () => onSignal('SIGINT'))
  watchNpmLauncher(() => begin('the npm process that started this node exited'))
}
