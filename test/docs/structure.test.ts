/**
 * The layout rules of ARCHITECTURE.md over src/, through scripts/check-structure.ts: folders form no cycle and
 * import only folders before them on the layer line; files form no import cycle (type-only imports count); no
 * source file is over 400 lines; nothing Bun-only outside the runtime edge.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { checkStructure } from '../../scripts/check-structure.ts'
import { makeTempDir } from '../support/temp.ts'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** A src/ tree of the given files (path → source text). */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await makeTempDir('lln-structure-')
  cleanups.push(dir.cleanup)
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir.path, path)), { recursive: true })
    await writeFile(join(dir.path, path), text)
  }
  return dir.path
}

describe('layers', () => {
  test('src/ has no folder cycle and no import up the layer line', () => {
    const report = checkStructure(join(import.meta.dirname, '../../src'))
    expect(report.folderCycles).toEqual([])
    expect(report.layerViolations).toEqual([])
  })

  test('src/ has no import cycle between files (type-only included) and no file over 400 lines', () => {
    const report = checkStructure(join(import.meta.dirname, '../../src'))
    expect(report.fileCycles).toEqual([])
    expect(report.tooLong).toEqual([])
  })

  test('a cycle through a type-only import and a long file are reported', async () => {
    const src = await tree({
      'detector/detector-node.ts': `import { registerRoutes } from './rest-routes.ts'\nexport class DetectorNode {}\n`,
      'detector/rest-routes.ts': `import type { DetectorNode } from './detector-node.ts'\nexport function registerRoutes(node: DetectorNode) {}\n`,
      'detector/outbox.ts': 'export const line = 1\n'.repeat(401),
    })
    const report = checkStructure(src)
    expect(report.fileCycles).toEqual([['detector/detector-node.ts', 'detector/rest-routes.ts']])
    expect(report.tooLong).toEqual([{ file: 'detector/outbox.ts', lines: 401 }])
  })

  test('an import up the line, a folder on no layer and a folder cycle are each reported', async () => {
    const src = await tree({
      'foundation/log.ts': `import { NodeRuntime } from '../node/node-runtime.ts'\n`,
      'node/node-runtime.ts': `import type { Logger } from '../foundation/log.ts'\nexport class NodeRuntime {}\n`,
      'contract/index.ts': `import { config } from '../config/settings.ts'\n`,
      'config/settings.ts': `export const config = 1\n`,
      'plugins/extra.ts': `import { config } from '../config/settings.ts'\n`,
    })
    const report = checkStructure(src)
    expect(report.layerViolations.sort()).toEqual([
      'contract → config goes up the layer line',
      'foundation → node goes up the layer line',
      'plugins is on no layer',
    ])
    expect(report.folderCycles).toEqual([['foundation', 'node']])
  })
})

describe('runtime edge', () => {
  test('src/ uses Bun-only APIs only in src/runtime/ and the files left for it, and each of those still needs it', () => {
    const report = checkStructure(join(import.meta.dirname, '../../src'))
    expect(report.runtimeSpecific).toEqual([])
    expect(report.staleEdgeFiles).toEqual([])
  })

  test("Bun's global, bun: modules, import.meta.dir and embedded files are reported outside the edge, with their lines", async () => {
    const edgeFiles = { 'inference/image-decoding.ts': 'Bun.Image', 'inference/vulkan-probe.ts': 'bun:ffi' }
    const [edgeFile, staleFile] = Object.keys(edgeFiles) as [string, string]
    const src = await tree({
      'trainer/executor.ts': `import type { Subprocess } from 'bun'\n// Bun.spawn in a comment is fine\nexport const run = () => Bun.spawn(['true'])\n`,
      'local-loop/loop-store.ts': `const { Database } = require('bun:sqlite')\nexport const url = 'http://x' // Bun.file\n`,
      'inference/builtin-model.ts': `export const dir = import.meta.dir\nexport const fine = import.meta.dirname\n`,
      'detector/page.ts': `import page from './page.html' with { type: 'file' }\nexport const name = 'bun'\n`,
      'runtime/serve.ts': `export const serve = Bun.serve\n`,
      [edgeFile]: `export const image = Bun.Image\n`,
      [staleFile]: `export const standard = 1\n`,
    })
    const report = checkStructure(src, edgeFiles)
    expect(report.runtimeSpecific.map(({ file, line }) => `${file}:${line}`).sort()).toEqual([
      'detector/page.ts:1', 'inference/builtin-model.ts:1', 'local-loop/loop-store.ts:1', 'trainer/executor.ts:1', 'trainer/executor.ts:3',
    ])
    expect(report.staleEdgeFiles).toEqual([staleFile])
  })
})
