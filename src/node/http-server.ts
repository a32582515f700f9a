import { Server as SocketIoServer } from 'socket.io'
import { Type } from '@sinclair/typebox'
import { SOCKET_IO_PATH } from '../contract/index.ts'
import { routeDocs, textContent } from './route-docs.ts'
import { boundedSocketParser, DEFAULT_MAX_ATTACHMENTS, DEFAULT_MAX_EVENT_BYTES } from './bounded-socket-parser.ts'
import { errorMessage, quoteInput, type Logger } from '../foundation/log.ts'
import type { MetricsRegistry } from '../foundation/metrics.ts'
import { hasChunkedBody, MAX_HEADER_BYTES, readBodyBytes, refusalResponse, RequestTooLargeError, requestRefusal } from './request-limits.ts'
import { AddressInUseError } from './listen-address.ts'
import { SocketIoEngine } from '../runtime/socket-io-engine.ts'
import { isAddressInUse, listenHttp, type AnyElysia, type Listener, type WebSocketHandlers } from '../runtime/serve-http.ts'

/** Detector message cap (§5.5, 64 MiB since upstream 0.18.2). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
/** The body limit of a server that names none. */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 128 * 1024 * 1024
/** A WebSocket closed for a frame over the payload limit: RFC 6455 code 1009 (Deno); Bun's server sees 1006 and this reason. */
const isFrameTooBig = (code: number, reason: string) => code === 1009 || /too big/i.test(reason)

export interface SocketIoBinding {
  io: SocketIoServer
  engine: InstanceType<typeof SocketIoEngine>
  /** the engine's WebSocket handlers, closes for oversized frames logged */
  websocket: WebSocketHandlers
  /** what a WebSocket handler threw (Deno: that connection is closed), logged and counted */
  onWebSocketError(error: unknown): void
  idleTimeoutSeconds: number
  maxMessageBytes: number
}

export interface SocketIoOptions {
  /** one frame (an engine.io message) at most; default 64 MiB */
  maxMessageBytes?: number
  /** binary attachments of one event (the images of a batch) at most; default 256 */
  maxAttachments?: number
  /** bytes of all attachments of one event at most; default 256 MiB */
  maxEventBytes?: number
  log: Logger
  metrics: MetricsRegistry
}

/**
 * A socket.io server bound to a Bun engine at `/ws/socket.io`; attach it with `serve`. Whatever the server
 * refuses — an unreadable packet, an event over the attachment limits, a frame over the message cap, a failed
 * handshake — is logged as one line and counted in `socket_io_errors_total`.
 */
export function createSocketIo(options: SocketIoOptions): SocketIoBinding {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  const { log } = options
  const errors = options.metrics.counter('socket_io_errors_total', 'socket.io packets, frames and handshakes the server refused, by reason')
  const parser = boundedSocketParser({
    maxAttachments: options.maxAttachments ?? DEFAULT_MAX_ATTACHMENTS,
    maxEventBytes: options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES,
    onRefused: (event, reason, message) => {
      errors.inc({ reason })
      log.warn('socket.io event refused', { event: quoteInput(event), reason, error: message })
    },
    onMalformed: (error) => {
      errors.inc({ reason: 'malformed' })
      log.warn('socket.io packet refused', { error: errorMessage(error), consequence: 'connection closed' })
    },
  })
  // the cap must be set on the engine as well as on the server, or frames over 1 MB close the socket
  const io = new SocketIoServer({ maxHttpBufferSize: maxMessageBytes, path: `${SOCKET_IO_PATH}/`, parser })
  const engine = new SocketIoEngine({ path: `${SOCKET_IO_PATH}/`, maxHttpBufferSize: maxMessageBytes, pingInterval: 10_000, pingTimeout: 20_000 })
  io.bind(engine)
  engine.on('connection_error', (failure: { code: number; message: string; context: unknown }) => {
    errors.inc({ reason: 'handshake' })
    log.warn('socket.io request refused', { code: failure.code, error: failure.message, context: failure.context })
  })
  const handler = engine.handler()
  const websocket: WebSocketHandlers = {
    ...(handler.websocket as unknown as WebSocketHandlers),
    close(ws, code, reason) {
      if (isFrameTooBig(code, reason)) {
        errors.inc({ reason: 'frame_too_large' })
        log.warn(`socket.io frame larger than the socket.io message cap of ${maxMessageBytes} bytes; connection closed`)
      }
      handler.websocket.close(ws as never, code, reason)
    },
  }
  const onWebSocketError = (error: unknown) => {
    errors.inc({ reason: 'handler_error' })
    log.error('socket.io connection failed', { error: errorMessage(error), consequence: 'connection closed' })
  }
  return { io, engine, websocket, onWebSocketError, idleTimeoutSeconds: handler.idleTimeout, maxMessageBytes }
}

const SOCKET_IO_DOCS = routeDocs({
  summary: 'socket.io (Engine.IO 4): long polling, or a GET upgraded to a WebSocket; the events are described in the README', tags: ['socket.io'],
  query: Type.Object({ EIO: Type.Literal('4'), transport: Type.Union([Type.Literal('polling'), Type.Literal('websocket')]), sid: Type.Optional(Type.String()) }),
  responses: { 101: textContent(Type.String(), 'switched to a WebSocket'), 200: textContent(Type.String(), 'Engine.IO packets') },
})

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
 * Requests over the limits are answered here, before any route, with 413/431 and a `detail`.
 */
export function serve(app: AnyElysia, options: {
  port: number
  hostname: string
  socketIo?: SocketIoBinding
  /** the largest request body (default 128 MiB, at least the socket.io message cap) */
  maxRequestBodyBytes?: number
  maxHeaderBytes?: number
  /** a request answered here with 413/431 (no route ran): for the owner's log line and counter */
  onRefusal?(request: Request, refusal: RequestTooLargeError): void
}): RunningServer {
  const { socketIo } = options
  const limits = {
    maxBodyBytes: Math.max(options.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES, socketIo?.maxMessageBytes ?? 0),
    maxHeaderBytes: options.maxHeaderBytes ?? MAX_HEADER_BYTES,
  }
  const refuse = (request: Request, refusal: RequestTooLargeError) => {
    options.onRefusal?.(request, refusal)
    return refusalResponse(refusal)
  }
  app.onRequest(async (context) => {
    const { request } = context
    const refusal = requestRefusal(request, limits)
    if (refusal) return refuse(request, refusal)
    if (!hasChunkedBody(request)) return
    // a body of unknown length is read here, up to the limit, so that no reader downstream holds more
    let body: Uint8Array
    try {
      body = await readBodyBytes(request, limits.maxBodyBytes)
    } catch (error) {
      if (error instanceof RequestTooLargeError) return refuse(request, error)
      throw error
    }
    const headers = new Headers(request.headers)
    headers.delete('transfer-encoding')
    ;(context as { request: Request }).request = new Request(request.url, { method: request.method, headers, body: body as Uint8Array<ArrayBuffer> })
  })
  if (socketIo) {
    app.all(`${SOCKET_IO_PATH}/*`, ({ request, server }) => socketIo.engine.handleRequest(request, server as any), { detail: SOCKET_IO_DOCS })
  }
  let listener: Listener
  try {
    listener = listenHttp(app, {
      port: options.port,
      hostname: options.hostname,
      websocket: socketIo?.websocket,
      idleTimeoutSeconds: Math.max(socketIo?.idleTimeoutSeconds ?? 0, 60),
    }, (error) => socketIo?.onWebSocketError(error))
  } catch (error) {
    if (isAddressInUse(error)) throw new AddressInUseError(options.hostname, options.port)
    throw error
  }
  const { port } = listener
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
      await listener.stop(force)
    },
  }
}
