import { Elysia } from 'elysia'
import { Server as SocketIoEngine } from '@socket.io/bun-engine'
import { Server as SocketIoServer } from 'socket.io'

/** Engine.IO path of every socket.io endpoint in the ecosystem (§5, §5.5). */
export const SOCKET_IO_PATH = '/ws/socket.io'
/** Detector message cap (§5.5, 64 MiB since upstream 0.18.2). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

export interface SocketIoBinding {
  io: SocketIoServer
  engine: SocketIoEngine
}

/** A socket.io server bound to a Bun engine at `/ws/socket.io`; attach it with `serve`. */
export function createSocketIo(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): SocketIoBinding {
  // the cap must be set on the engine as well as on the server, or frames over 1 MB close the socket
  const io = new SocketIoServer({ maxHttpBufferSize: maxMessageBytes, path: `${SOCKET_IO_PATH}/` })
  const engine = new SocketIoEngine({ path: `${SOCKET_IO_PATH}/`, maxHttpBufferSize: maxMessageBytes, pingInterval: 10_000, pingTimeout: 20_000 })
  io.bind(engine)
  return { io, engine }
}

export interface RunningServer {
  readonly port: number
  readonly hostname: string
  readonly url: string
  /** Stops accepting connections and closes socket.io clients; waits for in-flight HTTP requests unless `force`. */
  stop(force?: boolean): Promise<void>
}

/**
 * Serves an Elysia app and (optionally) socket.io on one port. Port 0 picks a free port.
 * socket.io requests at `/ws/socket.io/…` go to the engine; everything else to Elysia.
 */
export function serve(app: Elysia<any, any, any, any, any, any, any>, options: {
  port: number
  hostname: string
  socketIo?: SocketIoBinding
  maxRequestBodyBytes?: number
}): RunningServer {
  const { socketIo } = options
  const handler = socketIo?.engine.handler()
  const maxRequestBodySize = Math.max(options.maxRequestBodyBytes ?? 0, handler?.maxRequestBodySize ?? 0, 128 * 1024 * 1024)
  if (socketIo) {
    app.all(`${SOCKET_IO_PATH}/*`, ({ request, server }) => socketIo.engine.handleRequest(request, server as any))
  }
  app.listen({
    port: options.port,
    hostname: options.hostname,
    maxRequestBodySize,
    ...(handler ? { websocket: handler.websocket, idleTimeout: Math.max(handler.idleTimeout, 60) } : { idleTimeout: 60 }),
  } as any)
  const server = app.server
  if (!server) throw new Error(`could not listen on ${options.hostname}:${options.port}`)
  const port = server.port!
  const hostForUrl = options.hostname === '0.0.0.0' || options.hostname === '::' ? '127.0.0.1' : options.hostname
  return {
    port,
    hostname: options.hostname,
    url: `http://${hostForUrl.includes(':') ? `[${hostForUrl}]` : hostForUrl}:${port}`,
    async stop(force = false) {
      if (socketIo) {
        socketIo.io.disconnectSockets(true)
        socketIo.engine.close()
      }
      await server.stop(force)
    },
  }
}
