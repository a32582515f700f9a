import { describe, expect, test } from 'bun:test'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SETTINGS } from '../../src/config/settings.ts'
import { registeredMetrics } from '../../scripts/metrics-table.ts'

const root = join(import.meta.dir, '../..')
const readme = await readFile(join(root, 'README.md'), 'utf8')
const packageJson = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))

describe('README is the front door', () => {
  test('documents every environment variable and its flag', () => {
    const missing = Object.values(SETTINGS).flatMap((s) => [...s.env.map((e) => `\`${e}\``), `\`--${s.flag}\``]).filter((name) => !readme.includes(name))
    expect(missing).toEqual([])
  })

  test('documents every environment variable the code reads, also those outside the settings table', async () => {
    const read = new Set<string>()
    for (const file of await readdir(join(root, 'src'), { recursive: true })) {
      if (!file.endsWith('.ts')) continue
      const source = await readFile(join(root, 'src', file), 'utf8')
      for (const pattern of [/\benv\.([A-Z][A-Z0-9_]{2,})\b/g, /\benv: '([A-Z][A-Z0-9_]{2,})'/g, /\benv\[['"]([A-Z][A-Z0-9_]{2,})['"]\]/g]) {
        for (const [, name] of source.matchAll(pattern)) read.add(name!)
      }
    }
    expect(read.size).toBeGreaterThan(8)
    expect([...read].filter((name) => !readme.includes(`\`${name}\``) && !readme.includes(`${name}=`))).toEqual([])
  })

  test('lists every metric the nodes export', async () => {
    const metrics = await registeredMetrics()
    expect(metrics.length).toBeGreaterThan(40)
    expect(metrics.filter((m) => !readme.includes(`| \`${m.name}\` |`)).map((m) => m.name)).toEqual([])
  })

  test('documents every CLI command', async () => {
    const main = await readFile(join(root, 'src/cli/main.ts'), 'utf8')
    const commands = [...main.matchAll(/^ {2}(\w+): \{\n {4}summary:/gm)].map((m) => m[1]!)
    expect(commands.length).toBeGreaterThan(1)
    expect(commands.filter((c) => !readme.includes(`learning-loop-node ${c}`))).toEqual([])
  })

  test('the quick start is exactly the two set-up commands, and they exist', () => {
    expect(readme).toContain('npm install && npm start')
    expect(readme).toContain('npm test')
    expect(packageJson.scripts.start).toBeDefined()
    expect(packageJson.scripts.test).toBeDefined()
  })
})
