/**
 * A Deno WebSocket (from `Deno.upgradeWebSocket`) driving Bun-shaped handlers, with a stand-in for Bun's
 * ServerWebSocket. Two things Bun does are done here by hand:
 * - Bun's `server.upgrade` calls `open` before it returns, and @socket.io/bun-engine relies on that (it sends
 *   the handshake packet right after upgrading). Deno's socket opens only once the 101 answer is out, so
 *   `open` is called at once and what is sent (or a close) before the socket is open waits for it.
 * - Deno has no per-socket payload limit: a message over `maxPayloadLength` is refused the way Bun refuses it,
 *   the connection closed with 1009 (message too big), and the handlers never see that message.
 * Binary messages reach `message` as a Buffer, as on Bun.
 */
import { Buffer } from 'node:buffer'
import type { ServerWebSocketLike, WebSocketHandlers } from './http-listener.ts'

type CloseReason = { code: number; reason: string }
const MESSAGE_TOO_BIG: CloseReason = { code: 1009, reason: 'message too big' }
const INTERNAL_ERROR: CloseReason = { code: 1011, reason: 'internal error' }

type Outgoing = string | ArrayBufferView | ArrayBuffer

function messageBytes(message: string | Uint8Array): number {
  return typeof message === 'string' ? Buffer.byteLength(message) : message.byteLength
}

/**
 * Wires `socket` (just upgraded, not yet open) to `handlers` and calls `open` now. A handler that throws closes
 * the connection with 1011 and hands the error to `onError`: under Deno an exception escaping an event
 * listener would end the process.
 */
export function driveWebSocket(socket: WebSocket, data: unknown, handlers: WebSocketHandlers, onError: (error: unknown) => void): void {
  socket.binaryType = 'arraybuffer'
  let waiting: Outgoing[] | undefined = []
  let closeWhenOpen: CloseReason | undefined
  let closedBy: CloseReason | undefined
  const close = (why: CloseReason) => {
    if (waiting) closeWhenOpen ??= why
    else if (socket.readyState === WebSocket.OPEN) socket.close(why.code, why.reason)
  }
  const ws: ServerWebSocketLike = {
    data,
    get readyState() {
      if (waiting) return closeWhenOpen ? WebSocket.CLOSING : WebSocket.OPEN
      return socket.readyState
    },
    send(message) {
      if (waiting) waiting.push(message)
      else socket.send(message as string | ArrayBufferView<ArrayBuffer>)
    },
    close: (code = 1000, reason = '') => close({ code, reason }),
  }
  const guarded = (run: () => void) => {
    try {
      run()
    } catch (error) {
      onError(error)
      closedBy ??= INTERNAL_ERROR
      close(INTERNAL_ERROR)
    }
  }
  socket.addEventListener('open', () => {
    const queued = waiting ?? []
    waiting = undefined
    if (closeWhenOpen) return socket.close(closeWhenOpen.code, closeWhenOpen.reason)
    for (const message of queued) socket.send(message as string | ArrayBufferView<ArrayBuffer>)
  })
  socket.addEventListener('message', (event: MessageEvent<string | ArrayBuffer>) => {
    if (closedBy) return
    const message = typeof event.data === 'string' ? event.data : Buffer.from(event.data)
    if (messageBytes(message) > handlers.maxPayloadLength) {
      closedBy = MESSAGE_TOO_BIG
      return close(MESSAGE_TOO_BIG)
    }
    guarded(() => handlers.message(ws, message))
  })
  socket.addEventListener('close', (event: CloseEvent) => {
    waiting = undefined
    const why = closedBy ?? { code: event.code, reason: event.reason }
    guarded(() => handlers.close(ws, why.code, why.reason))
  })
  guarded(() => handlers.open(ws))
}
