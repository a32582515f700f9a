/**
 * The part of the `Deno` namespace this folder uses, typed by hand: the typecheck runs with Bun's types only.
 * `denoApi()` throws on any other runtime, so a wrong branch fails loudly instead of half-working.
 */

export interface DenoHttpServer {
  readonly addr: { port: number; hostname: string }
  readonly finished: Promise<void>
  shutdown(): Promise<void>
}

export interface DenoServeOptions {
  port: number
  hostname: string
  reusePort?: boolean
  automaticCompression?: boolean
  onListen?(address: { port: number; hostname: string }): void
  onError?(error: unknown): Response | Promise<Response>
}

export interface DenoApi {
  serve(options: DenoServeOptions, handler: (request: Request) => Response | Promise<Response>): DenoHttpServer
  upgradeWebSocket(request: Request, options?: { idleTimeout?: number }): { socket: WebSocket; response: Response }
}

export function denoApi(): DenoApi {
  const deno = (globalThis as { Deno?: DenoApi }).Deno
  if (!deno) throw new Error('this code path needs Deno, but the process runs on another runtime')
  return deno
}
