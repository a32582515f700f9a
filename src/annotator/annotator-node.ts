/**
 * The annotator node (§10): a socket.io client of the Loop that serves interactive annotation. The Loop
 * forwards each user's mouse and key events as `handle_user_input`; the node keeps one history per
 * frontend, makes sure the photo is on disk, lets the tool answer with an SVG overlay and forwards the
 * tool's shape with `update_segmentation_annotation`. Every repeat cycle it reports its status
 * (`update_annotation_node`) and drops idle sessions.
 */
import { join } from 'node:path'
import { stat } from 'node:fs/promises'
import {
  ANNOTATION_EVENT_TYPES, ContractError, UserInput, decode, imageFileName, isOneOf, socketFailure, type AnnotationNodeStatus, type SocketResponse,
  type UserInput as UserInputType,
} from '../contract/index.ts'
import type { NodeConfig } from '../config/node-config.ts'
import { DataExchange } from '../loop/data-exchange.ts'
import { LoopSocketError } from '../loop/loop-error.ts'
import { ImageInputError } from '../inference/inference-errors.ts'
import { LoopConnection } from '../node/loop-connection.ts'
import { LocalLoop } from '../local-loop/local-loop.ts'
import { createLogger, errorMessage, quoteInput, type Logger } from '../foundation/log.ts'
import { NodeRuntime } from '../node/node-runtime.ts'
import { AnnotationSessions, DEFAULT_SESSION_OPTIONS } from './annotation-sessions.ts'
import { AnnotationToolError, type AnnotatorLogic } from './annotator-logic.ts'
import { LoopNode } from '../node/loop-node.ts'

export const ANNOTATOR_NODE_TYPE = 'annotation_node'
/** Upstream hard-codes the segmentation use case (§10). */
export const ANNOTATOR_CAPABILITIES = ['segmentation']
const STATUS_TIMEOUT_MS = 10_000
const ANNOTATION_TIMEOUT_MS = 30_000

export interface AnnotatorNodeOptions {
  name: string
  uuid: string
  config: NodeConfig
  /** resolved data folder: images go to `<data>/<org>/<project>/images/` */
  dataFolder: string
  logic: AnnotatorLogic<any>
  port?: number
  hostname?: string
  repeatIntervalMs?: number
  sessionIdleTimeoutMs?: number
  maxSessions?: number
  log?: Logger
}

/** A user input the node refuses before the tool sees it (bad names, image not available). */
export class AnnotatorRequestError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'AnnotatorRequestError'
  }
}

/** Errors that are the user's input or data, answered with a failure ack and an info line (not an error line). */
function isUserFacing(error: unknown): boolean {
  return error instanceof ContractError || error instanceof AnnotationToolError || error instanceof AnnotatorRequestError || error instanceof ImageInputError
}

const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$/

export class AnnotatorNode extends LoopNode {
  readonly runtime: NodeRuntime
  readonly sessions: AnnotationSessions<unknown>
  private readonly log: Logger
  private readonly queues = new Map<string, Promise<unknown>>()
  private readonly metrics

  private constructor(private readonly options: AnnotatorNodeOptions) {
    super()
    this.log = options.log ?? createLogger('annotator')
    this.runtime = new NodeRuntime({
      name: options.name, uuid: options.uuid, nodeType: ANNOTATOR_NODE_TYPE, port: options.port ?? options.config.port ?? 0,
      hostname: options.hostname ?? options.config.hostname, repeatIntervalMs: options.repeatIntervalMs,
      skipRepeatOnStart: options.config.skipRepeatOnStart, capabilities: [...ANNOTATOR_CAPABILITIES], log: this.log,
    })
    this.sessions = new AnnotationSessions(() => options.logic.createEmptyHistory(), {
      idleTimeoutMs: options.sessionIdleTimeoutMs ?? DEFAULT_SESSION_OPTIONS.idleTimeoutMs,
      maxSessions: options.maxSessions ?? DEFAULT_SESSION_OPTIONS.maxSessions,
    })
    const m = this.runtime.metrics
    this.metrics = {
      inputs: m.counter('annotator_user_inputs_total', 'handle_user_input events by event type and result'),
      inputSeconds: m.histogram('annotator_user_input_seconds', 'time to answer one handle_user_input, by event type (left_mouse_up runs the segmentation)'),
      annotations: m.counter('annotator_segmentation_annotations_total', 'update_segmentation_annotation calls to the Loop by result'),
      statuses: m.counter('annotator_status_updates_total', 'update_annotation_node heartbeats by result'),
      images: m.counter('annotator_image_downloads_total', 'photos needed by annotation: cached, downloaded or failed'),
      sessionsClosed: m.counter('annotator_sessions_closed_total', 'annotation sessions freed, by reason'),
    }
    const sessions = m.gauge('annotator_sessions', 'open annotation sessions (one history per frontend)')
    sessions.collect(() => sessions.set(this.sessions.size))
  }

  /** Opens the Loop connection (an embedded local loop when LOOP_HOST is unset) and builds the node. */
  static async create(options: AnnotatorNodeOptions): Promise<AnnotatorNode> {
    const node = new AnnotatorNode({ ...options, log: options.log ?? createLogger('annotator') })
    node.connect(await LoopConnection.open({
      config: options.config, dataFolder: options.dataFolder, nodeType: ANNOTATOR_NODE_TYPE, socket: true, log: node.log, metrics: node.runtime.metrics,
      startEmbeddedLoop: (loopOptions) => LocalLoop.start(loopOptions),
    }))
    return node
  }

  private connect(connection: LoopConnection): void {
    const { options } = this
    this.loopConnection = connection
    connection.on('handle_user_input', (raw: unknown) => this.runtime.track(this.handleUserInput(raw)))
    connection.on('user_logout', (sid: unknown) => this.runtime.track(this.userLogout(sid)))
    connection.onConnect(() => void this.sendStatus())
    this.runtime.setHooks({
      onStartup: async () => connection.connect(),
      onRepeat: () => this.repeat(),
      onShutdown: async () => {
        await connection.close()
        await options.logic.dispose?.()
      },
      onLoopConnectionToggle: async (on) => {
        if (on) connection.connect()
        else await connection.disconnect()
      },
      notReadyReason: () => (connection.connected ? undefined : 'not connected to the Loop'),
    })
  }

  /** AnnotationNodeStatus as sent every cycle. */
  status(): AnnotationNodeStatus {
    const status = this.runtime.status
    return { id: status.id, name: status.name, state: 'online', uptime: this.runtime.uptimeSeconds, errors: { ...status.errors }, capabilities: [...ANNOTATOR_CAPABILITIES] }
  }

  /**
   * `update_annotation_node` (§5.3). A refusal, a malformed reply or a timeout is logged and counted;
   * LoopSocket reconnects by itself, so there is no "broken" flag to set. Returns whether the Loop accepted.
   */
  async sendStatus(): Promise<boolean> {
    const socket = this.connection.socket
    if (!socket?.connected) {
      this.metrics.statuses.inc({ result: 'not_connected' })
      this.log.debug('status not sent: not connected to the Loop')
      return false
    }
    try {
      await socket.emitExpectingSuccess('update_annotation_node', [this.status()], STATUS_TIMEOUT_MS)
      this.metrics.statuses.inc({ result: 'ok' })
      return true
    } catch (error) {
      const kind = error instanceof LoopSocketError ? error.kind : 'error'
      this.metrics.statuses.inc({ result: kind })
      this.log.warn('the Loop did not accept the annotator status', { kind, error: errorMessage(error) })
      return false
    }
  }

  private async repeat(): Promise<void> {
    for (const id of this.sessions.expireIdle(Date.now())) {
      this.metrics.sessionsClosed.inc({ reason: 'idle' })
      this.log.info('annotation session expired', { frontend_id: id })
    }
    await this.sendStatus()
  }

  /**
   * The Loop's `handle_user_input(user_input)` (§10 steps 1–7): the SVG string on success (→ ack
   * `{success: true, payload: svg}`), a failure SocketResponse naming the problem otherwise. Inputs of
   * one frontend are handled one after another, in arrival order.
   */
  handleUserInput(raw: unknown): Promise<string | SocketResponse> {
    const frontendId = typeof raw === 'object' && raw !== null && typeof (raw as { frontend_id?: unknown }).frontend_id === 'string'
      ? (raw as { frontend_id: string }).frontend_id : ''
    return this.serialised(frontendId, () => this.answerUserInput(raw))
  }

  private async answerUserInput(raw: unknown): Promise<string | SocketResponse> {
    const started = performance.now()
    let eventType = 'invalid'
    let input: UserInputType | undefined
    try {
      input = decode(UserInput, raw)
      // a metric label: only the known types, or the label set would grow with every string a client sends
      eventType = isOneOf(ANNOTATION_EVENT_TYPES, input.data.event_type) ? input.data.event_type : 'unknown'
      if (!this.connection.connected) throw new Error('not connected to the Loop')
      const frontendId = input.frontend_id
      if (input.data.key_up === 'Escape') {
        if (this.sessions.release(frontendId)) this.metrics.sessionsClosed.inc({ reason: 'escape' })
        this.metrics.inputs.inc({ event_type: eventType, result: 'ok' })
        return ''
      }
      const { organization, project } = input.data.context
      const imagePath = await this.ensureImage(organization, project, input.data.image_uuid)
      const history = this.sessions.acquire(frontendId, Date.now())
      let output
      try {
        output = await this.options.logic.handleUserInput(input, history, { imagePath })
      } catch (error) {
        // upstream drops the history when the tool fails, so the next input starts clean
        this.sessions.release(frontendId)
        this.metrics.sessionsClosed.inc({ reason: 'tool_error' })
        throw error
      }
      if (output.annotation) await this.sendAnnotation(organization, project, output.annotation)
      this.metrics.inputs.inc({ event_type: eventType, result: 'ok' })
      return output.svg
    } catch (error) {
      this.metrics.inputs.inc({ event_type: eventType, result: isUserFacing(error) ? 'refused' : 'failed' })
      const fields = { frontend_id: input?.frontend_id, event_type: eventType, image_uuid: input?.data.image_uuid, error: errorMessage(error) }
      if (isUserFacing(error)) this.log.info('user input refused', fields)
      else this.log.error('user input failed', fields)
      return socketFailure(errorMessage(error))
    } finally {
      this.metrics.inputSeconds.observe((performance.now() - started) / 1000, { event_type: eventType })
    }
  }

  /** The Loop's `user_logout(sid)`: frees that history; the ack's success is the tool's answer. */
  async userLogout(sid: unknown): Promise<boolean | SocketResponse> {
    if (typeof sid !== 'string') return socketFailure(`user_logout expects the frontend id as a string, got ${sid === null ? 'null' : typeof sid}`)
    return this.serialised(sid, async () => {
      if (this.sessions.release(sid)) this.metrics.sessionsClosed.inc({ reason: 'logout' })
      return await this.options.logic.logoutUser(sid)
    })
  }

  /** `<data>/<org>/<project>/images/<uuid>.jpg` (any other id encoded, see imageFileName), downloaded once (§4 #6). */
  async ensureImage(organization: string, project: string, imageUuid: string): Promise<string> {
    for (const [what, value] of [['organization', organization], ['project', project]] as const) {
      if (!SAFE_NAME.test(value) || value === '.' || value === '..') {
        throw new AnnotatorRequestError(`${what} ${quoteInput(value)} is not a plain name (letters, digits, '_', '-', '.')`)
      }
    }
    const folder = join(this.options.dataFolder, organization, project, 'images')
    const path = join(folder, imageFileName(imageUuid))
    if ((await stat(path).catch(() => undefined))?.size) {
      this.metrics.images.inc({ result: 'cached' })
      return path
    }
    const exchange = new DataExchange(this.connection.rest, { organization, project })
    const result = await exchange.downloadImages([imageUuid], folder, { concurrency: 1 })
    const failure = result.failed[0]
    if (failure) {
      this.metrics.images.inc({ result: 'failed' })
      const notFound = /\b404\b/.test(failure.error)
      throw new AnnotatorRequestError(notFound
        ? `image ${imageUuid} does not exist in ${organization}/${project}`
        : `image ${imageUuid} of ${organization}/${project} could not be downloaded: ${failure.error}`)
    }
    this.metrics.images.inc({ result: result.downloaded.length ? 'downloaded' : 'cached' })
    return path
  }

  /** `update_segmentation_annotation(org, project, annotation)` (§5.3); a refusal is logged and counted, not fatal. */
  private async sendAnnotation(organization: string, project: string, annotation: unknown): Promise<void> {
    const socket = this.connection.socket
    if (!socket) throw new Error('not connected to the Loop')
    try {
      await socket.emitExpectingSuccess('update_segmentation_annotation', [organization, project, annotation], ANNOTATION_TIMEOUT_MS)
      this.metrics.annotations.inc({ result: 'ok' })
    } catch (error) {
      this.metrics.annotations.inc({ result: error instanceof LoopSocketError ? error.kind : 'error' })
      this.log.warn('the Loop did not store the segmentation annotation', { organization, project, error: errorMessage(error) })
    }
  }

  /** Runs `work` after every earlier task of the same frontend has finished. */
  private serialised<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve()
    const next = previous.then(work, work)
    const settled = next.then(() => undefined, () => undefined)
    this.queues.set(key, settled)
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key)
    })
    return next
  }
}

