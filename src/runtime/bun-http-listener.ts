/**
 * Serving on Bun: Elysia's own `listen` (Bun.serve, with Elysia's static routes compiled into Bun's router).
 * Bun's parser refuses big requests with bare, empty answers before any JavaScript runs, so its limits are set
 * above the ones the caller checks and answers with a detail (node/request-limits.ts).
 */
import http from 'node:http'
import type { AnyElysia, Listener, ListenOptions } from './http-listener.ts'

/** Where Bun's parser still refuses a header block with its bare 431. */
export const NATIVE_HEADER_BYTES = 64 * 1024

/**
 * Lets header blocks up to NATIVE_HEADER_BYTES reach the caller's check. It is a process-wide setting
 * (`http.maxHeaderSize`, the same as `--max-http-header-size`), raised — never lowered.
 */
function raiseNativeHeaderLimit(): void {
  if (http.maxHeaderSize < NATIVE_HEADER_BYTES) (http as { maxHeaderSize: number }).maxHeaderSize = NATIVE_HEADER_BYTES
}

export function listenWithBun(app: AnyElysia, options: ListenOptions): Listener {
  raiseNativeHeaderLimit()
  app.listen({
    port: options.port,
    hostname: options.hostname,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    // Elysia asks for SO_REUSEPORT: a second node on the same port would start and silently share its traffic
    reusePort: false,
    idleTimeout: options.idleTimeoutSeconds,
    ...(options.websocket ? { websocket: options.websocket } : {}),
  } as Parameters<AnyElysia['listen']>[0])
  const server = app.server
  if (!server) throw new Error(`could not listen on ${options.hostname}:${options.port}`)
  return {
    port: server.port!,
    stop: (force) => server.stop(force),
  }
}
