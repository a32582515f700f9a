/**
 * The socket.io engine both runtimes serve with: @socket.io/bun-engine, which needs of its server nothing but
 * Bun's `upgrade(request, {data})` and Bun-shaped WebSocket handlers (deno-http-listener.ts provides both).
 *
 * On Deno the package cannot be imported as it is published: its ES modules import each other without file
 * extensions (`from "./server"`), which Deno's Node-compatible resolution refuses. So on Deno its files are
 * read from node_modules and loaded as `data:` modules with the siblings' specifiers replaced by the siblings'
 * own `data:` URLs; the code that runs is the package's, byte for byte apart from those specifiers. Its empty
 * `import {} from "./server"` lines (type imports the compiler left behind, the only cycles) are dropped.
 */
import { readFileSync } from 'node:fs'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Server } from '@socket.io/bun-engine'
import { RUNTIME } from './runtime-name.ts'

export type SocketIoEngineClass = typeof Server

const RELATIVE_IMPORT = /^(import|export)\s+([^;]*?)\s+from\s+"(\.{1,2}\/[^"]+)";?$/gm
const EMPTY_IMPORT = /^import\s+\{\s*\}\s+from\s+"[^"]+";?\s*$/gm

/** Loads `module` (a path relative to the package's dist folder, without extension) and its siblings as data: URLs. */
function dataModuleUrl(distFolder: string, module: string, loaded: Map<string, string>, loading: Set<string>): string {
  const known = loaded.get(module)
  if (known) return known
  if (loading.has(module)) throw new Error(`@socket.io/bun-engine: import cycle through ${module}`)
  loading.add(module)
  const source = readFileSync(join(distFolder, `${module}.js`), 'utf8').replace(EMPTY_IMPORT, '')
  const rewritten = source.replace(RELATIVE_IMPORT, (_line, keyword: string, names: string, specifier: string) => {
    const sibling = posix.normalize(posix.join(posix.dirname(module), specifier))
    return `${keyword} ${names} from ${JSON.stringify(dataModuleUrl(distFolder, sibling, loaded, loading))};`
  })
  loading.delete(module)
  const url = `data:text/javascript;charset=utf-8,${encodeURIComponent(rewritten)}`
  loaded.set(module, url)
  return url
}

async function loadForDeno(): Promise<SocketIoEngineClass> {
  const distFolder = dirname(fileURLToPath(import.meta.resolve('@socket.io/bun-engine')))
  const serverModule = await import(dataModuleUrl(distFolder, 'server', new Map(), new Set())) as { Server: SocketIoEngineClass }
  return serverModule.Server
}

export const SocketIoEngine: SocketIoEngineClass = RUNTIME === 'deno' ? await loadForDeno() : (await import('@socket.io/bun-engine')).Server
