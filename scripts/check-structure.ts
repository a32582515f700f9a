#!/usr/bin/env bun
/**
 * The house rules of the layout (design.md, ARCHITECTURE.md), checked over src/: no import cycle between files
 * (type-only imports count), none between folders, every folder imports only folders before it on the layer line
 * (LAYERS), no source file over 400 lines, and nothing runtime-specific outside the runtime edge (RUNTIME_EDGE).
 * `bun scripts/check-structure.ts` prints the folder graph and every violation and exits 1 when there is one;
 * test/docs/structure.test.ts runs it in CI.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

export const MAX_LINES = 400

/**
 * The layer line, bottom first: a folder may import the folders before it, never one after it. Within a layer
 * the order says which way an import may go (config may import contract; node kinds may import the local loop).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['runtime'],
  ['foundation'],
  ['contract', 'config'],
  ['loop', 'inference'],
  ['node'],
  ['local-loop', 'detector', 'trainer', 'annotator', 'converter'],
  ['cli'],
  ['(root)'],
]

/**
 * Where Bun-only APIs may be used: the edge folder as a whole, and the files listed here until their use moves
 * there (each with what it still needs; none is left). Everything else uses web standards and `node:` built-ins
 * that Bun and Deno both have.
 */
export const RUNTIME_EDGE = {
  folder: 'runtime',
  files: {} as Record<string, string>,
}

/** Bun's global, `bun`/`bun:*` modules, Bun's import.meta fields, files embedded by Bun's bundler. */
const RUNTIME_SPECIFIC: readonly RegExp[] = [
  /\bBun\??\.[A-Za-z]/,
  /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]bun(?::[\w-]+)?['"]/,
  /\bimport\.meta\.(?:dir|file|path|require)\b/,
  /\bwith\s*\{\s*type:\s*['"]file['"]\s*\}/,
]

export interface RuntimeSpecificUse {
  file: string
  line: number
  text: string
}

export interface StructureReport {
  files: string[]
  /** file → the src files it imports (relative to src/) */
  imports: Map<string, Set<string>>
  fileCycles: string[][]
  folderEdges: Map<string, Set<string>>
  folderCycles: string[][]
  /** `from → to` imports that go up the layer line, and folders that are on no layer */
  layerViolations: string[]
  tooLong: { file: string; lines: number }[]
  /** Bun-only code outside the runtime edge */
  runtimeSpecific: RuntimeSpecificUse[]
  /** files on RUNTIME_EDGE.files that no longer use anything runtime-specific (take them off the list) */
  staleEdgeFiles: string[]
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g

function sourceFiles(root: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(root)) {
    const path = join(root, entry)
    if (statSync(path).isDirectory()) found.push(...sourceFiles(path))
    else if (/\.ts$/.test(entry) && !entry.endsWith('.d.ts')) found.push(path)
  }
  return found
}

/** Comments out of the way (a `//` after `:` is a URL, not a comment), line breaks kept so line numbers stay. */
function withoutComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:])\/\/.*$/gm, '$1')
}

function runtimeSpecificUses(file: string, text: string): RuntimeSpecificUse[] {
  const uses: RuntimeSpecificUse[] = []
  withoutComments(text).split('\n').forEach((code, index) => {
    if (RUNTIME_SPECIFIC.some((pattern) => pattern.test(code))) uses.push({ file, line: index + 1, text: code.trim() })
  })
  return uses
}

/** The folder of a file below src/ (`detector`, `node` …); files directly in src/ are `(root)`. */
export function folderOf(file: string): string {
  const parts = file.split('/')
  return parts.length > 1 ? parts[0]! : '(root)'
}

/** Strongly connected components with more than one member (or a self-loop), by Tarjan's algorithm. */
function cyclesOf(nodes: Iterable<string>, edges: (node: string) => Iterable<string>): string[][] {
  let index = 0
  const indices = new Map<string, number>()
  const lowlinks = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (node: string) => {
    indices.set(node, index)
    lowlinks.set(node, index++)
    stack.push(node)
    onStack.add(node)
    for (const next of edges(node)) {
      if (!indices.has(next)) {
        visit(next)
        lowlinks.set(node, Math.min(lowlinks.get(node)!, lowlinks.get(next)!))
      } else if (onStack.has(next)) {
        lowlinks.set(node, Math.min(lowlinks.get(node)!, indices.get(next)!))
      }
    }
    if (lowlinks.get(node) === indices.get(node)) {
      const component: string[] = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== node)
      if (component.length > 1 || [...edges(node)].includes(node)) cycles.push(component.sort())
    }
  }
  for (const node of nodes) if (!indices.has(node)) visit(node)
  return cycles
}

export function checkStructure(srcRoot: string, edgeFiles: Record<string, string> = RUNTIME_EDGE.files): StructureReport {
  const root = resolve(srcRoot)
  const files = sourceFiles(root).map((path) => relative(root, path)).sort()
  const known = new Set(files)
  const imports = new Map<string, Set<string>>()
  const tooLong: StructureReport['tooLong'] = []
  const runtimeSpecific: RuntimeSpecificUse[] = []
  const staleEdgeFiles: string[] = []
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8')
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
    if (lines > MAX_LINES) tooLong.push({ file, lines })
    if (folderOf(file) !== RUNTIME_EDGE.folder) {
      const uses = runtimeSpecificUses(file, text)
      if (!(file in edgeFiles)) runtimeSpecific.push(...uses)
      else if (uses.length === 0) staleEdgeFiles.push(file)
    }
    const targets = new Set<string>()
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1]!
      if (!specifier.startsWith('.')) continue
      const target = relative(root, resolve(root, dirname(file), specifier))
      if (known.has(target)) targets.add(target)
    }
    imports.set(file, targets)
  }
  const folderEdges = new Map<string, Set<string>>()
  for (const [file, targets] of imports) {
    const from = folderOf(file)
    for (const target of targets) {
      const to = folderOf(target)
      if (from === to) continue
      if (!folderEdges.has(from)) folderEdges.set(from, new Set())
      folderEdges.get(from)!.add(to)
    }
  }
  const folders = new Set(files.map(folderOf))
  const line = LAYERS.flat()
  const layerViolations = [...folders].filter((folder) => !line.includes(folder)).sort().map((folder) => `${folder} is on no layer`)
  for (const [from, targets] of folderEdges) {
    if (!line.includes(from)) continue
    for (const to of targets) if (line.includes(to) && line.indexOf(to) > line.indexOf(from)) layerViolations.push(`${from} → ${to} goes up the layer line`)
  }
  return {
    files, imports, tooLong, layerViolations, runtimeSpecific, staleEdgeFiles,
    fileCycles: cyclesOf(files, (file) => imports.get(file) ?? []),
    folderEdges,
    folderCycles: cyclesOf(folders, (folder) => folderEdges.get(folder) ?? []),
  }
}

if (import.meta.main) {
  const report = checkStructure(join(import.meta.dirname, '..', 'src'))
  console.log('folder graph (each folder → the folders it imports):')
  for (const [from, to] of [...report.folderEdges].sort(([a], [b]) => a.localeCompare(b))) console.log(`  ${from} → ${[...to].sort().join(', ')}`)
  for (const cycle of report.folderCycles) console.log(`folder cycle: ${cycle.join(' ↔ ')}`)
  for (const violation of report.layerViolations) console.log(`layer: ${violation}`)
  for (const cycle of report.fileCycles) console.log(`file cycle: ${cycle.join(' ↔ ')}`)
  for (const { file, lines } of report.tooLong) console.log(`over ${MAX_LINES} lines: src/${file} (${lines})`)
  for (const { file, line, text } of report.runtimeSpecific) console.log(`runtime-specific outside src/${RUNTIME_EDGE.folder}/: src/${file}:${line}: ${text}`)
  for (const file of report.staleEdgeFiles) console.log(`on the runtime-edge list but uses nothing runtime-specific: src/${file}`)
  const violations = report.folderCycles.length + report.layerViolations.length + report.fileCycles.length + report.tooLong.length
    + report.runtimeSpecific.length + report.staleEdgeFiles.length
  console.log(violations === 0
    ? `${report.files.length} files: no cycles, none over ${MAX_LINES} lines, nothing runtime-specific outside the edge`
    : `${violations} violation(s)`)
  process.exit(violations === 0 ? 0 : 1)
}
