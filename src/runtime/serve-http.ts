/**
 * Serves an Elysia app (and WebSocket upgrades through the handlers' `server.upgrade`) on one port, on
 * whichever runtime runs this process. The caller adds everything that is the same on both: request limits,
 * the socket.io route, the URL it reports.
 */
import { listenWithBun } from './bun-http-listener.ts'
import { listenWithDeno } from './deno-http-listener.ts'
import type { AnyElysia, Listener, ListenOptions } from './http-listener.ts'
import { RUNTIME } from './runtime-name.ts'

export type { AnyElysia, Listener, ListenOptions, ServerWebSocketLike, WebSocketHandlers } from './http-listener.ts'

/**
 * Binds `hostname:port` (never shared with another process: no SO_REUSEPORT) and serves `app`. A port in use
 * throws an error with `code: 'EADDRINUSE'` on both runtimes. `onError` receives what a WebSocket handler
 * threw (that connection is closed) and what a forced stop left behind.
 */
export function listenHttp(app: AnyElysia, options: ListenOptions, onError: (error: unknown) => void): Listener {
  return RUNTIME === 'deno' ? listenWithDeno(app, options, onError) : listenWithBun(app, options)
}

/** The bind failed because another socket holds the address. */
export function isAddressInUse(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'EADDRINUSE'
}
