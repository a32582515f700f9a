import { join } from 'node:path'
import type { Context } from '../contract/index.ts'
import type { NodeConfig } from '../config/node-config.ts'
import { LoopRestClient } from '../loop/loop-rest-client.ts'
import { LoopSocket, type LoopEventHandler, type LoopNodeType } from '../loop/loop-socket.ts'
import { errorMessage, type Logger } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'

/** Organization and project of the embedded local loop when none are configured. */
export const LOCAL_CONTEXT: Context = { organization: 'local', project: 'demo' }

/** The embedded Learning Loop a node starts when no LOOP_HOST is set, as far as its connection needs it. */
export interface EmbeddedLoop {
  readonly url: string
  stop(): Promise<void>
}

/** How the connection asks for its embedded loop (LocalLoopOptions takes these). */
export interface EmbeddedLoopOptions {
  dataFolder: string
  port: number
  hostname: string
  seedProject: Context
  username?: string
  password?: string
}

export interface LoopConnectionOptions {
  config: NodeConfig
  dataFolder: string
  nodeType: LoopNodeType
  /** trainers and annotators talk to the Loop over socket.io; detectors and converters use REST only */
  socket: boolean
  log: Logger
  metrics?: MetricsRegistry
  /** the Loop's `restart` event; default: exit with status 0 so the supervisor restarts the node (§5.2) */
  onRestart?: () => void
  /**
   * Starts the embedded loop when no LOOP_HOST is configured. The node kinds pass `LocalLoop.start`: the local
   * loop is built on the node runtime, so node/ cannot import it.
   */
  startEmbeddedLoop: (options: EmbeddedLoopOptions) => Promise<EmbeddedLoop>
}

/**
 * A node's link to its Learning Loop: REST client, optional socket.io client and — when no LOOP_HOST is
 * configured — an embedded local loop started in this process (by `startEmbeddedLoop`), so every node works offline out of the box.
 * Socket event handlers registered with `on` survive `PUT /socketio off/on` (a new LoopSocket each time).
 */
export class LoopConnection {
  readonly context: Context
  private socketClient: LoopSocket | undefined
  private readonly handlers = new Map<string, LoopEventHandler>()
  private readonly connectHooks: (() => void | Promise<void>)[] = []

  private constructor(
    readonly rest: LoopRestClient,
    context: Context,
    private readonly options: LoopConnectionOptions,
    readonly embedded: EmbeddedLoop | undefined,
  ) {
    this.context = context
  }

  static async open(options: LoopConnectionOptions): Promise<LoopConnection> {
    const { config, log } = options
    const loop = config.loop
    let embedded: EmbeddedLoop | undefined
    let baseUrl = loop.urls?.base
    let context: Context = { organization: loop.organization, project: loop.project }
    if (!baseUrl) {
      embedded = await options.startEmbeddedLoop({
        dataFolder: join(options.dataFolder, 'local-loop'),
        port: loop.localLoopPort,
        hostname: '127.0.0.1',
        seedProject: LOCAL_CONTEXT,
        username: loop.username || undefined,
        password: loop.password || undefined,
      })
      baseUrl = embedded.url
      if (!context.organization) context = { ...context, organization: LOCAL_CONTEXT.organization }
      if (!context.project) context = { ...context, project: LOCAL_CONTEXT.project }
      log.info('no LOOP_HOST set: started an embedded local loop', { url: embedded.url, ...context, data: join(options.dataFolder, 'local-loop') })
    }
    const rest = new LoopRestClient({
      baseUrl,
      username: loop.username,
      password: loop.password,
      caFile: loop.sslCertPath,
      timeoutMs: loop.requestTimeoutMs,
      metrics: options.metrics,
    })
    return new LoopConnection(rest, context, options, embedded)
  }

  get socket(): LoopSocket | undefined {
    return this.socketClient
  }
  get connected(): boolean {
    return this.socketClient?.connected ?? false
  }

  /** Registers a Loop → node event; its return or throw becomes the §5.1 ack. */
  on(event: string, handler: LoopEventHandler): this {
    this.handlers.set(event, handler)
    this.socketClient?.on(event, handler)
    return this
  }

  onConnect(hook: () => void | Promise<void>): void {
    this.connectHooks.push(hook)
    this.socketClient?.onConnect(hook)
  }

  /** Starts the socket (once; it reconnects by itself with backoff). A no-op for REST-only nodes. */
  connect(): void {
    if (!this.options.socket || this.socketClient) return
    const socket = LoopSocket.forRestClient(this.rest, {
      organization: this.context.organization,
      project: this.context.project,
      nodeType: this.options.nodeType,
      metrics: this.options.metrics,
      onRestart: this.options.onRestart ?? (() => {
        this.options.log.warn('the Loop asked this node to restart; exiting with status 0')
        process.exit(0)
      }),
    })
    for (const [event, handler] of this.handlers) socket.on(event, handler)
    for (const hook of this.connectHooks) socket.onConnect(hook)
    this.socketClient = socket
    socket.start()
  }

  /** `PUT /socketio off`: shut the socket down for good (no reconnects) until `connect()` again. */
  async disconnect(): Promise<void> {
    const socket = this.socketClient
    this.socketClient = undefined
    await socket?.shutdown()
  }

  async close(): Promise<void> {
    await this.disconnect()
    if (this.embedded) {
      try {
        await this.embedded.stop()
      } catch (error) {
        this.options.log.warn('embedded local loop did not stop cleanly', { error: errorMessage(error) })
      }
    }
  }
}
