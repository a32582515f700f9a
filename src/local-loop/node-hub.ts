import type { Server as SocketIoServer, Socket } from 'socket.io'
import {
  AnnotationNodeStatus, ContractError, SegmentationAnnotation, TrainingOut, TrainingStatus, decode, socketFailure, socketSuccess,
  type SocketResponse,
} from '../contract/index.ts'
import { RefusedEvent } from '../node/bounded-socket-parser.ts'
import { clipText, errorMessage, MAX_ERROR_ANSWER_CHARACTERS, quoteInput, type Logger } from '../foundation/log.ts'
import type { Counter } from '../foundation/metrics.ts'
import { LoopRequestError } from './loop-errors.ts'
import type { LoopStore } from './loop-store.ts'
import type { SessionStore } from './session-store.ts'

/**
 * The Loop side of §5: nodes connect with socket.io on /ws/socket.io, carrying the headers
 * `organization`, `project`, `nodeType` and the login cookie. Every node → Loop call (§5.3) is validated
 * with its contract schema and acknowledged with a SocketResponse; unknown events get a failure ack.
 * Loop → node events (§5.2) are sent to one chosen node and its ack is returned.
 *
 * Decision: a connection without a live session cookie is refused with a connect error, as upstream's
 * Loop requires login for trainers and annotators (detectors no longer use socket.io, §5.4).
 */
export interface ConnectedNode {
  /** socket.io id of this connection */
  sid: string
  nodeType: string
  organization: string | null
  project: string | null
  connectedAt: number
  /** the peer's address, when the engine knows it (Bun's engine does not tell it) */
  address: string | null
  /** `id` of the latest status the node sent (its uuid), null before the first */
  nodeId: string | null
  name: string | null
  lastStatus: unknown
  lastStatusAt: number | null
}

export interface ReceivedStatus {
  event: 'update_trainer' | 'update_annotation_node'
  sid: string
  nodeId: string
  status: unknown
  receivedAt: number
}

export interface ReceivedTrainingUpdate {
  sid: string
  organization: string
  project: string
  training: TrainingOut
  trainingNumber: number | null
  receivedAt: number
}

/** A node given by socket id, node uuid or name, or a predicate over the connected nodes (its `description` names it in errors). */
export type NodeSelector = string | (((node: ConnectedNode) => boolean) & { description?: string })

export interface SocketCounters {
  handshakes: number
  accepted: number
  rejected: number
  disconnects: number
  eventsReceived: Record<string, number>
}

export interface NodeHubOptions {
  store: LoopStore
  sessions: SessionStore
  log: Logger
  requireLogin: boolean
  ackTimeoutMs: number
  handshakeCounter: Counter
  eventCounter: Counter
}

/** Names socket.io keeps for itself; emitting one to a node throws inside socket.io. */
const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'])
const HISTORY_PER_NODE = 5_000
const MAX_NODES_WITH_HISTORY = 1_000
const MAX_TRAINING_UPDATES = 5_000

type Handler = (node: ConnectedNode, args: unknown[]) => SocketResponse | Promise<SocketResponse>

/** A node did not answer within the time allowed. */
export class NodeAckTimeoutError extends LoopRequestError {
  constructor(message: string) {
    super(504, message)
    this.name = 'NodeAckTimeoutError'
  }
}

export class NodeHub {
  private readonly nodes = new Map<string, { node: ConnectedNode; socket: Socket }>()
  private readonly history = new Map<string, ReceivedStatus[]>()
  /** node uuid → the last stop_training or abort_training this Loop sent it, until its training ends */
  private readonly stopRequests = new Map<string, 'stop_training' | 'abort_training'>()
  private readonly trainingUpdates: ReceivedTrainingUpdate[] = []
  private readonly counters: SocketCounters = { handshakes: 0, accepted: 0, rejected: 0, disconnects: 0, eventsReceived: {} }
  // a Map: event names come from the nodes and must never reach Object.prototype members
  private readonly handlers: Map<string, Handler>

  constructor(private readonly io: SocketIoServer, private readonly options: NodeHubOptions) {
    this.handlers = new Map<string, Handler>([
      ['update_trainer', (node, args) => this.onStatus('update_trainer', node, args)],
      ['update_annotation_node', (node, args) => this.onStatus('update_annotation_node', node, args)],
      ['update_training', (node, args) => this.onTrainingUpdate(node, args)],
      ['update_segmentation_annotation', (node, args) => this.onSegmentationAnnotation(node, args)],
    ])
    io.use((socket, next) => {
      this.counters.handshakes++
      const session = options.sessions.fromCookieHeader(headerText(socket.handshake.headers.cookie))
      if (options.requireLogin && !session) {
        this.counters.rejected++
        options.handshakeCounter.inc({ result: 'rejected' })
        options.log.warn('socket.io connection refused: no live session cookie', { address: socket.handshake.address })
        next(new Error('unauthorized: log in with POST /api/login and send its cookie'))
        return
      }
      this.counters.accepted++
      options.handshakeCounter.inc({ result: 'accepted' })
      next()
    })
    io.on('connection', (socket) => this.onConnection(socket))
  }

  private onConnection(socket: Socket): void {
    const headers = socket.handshake.headers
    const node: ConnectedNode = {
      sid: socket.id,
      nodeType: headerText(headers.nodetype) ?? 'node',
      organization: headerText(headers.organization) ?? null,
      project: headerText(headers.project) ?? null,
      connectedAt: Date.now(),
      address: socket.handshake.address ?? null,
      nodeId: null,
      name: null,
      lastStatus: null,
      lastStatusAt: null,
    }
    this.nodes.set(socket.id, { node, socket })
    this.options.log.info('node connected', { sid: socket.id, nodeType: node.nodeType, organization: node.organization, project: node.project })
    socket.onAny((event: string, ...args: unknown[]) => void this.dispatch(node, event, args))
    socket.on('disconnect', (reason) => {
      this.nodes.delete(socket.id)
      this.counters.disconnects++
      this.options.log.info('node disconnected', { sid: socket.id, nodeId: node.nodeId, reason })
    })
  }

  private async dispatch(node: ConnectedNode, event: string, rawArgs: unknown[]): Promise<void> {
    const ack = typeof rawArgs.at(-1) === 'function' ? (rawArgs.at(-1) as (response: SocketResponse) => void) : undefined
    const args = ack ? rawArgs.slice(0, -1) : rawArgs
    const handler = this.handlers.get(event)
    const counted = handler ? event : '(unknown)'
    this.counters.eventsReceived[counted] = (this.counters.eventsReceived[counted] ?? 0) + 1
    let response: SocketResponse
    if (!handler) {
      response = socketFailure(`unknown event ${quoteInput(event)}; the Loop handles ${[...this.handlers.keys()].join(', ')}`)
    } else if (args[0] instanceof RefusedEvent) {
      // over the attachment limits: the parser dropped the payload and left the reason
      response = socketFailure(args[0].message)
    } else {
      try {
        response = await handler(node, args)
      } catch (error) {
        response = socketFailure(error instanceof ContractError || error instanceof LoopRequestError ? error.message : `internal error: ${errorMessage(error)}`)
        if (!(error instanceof ContractError || error instanceof LoopRequestError)) this.options.log.error('socket handler failed', { event, error })
      }
    }
    if (response.error_msg) response = { ...response, error_msg: clipText(response.error_msg, MAX_ERROR_ANSWER_CHARACTERS) }
    this.options.eventCounter.inc({ event: counted, result: response.success ? 'success' : 'failure' })
    if (!response.success) this.options.log.warn('socket event refused', { event: quoteInput(event), sid: node.sid, error: response.error_msg })
    ack?.(response)
  }

  private onStatus(event: ReceivedStatus['event'], node: ConnectedNode, args: unknown[]): SocketResponse {
    const status = event === 'update_trainer' ? decode(TrainingStatus, args[0]) : decode(AnnotationNodeStatus, args[0])
    const now = Date.now()
    node.nodeId = status.id
    node.name = status.name
    node.lastStatus = status
    node.lastStatusAt = now
    this.remember({ event, sid: node.sid, nodeId: status.id, status, receivedAt: now })
    if (event === 'update_trainer') this.followTrainerState(status as TrainingStatus)
    return socketSuccess()
  }

  /**
   * Mirrors a trainer's state onto the newest training it was given (if this Loop started it), and records how
   * the training ended when the trainer reaches ready_for_cleanup: `aborted` or `stopped` when this Loop asked for
   * it, `failed` with the trainer's errors, `completed` when a model was uploaded, else `failed`.
   */
  private followTrainerState(status: TrainingStatus): void {
    const context = status.context
    const store = this.options.store
    if (!context || !status.state || !store.hasProject(context.organization, context.project)) return
    const training = store.trainings(context.organization, context.project).find((t) => t.trainerId === status.id)
    if (!training) return
    if (training.state !== status.state) store.updateTraining(context.organization, context.project, training.number, { state: status.state })
    if (status.state !== 'ready_for_cleanup' || training.outcome !== null) return
    const errors = Object.entries(status.errors ?? {}).map(([step, message]) => `${step}: ${message}`).join('; ')
    const requested = this.stopRequests.get(status.id)
    this.stopRequests.delete(status.id)
    const hasModel = store.models(context.organization, context.project).some((m) => m.trainingNumber === training.number)
    const ended = requested === 'abort_training' ? { outcome: 'aborted' as const, error: null }
      : errors ? { outcome: 'failed' as const, error: errors }
      : requested === 'stop_training' ? { outcome: 'stopped' as const, error: null }
      : hasModel ? { outcome: 'completed' as const, error: null }
      : { outcome: 'failed' as const, error: 'the trainer finished without uploading a model' }
    store.updateTraining(context.organization, context.project, training.number, ended)
    this.options.log.info('training ended', { organization: context.organization, project: context.project, training: training.number, ...ended })
  }

  private remember(entry: ReceivedStatus): void {
    let list = this.history.get(entry.nodeId)
    if (!list) {
      if (this.history.size >= MAX_NODES_WITH_HISTORY) this.history.delete(this.history.keys().next().value!)
      list = []
      this.history.set(entry.nodeId, list)
    }
    list.push(entry)
    if (list.length > HISTORY_PER_NODE) list.splice(0, list.length - HISTORY_PER_NODE)
  }

  private onTrainingUpdate(node: ConnectedNode, args: unknown[]): SocketResponse {
    const [organization, project, payload] = args
    if (typeof organization !== 'string' || typeof project !== 'string') {
      return socketFailure('update_training expects (organization: string, project: string, training: TrainingOut)')
    }
    this.options.store.requireProject(organization, project)
    const training = decode(TrainingOut, payload)
    const current = this.options.store.currentTraining(organization, project, training.trainer_id)
    if (current) this.options.store.updateTraining(organization, project, current.number, { lastUpdate: training })
    this.trainingUpdates.push({ sid: node.sid, organization, project, training, trainingNumber: current?.number ?? null, receivedAt: Date.now() })
    if (this.trainingUpdates.length > MAX_TRAINING_UPDATES) this.trainingUpdates.splice(0, this.trainingUpdates.length - MAX_TRAINING_UPDATES)
    return socketSuccess()
  }

  private onSegmentationAnnotation(_node: ConnectedNode, args: unknown[]): SocketResponse {
    const [organization, project, payload] = args
    if (typeof organization !== 'string' || typeof project !== 'string') {
      return socketFailure('update_segmentation_annotation expects (organization: string, project: string, annotation: SegmentationAnnotation)')
    }
    const annotation = decode(SegmentationAnnotation, payload)
    this.options.store.images.upsertSegmentationAnnotation(organization, project, annotation)
    return socketSuccess()
  }

  // ---------------------------------------------------------------- queries

  connectedNodes(): ConnectedNode[] {
    return [...this.nodes.values()].map((entry) => ({ ...entry.node })).sort((a, b) => b.connectedAt - a.connectedAt)
  }

  /** Statuses received from one node (by uuid) or all nodes, oldest first. */
  statusHistory(nodeId?: string): ReceivedStatus[] {
    if (nodeId !== undefined) return [...(this.history.get(nodeId) ?? [])]
    return [...this.history.values()].flat().sort((a, b) => a.receivedAt - b.receivedAt)
  }

  receivedTrainingUpdates(): ReceivedTrainingUpdate[] {
    return [...this.trainingUpdates]
  }

  counts(): SocketCounters {
    return { ...this.counters, eventsReceived: { ...this.counters.eventsReceived } }
  }

  /** The most recently connected node matching `selector`; throws 404 naming it when none is connected. */
  findNode(selector: NodeSelector): ConnectedNode {
    return { ...this.findEntry(selector).node }
  }

  private findEntry(selector: NodeSelector): { node: ConnectedNode; socket: Socket } {
    const matches = (node: ConnectedNode) => typeof selector === 'function'
      ? selector({ ...node })
      : node.sid === selector || node.nodeId === selector || node.name === selector
    const found = [...this.nodes.values()].filter((entry) => matches(entry.node)).sort((a, b) => b.node.connectedAt - a.node.connectedAt)[0]
    if (!found) {
      const description = typeof selector === 'function' ? selector.description ?? 'the given predicate' : quoteInput(selector)
      throw new LoopRequestError(404, `no connected node matches ${description} (connected: ${this.describeConnected()})`)
    }
    return found
  }

  private describeConnected(): string {
    const nodes = [...this.nodes.values()].map((e) => `${e.node.nodeType} ${e.node.name ?? e.node.nodeId ?? e.node.sid}`)
    return nodes.length ? nodes.join(', ') : 'none'
  }

  /**
   * Sends a Loop → node event and returns the node's ack. Without `expectAck` (e.g. `restart`, which
   * makes the node exit) it returns undefined right after sending.
   */
  async emit(selector: NodeSelector, event: string, args: unknown[], options: { timeoutMs?: number; expectAck?: boolean } = {}): Promise<unknown> {
    if (RESERVED_EVENTS.has(event)) throw new LoopRequestError(422, `${quoteInput(event)} is reserved by socket.io and cannot be sent to a node`)
    const { node, socket } = this.findEntry(selector)
    // remembered to tell a stopped or aborted training from one that completed or failed (followTrainerState)
    if (node.nodeId && (event === 'stop_training' || event === 'abort_training')) this.stopRequests.set(node.nodeId, event)
    if (node.nodeId && event === 'begin_training') this.stopRequests.delete(node.nodeId)
    if (options.expectAck === false) {
      socket.emit(event, ...args)
      return undefined
    }
    const timeoutMs = options.timeoutMs ?? this.options.ackTimeoutMs
    try {
      return await socket.timeout(timeoutMs).emitWithAck(event, ...args)
    } catch (error) {
      const message = `node ${node.name ?? node.nodeId ?? node.sid} did not acknowledge ${quoteInput(event)} within ${timeoutMs} ms` +
        (socket.connected ? '' : ' (it disconnected)')
      this.options.log.warn('node ack timed out', { event, sid: node.sid, timeoutMs, error: errorMessage(error) })
      throw new NodeAckTimeoutError(message)
    }
  }

  /** Disconnects every node (the server is stopping). */
  disconnectAll(): void {
    this.io.disconnectSockets(true)
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value
  return text === undefined || text === '' ? undefined : text
}
