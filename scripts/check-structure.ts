#!/usr/bin/env bun
/**
 * The house rules of the layout (design.md, ARCHITECTURE.md), checked over src/: no import cycle between files
 * (type-only imports count), none between folders, every folder imports only folders before it on the layer line
 * (LAYERS), and no source file over 400 lines. `bun scripts/check-structure.ts` prints the
 * folder graph and every violation and exits 1 when there is one; test/docs/structure.test.ts runs it in CI.
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

export function checkStructure(srcRoot: string): StructureReport {
  const root = resolve(srcRoot)
  const files = sourceFiles(root).map((path) => relative(root, path)).sort()
  const known = new Set(files)
  const imports = new Map<string, Set<string>>()
  const tooLong: StructureReport['tooLong'] = []
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8')
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
    if (lines > MAX_LINES) tooLong.push({ file, lines })
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
    files, imports, tooLong, layerViolations,
    fileCycles: cyclesOf(files, (file) => imports.get(file) ?? []),
    folderEdges,
    folderCycles: cyclesOf(folders, (folder) => folderEdges.get(folder) ?? []),
  }
}

if (import.meta.main) {
  const report = checkStructure(join(import.meta.dir, '..', 'src'))
  console.log('folder graph (each folder → the folders it imports):')
  for (const [from, to] of [...report.folderEdges].sort(([a], [b]) => a.localeCompare(b))) console.log(`  ${from} → ${[...to].sort().join(', ')}`)
  for (const cycle of report.folderCycles) console.log(`folder cycle: ${cycle.join(' ↔ ')}`)
  for (const violation of report.layerViolations) console.log(`layer: ${violation}`)
  for (const cycle of report.fileCycles) console.log(`file cycle: ${cycle.join(' ↔ ')}`)
  for (const { file, lines } of report.tooLong) console.log(`over ${MAX_LINES} lines: src/${file} (${lines})`)
  const violations = report.folderCycles.length + report.layerViolations.length + report.fileCycles.length + report.tooLong.length
  console.log(violations === 0 ? `${report.files.length} files: no cycles, none over ${MAX_LINES} lines` : `${violations} violation(s)`)
  process.exit(violations === 0 ? 0 : 1)
}
