/**
 * Which JavaScript runtime runs this process. Everything that differs between Bun and Deno is decided in this
 * folder (src/runtime/); the rest of src/ uses web standards and the `node:` built-ins both implement.
 */
export type RuntimeName = 'bun' | 'deno'

export const RUNTIME: RuntimeName = 'Deno' in globalThis ? 'deno' : 'bun'
