import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { LocalLoop } from '../local-loop/index.ts'
import { createLogger, errorMessage, parseLevel, setLogLevel } from '../node/log.ts'
import { parseArguments, UsageError } from './arguments.ts'

/**
 * `learning-loop-node loop …`: runs the embedded local Learning Loop until SIGTERM/SIGINT, or drives a
 * running one through its admin API (`loop admin <subcommand> --url URL`).
 */
export const DEFAULT_LOOP_PORT = 8580

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

const ADMIN_HELP = `usage: learning-loop-node loop admin <subcommand> --url URL [--user U --password PW] [flags]

Drives a running local Loop through its admin API and prints the JSON answer.

subcommands:
  stats                                     request counts, socket handshakes, sessions
  nodes                                     connected nodes
  statuses [--node ID]                      statuses received from nodes
  projects                                  projects with image counts
  create-project --project P [--org O] [--inbox N] [--annotate N] [--review N] [--complete N]
                 [--box N] [--point N] [--segmentation N] [--classification N] [--trainings N]
                 [--tags N] [--box-detections N] [--box-annotations N] [--style plain|beautiful] [--seed N]
  delete-project --org O --project P [--keep-images]
  images --org O --project P [--state inbox|annotate|review|complete|trash]
  models --org O --project P
  upload-model --org O --project P --format F --file MODEL.zip [--training N | --model-id ID] [--comment C]
  set-target --org O --project P (--model-id ID | --version V)
  clear-target --org O --project P
  trainings --org O --project P
  start-training --org O --project P --node NODE [--variant V] [--hyperparameters JSON] [--base-model UUID] [--timeout-ms N]
  stop-training --node NODE [--timeout-ms N]
  abort-training --node NODE [--timeout-ms N]
  restart-node --node NODE
  emit --node NODE --event E [--args JSON_ARRAY] [--timeout-ms N]
  rate-limit (--per-second N [--burst B] | --off)

NODE is a socket id, a node uuid or a node name. --url defaults to http://127.0.0.1:${DEFAULT_LOOP_PORT}.`

const ADMIN_FLAGS = [
  'url', 'user', 'org', 'node', 'state', 'format', 'file', 'training', 'model-id', 'comment', 'version', 'variant',
  'hyperparameters', 'base-model', 'timeout-ms', 'event', 'args', 'per-second', 'burst', 'inbox', 'annotate', 'review',
  'complete', 'box', 'point', 'segmentation', 'classification', 'trainings', 'tags', 'box-detections', 'box-annotations',
  'style', 'seed',
]
const ADMIN_BOOLEANS = ['keep-images', 'off']

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
  await new Promise<void>((done) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
      log.info('stopping local loop', { signal })
      loop.stop().catch((error) => log.error('stopping the local loop failed', { error: errorMessage(error) })).finally(done)
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
  return 0
}

function integerFlag(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) throw new UsageError(`--${name} ${JSON.stringify(text)} is not an integer from ${min} to ${max}`)
  return Number(text)
}

function numberFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} ${JSON.stringify(text)} is not a positive number`)
  return value
}

function jsonFlag(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--${name} is not valid JSON: ${errorMessage(error)}`)
  }
}

interface AdminCall {
  method: string
  path: string
  body?: unknown
  bytes?: Uint8Array
}

async function runAdminCommand(args: string[]): Promise<number> {
  const { positionals, flags } = parseArguments(args, { extraFlags: ADMIN_FLAGS, booleanFlags: ADMIN_BOOLEANS })
  const [subcommand, ...rest] = positionals
  if (flags.help === 'true' || subcommand === undefined || subcommand === 'help') {
    console.log(ADMIN_HELP)
    return subcommand === undefined && flags.help !== 'true' ? 2 : 0
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`)
  const call = await adminCallFor(subcommand, flags)
  const base = (flags.url ?? `http://127.0.0.1:${DEFAULT_LOOP_PORT}`).replace(/\/+$/, '')
  const headers: Record<string, string> = {}
  const username = flags.user ?? flags.username
  if (username !== undefined || flags.password !== undefined) headers.authorization = `Basic ${btoa(`${username ?? ''}:${flags.password ?? ''}`)}`
  let body: BodyInit | undefined
  if (call.bytes) {
    headers['content-type'] = 'application/zip'
    body = call.bytes as Uint8Array<ArrayBuffer>
  } else if (call.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(call.body)
  }
  let response: Response
  try {
    response = await fetch(base + call.path, { method: call.method, headers, body })
  } catch (error) {
    console.error(`cannot reach the local loop at ${base}: ${errorMessage(error)}`)
    return 1
  }
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // not JSON: print as is
  }
  if (!response.ok) {
    const detail = typeof parsed === 'object' && parsed !== null && 'detail' in parsed ? String((parsed as { detail: unknown }).detail) : text
    console.error(`${call.method} ${call.path} failed with ${response.status}: ${detail}`)
    return 1
  }
  console.log(typeof parsed === 'string' ? parsed : JSON.stringify(parsed, null, 2))
  return 0
}

function required(flags: Record<string, string>, name: string, alias?: string): string {
  const value = flags[name] ?? (alias ? flags[alias] : undefined)
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`)
  return value
}

const segment = encodeURIComponent

async function adminCallFor(subcommand: string, flags: Record<string, string>): Promise<AdminCall> {
  const project = () => `/admin/projects/${segment(required(flags, 'org', 'organization'))}/${segment(required(flags, 'project'))}`
  const node = () => `/admin/nodes/${segment(required(flags, 'node'))}`
  const timeoutMs = () => integerFlag('timeout-ms', flags['timeout-ms'], 1, 86_400_000)
  const count = (name: string) => integerFlag(name, flags[name], 0, 100_000)
  switch (subcommand) {
    case 'stats': return { method: 'GET', path: '/admin/stats' }
    case 'nodes': return { method: 'GET', path: '/admin/nodes' }
    case 'statuses': return { method: 'GET', path: `/admin/nodes/statuses${flags.node ? `?node=${segment(flags.node)}` : ''}` }
    case 'projects': return { method: 'GET', path: '/admin/projects' }
    case 'create-project':
      return {
        method: 'POST', path: '/admin/projects',
        body: {
          organization: flags.org ?? flags.organization ?? 'local', project_name: required(flags, 'project'),
          inbox: count('inbox'), annotate: count('annotate'), review: count('review'), complete: count('complete'),
          box_categories: count('box'), point_categories: count('point'), segmentation_categories: count('segmentation'),
          classification_categories: count('classification'), trainings: count('trainings'), tags: count('tags'),
          box_detections: count('box-detections'), box_annotations: count('box-annotations'),
          image_style: flags.style, seed: integerFlag('seed', flags.seed, 0, 2 ** 31 - 1),
        },
      }
    case 'delete-project': return { method: 'DELETE', path: `${project()}${flags['keep-images'] === 'true' ? '?keep_images=true' : ''}` }
    case 'images': return { method: 'GET', path: `${project()}/images${flags.state ? `?state=${segment(flags.state)}` : ''}` }
    case 'models': return { method: 'GET', path: `${project()}/models` }
    case 'upload-model': {
      const file = required(flags, 'file')
      const bytes = new Uint8Array(await readFile(file).catch((error) => { throw new UsageError(`cannot read --file ${file}: ${errorMessage(error)}`) }))
      const query = new URLSearchParams({ format: required(flags, 'format') })
      if (flags.training) query.set('training', String(integerFlag('training', flags.training, 0, 1_000_000_000)))
      if (flags['model-id']) query.set('model_id', flags['model-id'])
      if (flags.comment) query.set('comment', flags.comment)
      return { method: 'POST', path: `${project()}/models?${query}`, bytes }
    }
    case 'set-target': {
      if (!flags['model-id'] && !flags.version) throw new UsageError('set-target needs --model-id or --version')
      return { method: 'PUT', path: `${project()}/deployment-target`, body: { model_id: flags['model-id'], version: flags.version } }
    }
    case 'clear-target': return { method: 'DELETE', path: `${project()}/deployment-target` }
    case 'trainings': return { method: 'GET', path: `${project()}/trainings` }
    case 'start-training':
      return {
        method: 'POST', path: `${project()}/trainings`,
        body: {
          node: required(flags, 'node'), model_variant: flags.variant, hyperparameters: jsonFlag('hyperparameters', flags.hyperparameters),
          base_model_uuid: flags['base-model'], timeout_ms: timeoutMs(),
        },
      }
    case 'stop-training': return { method: 'POST', path: `${node()}/emit`, body: { event: 'stop_training', timeout_ms: timeoutMs() } }
    case 'abort-training': return { method: 'POST', path: `${node()}/emit`, body: { event: 'abort_training', timeout_ms: timeoutMs() } }
    case 'restart-node': return { method: 'POST', path: `${node()}/restart` }
    case 'emit': {
      const args = jsonFlag('args', flags.args) ?? []
      if (!Array.isArray(args)) throw new UsageError('--args must be a JSON array of the event arguments')
      return { method: 'POST', path: `${node()}/emit`, body: { event: required(flags, 'event'), args, timeout_ms: timeoutMs() } }
    }
    case 'rate-limit': {
      if (flags.off === 'true') return { method: 'PUT', path: '/admin/rate-limit', body: { per_second: null } }
      return { method: 'PUT', path: '/admin/rate-limit', body: { per_second: numberFlag('per-second', required(flags, 'per-second')), burst: integerFlag('burst', flags.burst, 1, 1_000_000) } }
    }
    default:
      throw new UsageError(`unknown admin subcommand ${JSON.stringify(subcommand)}; see loop admin --help`)
  }
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
  process.exit(code)
}
