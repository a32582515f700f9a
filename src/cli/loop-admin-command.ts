import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { resolveLoopUrls } from '../config/loop-url.ts'
import { errorMessage } from '../foundation/log.ts'
import { integerFlag, jsonFlag, numberFlag, parseArguments, UsageError } from './arguments.ts'

/**
 * `learning-loop-node loop admin <subcommand>`: drives a running local Loop through its admin API
 * (src/local-loop/admin-routes.ts) and prints the JSON answer. Each subcommand has its own `--help`.
 */
export const DEFAULT_LOOP_PORT = 8580
const DEFAULT_URL = `http://127.0.0.1:${DEFAULT_LOOP_PORT}`
const DEFAULT_ORG = 'local'
const DEFAULT_PROJECT = 'demo'
/** how often `start-training --wait` asks for the training's outcome */
const WAIT_POLL_MS = 500

type Flags = Record<string, string>

interface AdminCall {
  method: string
  path: string
  body?: unknown
  bytes?: Uint8Array
}

interface Subcommand {
  /** flags after the subcommand name */
  usage: string
  summary: string
  /** what it does in detail, its defaults and what it prints */
  details: string
  call(flags: Flags): AdminCall | Promise<AdminCall>
}

const segment = encodeURIComponent

function required(flags: Flags, name: string, alias?: string): string {
  const value = flags[name] ?? (alias ? flags[alias] : undefined)
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`)
  return value
}

/** `/admin/projects/<org>/<project>`; the seeded local/demo project unless `--org`/`--project` say otherwise. */
function projectPath(flags: Flags, options: { defaults: boolean } = { defaults: true }): string {
  const org = options.defaults ? flags.org ?? flags.organization ?? DEFAULT_ORG : required(flags, 'org', 'organization')
  const project = options.defaults ? flags.project ?? DEFAULT_PROJECT : required(flags, 'project')
  return `/admin/projects/${segment(org)}/${segment(project)}`
}

const nodePath = (flags: Flags) => `/admin/nodes/${segment(required(flags, 'node'))}`
const timeoutMs = (flags: Flags) => integerFlag('timeout-ms', flags['timeout-ms'], 1, 86_400_000)
const count = (flags: Flags, name: string) => integerFlag(name, flags[name], 0, 100_000)

const PROJECT_FLAGS = `[--org O] [--project P]`
const PROJECT_NOTE = `--org and --project default to ${DEFAULT_ORG} and ${DEFAULT_PROJECT} (the project a local loop seeds on its first start).`

const SUBCOMMANDS = new Map<string, Subcommand>([
  ['stats', {
    usage: '', summary: 'request counts, socket handshakes, sessions',
    details: 'Prints {requests, sockets, sessions, rate_limit}: HTTP requests by route and status, socket.io handshakes, live sessions.',
    call: () => ({ method: 'GET', path: '/admin/stats' }),
  }],
  ['nodes', {
    usage: '', summary: 'connected nodes',
    details: 'Prints {nodes: [...]}: every node connected over socket.io (sid, nodeType, organization, project, node uuid,\nname, its last status), newest first.',
    call: () => ({ method: 'GET', path: '/admin/nodes' }),
  }],
  ['statuses', {
    usage: '[--node ID]', summary: 'statuses received from nodes',
    details: 'Prints {statuses: [...]}: the update_trainer / update_annotation_node statuses received, oldest first; --node\nkeeps those of one node (uuid).',
    call: (flags) => ({ method: 'GET', path: `/admin/nodes/statuses${flags.node ? `?node=${segment(flags.node)}` : ''}` }),
  }],
  ['projects', {
    usage: '', summary: 'projects with image counts',
    details: 'Prints {projects: [{organization, project, counts, categories, models}]}.',
    call: () => ({ method: 'GET', path: '/admin/projects' }),
  }],
  ['create-project', {
    usage: '--project P [--org O] [--inbox N] [--annotate N] [--review N] [--complete N] [--box N] [--point N]\n    [--segmentation N] [--classification N] [--trainings N] [--tags N] [--box-detections N] [--box-annotations N]\n    [--style plain|beautiful] [--seed N]',
    summary: 'generate a project with synthetic images',
    details: `Creates project P in organization O (default ${DEFAULT_ORG}) like the Loop's project generator: N synthetic
images per state (default 0), N categories per kind (default 0), N trainings with a model each, N tags, and box
detections/annotations per image. --seed makes the images repeatable. Prints the generated project: categories,
image ids per state, trainings and models. A project that exists already is refused (409): delete-project it first.`,
    call: (flags) => ({
      method: 'POST', path: '/admin/projects',
      body: {
        organization: flags.org ?? flags.organization ?? DEFAULT_ORG, project_name: required(flags, 'project'),
        inbox: count(flags, 'inbox'), annotate: count(flags, 'annotate'), review: count(flags, 'review'), complete: count(flags, 'complete'),
        box_categories: count(flags, 'box'), point_categories: count(flags, 'point'), segmentation_categories: count(flags, 'segmentation'),
        classification_categories: count(flags, 'classification'), trainings: count(flags, 'trainings'), tags: count(flags, 'tags'),
        box_detections: count(flags, 'box-detections'), box_annotations: count(flags, 'box-annotations'),
        image_style: flags.style, seed: integerFlag('seed', flags.seed, 0, 2 ** 31 - 1),
      },
    }),
  }],
  ['delete-project', {
    usage: '--org O --project P [--keep-images]', summary: 'delete a project and everything in it',
    details: 'Deletes the project, its images, models and trainings (both flags are required here: no defaults). With\n--keep-images the image files are moved to <data>/kept-images/ instead. Prints {deleted, keep_images}.',
    call: (flags) => ({ method: 'DELETE', path: `${projectPath(flags, { defaults: false })}${flags['keep-images'] === 'true' ? '?keep_images=true' : ''}` }),
  }],
  ['images', {
    usage: `${PROJECT_FLAGS} [--state inbox|annotate|review|complete|trash]`, summary: 'images with tags, annotations, detections',
    details: `Prints {images: [{id, file_name, state, set, tags, width, height, created, source, counts …}]}, oldest first.
Ids are the Loop's (uuids); file_name is the name the uploader gave the image. ${PROJECT_NOTE}`,
    call: (flags) => ({ method: 'GET', path: `${projectPath(flags)}/images${flags.state ? `?state=${segment(flags.state)}` : ''}` }),
  }],
  ['models', {
    usage: PROJECT_FLAGS, summary: 'models and their formats',
    details: `Prints {models: [{id, version, formats, training_number, created, comment}]}. ${PROJECT_NOTE}`,
    call: (flags) => ({ method: 'GET', path: `${projectPath(flags)}/models` }),
  }],
  ['upload-model', {
    usage: `${PROJECT_FLAGS} --format F --file MODEL.zip [--training N | --model-id ID] [--comment C]`, summary: 'store a model zip',
    details: `Stores the files of MODEL.zip (flat; model.json among them) as format F: of a new model of training N (default: the
newest training, or a new one), or as another format of model ID. The model.json is rewritten as the Loop does
(id, version, organization, project, format). Prints {id, version, formats, training_number}. ${PROJECT_NOTE}`,
    call: async (flags) => {
      const file = required(flags, 'file')
      const bytes = new Uint8Array(await readFile(file).catch((error) => { throw new UsageError(`cannot read --file ${file}: ${errorMessage(error)}`) }))
      const query = new URLSearchParams({ format: required(flags, 'format') })
      if (flags.training) query.set('training', String(integerFlag('training', flags.training, 0, 1_000_000_000)))
      if (flags['model-id']) query.set('model_id', flags['model-id'])
      if (flags.comment) query.set('comment', flags.comment)
      return { method: 'POST', path: `${projectPath(flags)}/models?${query}`, bytes }
    },
  }],
  ['set-target', {
    usage: `${PROJECT_FLAGS} (--model-id ID | --version V)`, summary: 'deploy a model to the detectors',
    details: `Sets the deployment target that detectors in follow_loop mode switch to. Prints {model_uuid, version}. ${PROJECT_NOTE}`,
    call: (flags) => {
      if (!flags['model-id'] && !flags.version) throw new UsageError('set-target needs --model-id or --version')
      return { method: 'PUT', path: `${projectPath(flags)}/deployment-target`, body: { model_id: flags['model-id'], version: flags.version } }
    },
  }],
  ['clear-target', {
    usage: PROJECT_FLAGS, summary: 'remove the deployment target',
    details: `Detectors keep the model they have. Prints {cleared: true}. ${PROJECT_NOTE}`,
    call: (flags) => ({ method: 'DELETE', path: `${projectPath(flags)}/deployment-target` }),
  }],
  ['trainings', {
    usage: PROJECT_FLAGS, summary: 'trainings with state, outcome and models',
    details: `Prints {trainings: [...], charts}: per training its number, id, state (the trainer's last), outcome (completed,
stopped, aborted, failed; null while it runs), error (why it failed), hyperparameters and models. ${PROJECT_NOTE}`,
    call: (flags) => ({ method: 'GET', path: `${projectPath(flags)}/trainings` }),
  }],
  ['start-training', {
    usage: `${PROJECT_FLAGS} --node NODE [--variant V] [--hyperparameters JSON] [--base-model UUID] [--timeout-ms N]\n    [--wait [--deploy]]`,
    summary: 'begin a training on a trainer node',
    details: `Creates the next training of the project and sends begin_training to NODE (variant default '', hyperparameters
default {}, no base model: from scratch); waits --timeout-ms for the trainer's answer (default: the loop's, 10000). Prints
{training, ack}. With --wait it then waits until the training has ended, printing its state as it changes on
stderr, and prints the training (exit status 1 unless it completed); with --deploy as well, the new model becomes
the deployment target. ${PROJECT_NOTE}`,
    call: (flags) => ({
      method: 'POST', path: `${projectPath(flags)}/trainings`,
      body: {
        node: required(flags, 'node'), model_variant: flags.variant, hyperparameters: jsonFlag('hyperparameters', flags.hyperparameters),
        base_model_uuid: flags['base-model'], timeout_ms: timeoutMs(flags),
      },
    }),
  }],
  ['stop-training', {
    usage: '--node NODE [--timeout-ms N]', summary: 'end the training gracefully (the model is kept)',
    details: 'Sends stop_training: the training process ends, its model is still uploaded. Prints {ack}.',
    call: (flags) => ({ method: 'POST', path: `${nodePath(flags)}/emit`, body: { event: 'stop_training', timeout_ms: timeoutMs(flags) } }),
  }],
  ['abort-training', {
    usage: '--node NODE [--timeout-ms N]', summary: 'cancel the training (nothing is uploaded)',
    details: 'Sends abort_training. Prints {ack}.',
    call: (flags) => ({ method: 'POST', path: `${nodePath(flags)}/emit`, body: { event: 'abort_training', timeout_ms: timeoutMs(flags) } }),
  }],
  ['restart-node', {
    usage: '--node NODE', summary: 'ask a node to restart',
    details: 'Sends restart (the node exits with status 0 for its supervisor to start it again). Prints {sent: true}.',
    call: (flags) => ({ method: 'POST', path: `${nodePath(flags)}/restart` }),
  }],
  ['emit', {
    usage: '--node NODE --event E [--args JSON_ARRAY] [--timeout-ms N]', summary: 'send any socket.io event',
    details: 'Sends event E with the arguments of --args (default []) and prints {ack}: the node\'s answer.',
    call: (flags) => {
      const args = jsonFlag('args', flags.args) ?? []
      if (!Array.isArray(args)) throw new UsageError('--args must be a JSON array of the event arguments')
      return { method: 'POST', path: `${nodePath(flags)}/emit`, body: { event: required(flags, 'event'), args, timeout_ms: timeoutMs(flags) } }
    },
  }],
  ['rate-limit', {
    usage: '(--per-second N [--burst B] | --off)', summary: 'throttle /api (429 with Retry-After)',
    details: 'Limits every client to N requests per second on /api (burst B, default max(1, N)); --off removes the limit.\nPrints {rate_limit}.',
    call: (flags) => {
      if (flags.off === 'true') return { method: 'PUT', path: '/admin/rate-limit', body: { per_second: null } }
      return { method: 'PUT', path: '/admin/rate-limit', body: { per_second: numberFlag('per-second', required(flags, 'per-second')), burst: integerFlag('burst', flags.burst, 1, 1_000_000) } }
    },
  }],
])

const COMMON = `common flags:
  --url URL               the local loop (default: $LOOP_HOST when set, else ${DEFAULT_URL})
  --user U --password PW  needed when the loop was started with --user/--password (HTTP Basic)`

export const ADMIN_HELP = `usage: learning-loop-node loop admin <subcommand> [flags]     (loop admin <subcommand> --help)

Drives a running local Loop through its admin API and prints the JSON answer (exit status 1 and the reason on
stderr when the loop refuses).

subcommands:
${[...SUBCOMMANDS].map(([name, s]) => `  ${name.padEnd(16)}${s.summary}`).join('\n')}

${COMMON}

NODE is a socket id, a node uuid or a node name (a trainer started without --name is "trainer").`

function subcommandHelp(name: string, subcommand: Subcommand): string {
  const summary = subcommand.summary[0]!.toUpperCase() + subcommand.summary.slice(1)
  return `usage: learning-loop-node loop admin ${name} ${subcommand.usage}\n\n${summary}.\n${subcommand.details}\n\n${COMMON}`
}

const ADMIN_FLAGS = [
  'url', 'user', 'org', 'project', 'node', 'state', 'format', 'file', 'training', 'model-id', 'comment', 'version', 'variant',
  'hyperparameters', 'base-model', 'timeout-ms', 'event', 'args', 'per-second', 'burst', 'inbox', 'annotate', 'review',
  'complete', 'box', 'point', 'segmentation', 'classification', 'trainings', 'tags', 'box-detections', 'box-annotations',
  'style', 'seed',
]
const ADMIN_BOOLEANS = ['keep-images', 'off', 'wait', 'deploy']

class AdminClient {
  private readonly headers: Record<string, string> = {}
  readonly base: string

  constructor(flags: Flags, env: Record<string, string | undefined>) {
    this.base = (flags.url ?? (env.LOOP_HOST ? resolveLoopUrls(env.LOOP_HOST).base : DEFAULT_URL)).replace(/\/+$/, '')
    const username = flags.user ?? flags.username
    if (username !== undefined || flags.password !== undefined) this.headers.authorization = `Basic ${btoa(`${username ?? ''}:${flags.password ?? ''}`)}`
  }

  /** The parsed answer; throws AdminFailure (printed, exit 1) when the loop cannot be reached or refuses. */
  async send(call: AdminCall): Promise<unknown> {
    const headers = { ...this.headers }
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
      response = await fetch(this.base + call.path, { method: call.method, headers, body })
    } catch (error) {
      throw new AdminFailure(`cannot reach the local loop at ${this.base}: ${errorMessage(error)}`)
    }
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON: kept as text
    }
    if (!response.ok) {
      const detail = typeof parsed === 'object' && parsed !== null && 'detail' in parsed ? String((parsed as { detail: unknown }).detail) : text
      throw new AdminFailure(`${call.method} ${call.path} failed with ${response.status}: ${detail}`)
    }
    return parsed
  }
}

class AdminFailure extends Error {}

interface TrainingView {
  number: number
  state: string
  outcome: string | null
  error: string | null
  models: { id: string; version: string }[]
}

/** `start-training --wait [--deploy]`: follows the training until the Loop knows its outcome. */
async function waitForTraining(client: AdminClient, flags: Flags, started: TrainingView): Promise<number> {
  const project = projectPath(flags)
  let lastState = ''
  for (;;) {
    const { trainings } = (await client.send({ method: 'GET', path: `${project}/trainings` })) as { trainings: TrainingView[] }
    const training = trainings.find((t) => t.number === started.number)
    if (!training) throw new AdminFailure(`training ${started.number} is gone from the project`)
    if (training.state !== lastState) process.stderr.write(`training ${training.number}: ${training.state}\n`)
    lastState = training.state
    if (training.outcome !== null) {
      let deployed: unknown = null
      const model = training.models.at(-1)
      if (flags.deploy === 'true' && training.outcome === 'completed' && model) {
        deployed = await client.send({ method: 'PUT', path: `${project}/deployment-target`, body: { model_id: model.id } })
      }
      console.log(JSON.stringify({ training, ...(flags.deploy === 'true' ? { deployed } : {}) }, null, 2))
      if (training.outcome !== 'completed') process.stderr.write(`training ${training.number} ${training.outcome}${training.error ? `: ${training.error}` : ''}\n`)
      return training.outcome === 'completed' ? 0 : 1
    }
    await sleep(WAIT_POLL_MS)
  }
}

export async function runAdminCommand(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { positionals, flags } = parseArguments(args, { extraFlags: ADMIN_FLAGS, booleanFlags: ADMIN_BOOLEANS })
  const [name, ...rest] = positionals
  if (name === undefined || name === 'help') {
    console.log(ADMIN_HELP)
    return name === undefined && flags.help !== 'true' ? 2 : 0
  }
  const subcommand = SUBCOMMANDS.get(name)
  if (!subcommand) throw new UsageError(`unknown admin subcommand ${JSON.stringify(name)}; see loop admin --help`)
  if (flags.help === 'true') {
    console.log(subcommandHelp(name, subcommand))
    return 0
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`)
  if ((flags.wait || flags.deploy) && name !== 'start-training') throw new UsageError('--wait and --deploy belong to start-training')
  if (flags.deploy && !flags.wait) throw new UsageError('--deploy needs --wait (the model exists once the training has completed)')
  const client = new AdminClient(flags, env)
  try {
    const answer = await client.send(await subcommand.call(flags))
    if (flags.wait === 'true') {
      const { training, ack } = answer as { training: TrainingView; ack: { success?: boolean; error_msg?: string } | null }
      if (ack?.success !== true) throw new AdminFailure(`the trainer refused the training: ${ack?.error_msg ?? JSON.stringify(ack)}`)
      return await waitForTraining(client, flags, training)
    }
    console.log(typeof answer === 'string' ? answer : JSON.stringify(answer, null, 2))
    return 0
  } catch (error) {
    if (!(error instanceof AdminFailure)) throw error
    console.error(error.message)
    return 1
  }
}
