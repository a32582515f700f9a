import { resolve } from 'node:path'
import { LocalLoop } from '../local-loop/local-loop.ts'
import { exitOnStopSignals } from '../node/stop-signals.ts'
import { createLogger, parseLevel, setLogLevel } from '../foundation/log.ts'
import { integerFlag, numberFlag, parseArguments, UsageError } from './arguments.ts'
import { DEFAULT_LOOP_PORT, runAdminCommand } from './loop-admin-command.ts'

/**
 * `learning-loop-node loop …`: runs the embedded local Learning Loop until SIGTERM/SIGINT, or drives a
 * running one through its admin API (`loop admin <subcommand>`, loop-admin-command.ts).
 */
const SERVER_HELP = `usage: learning-loop-node loop [flags]
       learning-loop-node loop admin <subcommand> [flags]   (loop admin --help)

Runs an embedded Learning Loop: the node-facing REST API (/api) and socket.io (/ws/socket.io) on one
port, an admin API (/admin) and /metrics, persisted in the data folder. Stops on SIGTERM/SIGINT.

flags:
  --port <integer>       port to listen on (default ${DEFAULT_LOOP_PORT}; 0 picks a free one)       env: PORT
  --bind <address>       address to listen on (default 127.0.0.1)                         env: BIND_HOST
  --data <folder>        data folder (default: $DATA_FOLDER/local-loop, else ./data/local-loop)
  --user <name>          the only username that may log in (with --password); unset: any credentials log in
  --password <secret>    its password
  --rate-limit <n>       requests per second per client on /api; over it: 429 with Retry-After (default: off)
  --rate-burst <n>       requests a client may send at once (default: max(1, rate-limit))
  --max-upload-mb <n>    largest upload body in MiB (default 256); larger: 413
  --no-seed              do not create the local/demo project on first start
  --log-level <level>    debug | info | warn | error (default info)              env: LOG_LEVEL`

/** how long a stop may take before the process exits anyway (the loop's own stop gives up after 2 s) */
const HARD_EXIT_MS = 5_000

export async function runLoopCommand(args: string[]): Promise<number> {
  if (args[0] === 'admin') return runAdminCommand(args.slice(1))
  const { positionals, flags } = parseArguments(args, { extraFlags: ['user', 'rate-limit', 'rate-burst', 'max-upload-mb'], booleanFlags: ['no-seed'] })
  if (flags.help === 'true') {
    console.log(SERVER_HELP)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (subcommands: admin)`)
  const level = parseLevel(flags['log-level'] ?? process.env.LOG_LEVEL)
  if (flags['log-level'] !== undefined && !level) throw new UsageError(`--log-level ${JSON.stringify(flags['log-level'])} is not one of debug, info, warn, error`)
  if (level) setLogLevel(level)
  const port = integerFlag('port', flags.port ?? process.env.PORT, 0, 65535) ?? DEFAULT_LOOP_PORT
  const rateLimit = numberFlag('rate-limit', flags['rate-limit'])
  const rateBurst = integerFlag('rate-burst', flags['rate-burst'], 1, 1_000_000)
  const maxUploadMb = numberFlag('max-upload-mb', flags['max-upload-mb'])
  const username = flags.user ?? flags.username
  const password = flags.password
  if ((username === undefined) !== (password === undefined)) throw new UsageError('give --user and --password together (or neither: any credentials log in)')
  const dataFolder = resolve(flags.data ?? (process.env.DATA_FOLDER ? `${process.env.DATA_FOLDER}/local-loop` : './data/local-loop'))
  const loop = await LocalLoop.start({
    dataFolder, port, hostname: flags.bind ?? process.env.BIND_HOST ?? '127.0.0.1', username, password,
    rateLimit: rateLimit === undefined ? undefined : { perSecond: rateLimit, burst: rateBurst },
    maxUploadBytes: maxUploadMb === undefined ? undefined : Math.floor(maxUploadMb * 1024 * 1024),
    seedProject: flags['no-seed'] === 'true' ? false : undefined,
  })
  // one plain line on stdout, so scripts and tests can wait for readiness and read the port
  console.log(`local loop listening on ${loop.url} (data: ${loop.dataFolder})`)
  const log = createLogger('loop-command')
  exitOnStopSignals({
    stop: async (reason) => {
      log.info('stopping local loop', { reason })
      await loop.stop()
    },
    hardExitMs: () => HARD_EXIT_MS, log,
  })
  return 0
}

if (import.meta.main) {
  let code: number
  try {
    code = await runLoopCommand(process.argv.slice(2))
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    console.error(`learning-loop-node loop: ${error.message}`)
    code = 2
  }
  // the running loop keeps the process alive and exits on signals (stop-signals.ts)
  if (code !== 0) process.exit(code)
}
