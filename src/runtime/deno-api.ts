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

export type DenoFfiType = 'pointer' | 'i32' | 'u64' | 'void'

export interface DenoForeignFunction {
  parameters: DenoFfiType[]
  result: DenoFfiType
}

export interface DenoApi {
  serve(options: DenoServeOptions, handler: (request: Request, info: { remoteAddr: { hostname: string; port: number } }) => Response | Promise<Response>): DenoHttpServer
  upgradeWebSocket(request: Request, options?: { idleTimeout?: number }): { socket: WebSocket; response: Response }
  dlopen(path: string, symbols: Record<string, DenoForeignFunction>): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void }
  UnsafeFnPointer: new (pointer: object, definition: DenoForeignFunction) => { call(...args: unknown[]): unknown }
  UnsafePointer: { of(view: ArrayBufferView): object | null }
  UnsafePointerView: { getCString(pointer: object): string }
}

export function denoApi(): DenoApi {
  const deno = (globalThis as { Deno?: DenoApi }).Deno
  if (!deno) throw new Error('this code path needs Deno, but the process runs on another runtime')
  return deno
}
