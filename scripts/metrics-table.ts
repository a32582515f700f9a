// Prints the Markdown table of every metric the nodes export (name, type, meaning) for README.md, read from
// the registrations in src/ (`metrics.counter('name', 'help')` and the like).
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { METRICS_NAMESPACE } from '../src/foundation/metrics.ts'

const SRC = join(import.meta.dir, '..', 'src')
const REGISTRATION = /\.(counter|gauge|histogram)\('([a-z_]+)', '([^']+)'/g
const ANY_REGISTRATION = /\.(counter|gauge|histogram)\(/g

export interface MetricDoc {
  name: string
  type: string
  help: string
  /** the source folder that registers it (detector, inference, node, …) */
  area: string
}

export async function registeredMetrics(): Promise<MetricDoc[]> {
  const found = new Map<string, MetricDoc>()
  for (const file of await readdir(SRC, { recursive: true })) {
    if (!file.endsWith('.ts')) continue
    const source = await readFile(join(SRC, file), 'utf8')
    const readable = [...source.matchAll(REGISTRATION)]
    // a registration this table cannot read would silently drop out of the README
    if (readable.length !== [...source.matchAll(ANY_REGISTRATION)].length) {
      throw new Error(`${file}: register metrics as .counter|gauge|histogram('snake_name', 'help text', …) on one line, so scripts/metrics-table.ts can list them`)
    }
    for (const [, type, name, help] of readable) {
      found.set(name!, { name: `${METRICS_NAMESPACE}${name}`, type: type!, help: help!, area: file.split('/')[0]! })
    }
  }
  return [...found.values()].sort((a, b) => a.area.localeCompare(b.area) || a.name.localeCompare(b.name))
}

if (import.meta.main) {
  const rows = (await registeredMetrics()).map((m) => `| \`${m.name}\` | ${m.type} | ${m.area} | ${m.help.replace(/\|/g, '\\|')} |`)
  console.log(['| metric | type | from | meaning |', '|---|---|---|---|', ...rows].join('\n'))
}
