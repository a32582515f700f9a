/**
 * The shapes every runtime's HTTP listener shares. WebSocket handlers take Bun.serve's shape because that is
 * what @socket.io/bun-engine hands out; on Deno they are driven by the events of the socket from
 * `Deno.upgradeWebSocket` (deno-websocket.ts).
 */
import type { Elysia } from 'elysia'

export type AnyElysia = Elysia<any, any, any, any, any, any, any>

/** The server side of one WebSocket as a handler sees it: Bun's ServerWebSocket, or its stand-in on Deno. */
export interface ServerWebSocketLike<Data = any> {
  readonly data: Data
  /** WebSocket.OPEN (1) while messages can be sent */
  readonly readyState: number
  send(message: string | ArrayBufferView | ArrayBuffer): unknown
  close(code?: number, reason?: string): void
}

export interface WebSocketHandlers {
  open(ws: ServerWebSocketLike): void
  /** text as a string, binary as a Buffer */
  message(ws: ServerWebSocketLike, message: string | Uint8Array): void
  /** code 1009 (or Bun's 1006 with a "too big" reason) after a message over maxPayloadLength */
  close(ws: ServerWebSocketLike, code: number, reason: string): void
  /** the largest message in bytes; a bigger one closes the connection */
  maxPayloadLength: number
}

/** What `upgrade` in an Elysia handler's `server` (Bun's Server, or the Deno listener's stand-in) takes. */
export interface WebSocketUpgrade {
  data?: unknown
  headers?: HeadersInit
}

export interface ListenOptions {
  /** 0 picks a free port */
  port: number
  hostname: string
  websocket?: WebSocketHandlers
  /** a connection with nothing sent or received for this long is closed (Bun); WebSocket ping timeout (Deno) */
  idleTimeoutSeconds: number
}

export interface Listener {
  /** the port bound (the one picked when 0 was asked for) */
  readonly port: number
  /** Stops accepting connections; waits for requests in flight unless `force`. */
  stop(force: boolean): Promise<void>
}
