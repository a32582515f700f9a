/**
 * Serving on Deno: `Deno.serve` calling the Elysia app's `fetch`. Elysia hands its `app.server` to every
 * handler as `server`; on Bun that is Bun's Server, here a stand-in with the two methods used: `requestIP`
 * and `upgrade(request, {data})` (what @socket.io/bun-engine calls), which upgrades with
 * `Deno.upgradeWebSocket`. The upgrade's own Response must be the answer to that request, so it is kept by
 * request and replaces whatever the app answered.
 *
 * Deno (without --unstable-no-legacy-abort) also aborts `request.signal` once a response was sent, which
 * the engine's long-polling takes for a client gone away; handlers see a signal that aborts only while the
 * request is unanswered.
 *
 * Differences to Bun that stay: Deno has no idle timeout for HTTP connections (keep-alive connections are
 * closed by the client or at shutdown) and no forced stop (`stop(true)` starts the shutdown without waiting).
 */
import { denoApi } from './deno-api.ts'
import { driveWebSocket } from './deno-websocket.ts'
import type { AnyElysia, Listener, ListenOptions, WebSocketUpgrade } from './http-listener.ts'

interface SocketAddress {
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
}

/** Gives `request` a `signal` that aborts when the client goes away before the answer, not after it. */
function signalOfDisconnect(request: Request): { answered: boolean } {
  const state = { answered: false }
  const disconnected = new AbortController()
  request.signal.addEventListener('abort', () => {
    if (!state.answered) disconnected.abort(request.signal.reason)
  }, { once: true })
  Object.defineProperty(request, 'signal', { value: disconnected.signal })
  return state
}

export function listenWithDeno(app: AnyElysia, options: ListenOptions, onError: (error: unknown) => void): Listener {
  const deno = denoApi()
  const upgrades = new WeakMap<Request, Response>()
  const clients = new WeakMap<Request, SocketAddress>()
  const { websocket } = options
  const server = {
    upgrade(request: Request, upgrade: WebSocketUpgrade = {}): boolean {
      if (!websocket) return false
      let upgraded: { socket: WebSocket; response: Response }
      try {
        upgraded = deno.upgradeWebSocket(request, { idleTimeout: options.idleTimeoutSeconds })
      } catch {
        return false // not a WebSocket handshake: the caller answers it (Bun's upgrade returns false too)
      }
      new Headers(upgrade.headers).forEach((value, name) => upgraded.response.headers.set(name, value))
      driveWebSocket(upgraded.socket, upgrade.data, websocket, onError)
      upgrades.set(request, upgraded.response)
      return true
    },
    /** Bun's `server.requestIP`: the client's address (the local loop's rate limit counts by it) */
    requestIP: (request: Request): SocketAddress | null => clients.get(request) ?? null,
  }
  ;(app as unknown as { server: unknown }).server = server
  const listening = deno.serve({
    port: options.port,
    hostname: options.hostname,
    reusePort: false,
    // Bun compresses nothing on its own; the same bytes go out on both runtimes
    automaticCompression: false,
    onListen: () => {}, // Deno would print "Listening on …" to stdout, which is for JSON log lines only
  }, async (request, info) => {
    const { hostname, port } = info.remoteAddr
    clients.set(request, { address: hostname, port, family: hostname.includes(':') ? 'IPv6' : 'IPv4' })
    const signal = signalOfDisconnect(request)
    let response: Response
    try {
      response = await app.fetch(request)
    } finally {
      signal.answered = true
    }
    const upgraded = upgrades.get(request)
    if (!upgraded) return response
    upgrades.delete(request)
    return upgraded
  })
  let shutdown: Promise<void> | undefined
  return {
    port: listening.addr.port,
    async stop(force) {
      if (!shutdown) {
        shutdown = listening.shutdown()
        shutdown.catch(onError)
      }
      if (!force) await shutdown
    },
  }
}
