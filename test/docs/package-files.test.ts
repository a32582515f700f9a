/**
 * `npm install && npm start` from a fresh clone must leave `git status` clean and install quietly: the lock agrees
 * with package.json as npm would write it, bin targets are committed executable (npm chmods them), and every
 * dependency with an install script is approved or denied in `allowScripts` (npm 11 warns about the others and
 * will block them).
 */
import { describe, expect, test } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dir, '../..')
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'))
const isGitCheckout = existsSync(join(root, '.git'))

describe('package files as npm leaves them', () => {
  test('the lock file\'s root entry matches package.json', () => {
    const rootEntry = lock.packages['']
    const fields = ['name', 'version', 'license', 'bin', 'engines', 'dependencies', 'devDependencies', 'optionalDependencies'] as const
    expect(Object.fromEntries(fields.map((field) => [field, rootEntry[field]]))).toEqual(Object.fromEntries(fields.map((field) => [field, packageJson[field]])))
    const hasInstallScript = ['preinstall', 'install', 'postinstall'].some((script) => packageJson.scripts?.[script])
    expect(rootEntry.hasInstallScript ?? false).toBe(hasInstallScript)
  })

  test.skipIf(!isGitCheckout)('bin targets are committed executable, with a shebang', () => {
    for (const target of Object.values(packageJson.bin as Record<string, string>)) {
      const listed = Bun.spawnSync(['git', 'ls-files', '--stage', '--', target], { cwd: root }).stdout.toString()
      expect({ target, mode: listed.split(' ')[0] }).toEqual({ target, mode: '100755' })
      expect(readFileSync(join(root, target), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env bun')
    }
  })

  test('every dependency with an install script is approved or denied in allowScripts', () => {
    const withScripts = Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean; optional?: boolean; os?: string[] }>)
      .filter(([path, entry]) => path !== '' && entry.hasInstallScript)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length))
    expect(withScripts.length).toBeGreaterThan(0)
    expect([...new Set(withScripts)].filter((name) => typeof packageJson.allowScripts?.[name] !== 'boolean')).toEqual([])
  })

  test('onnxruntime-node does not download CUDA libraries on install, under npm 10 (.npmrc) and npm 11 (allowScripts)', () => {
    expect(readFileSync(join(root, '.npmrc'), 'utf8')).toMatch(/^onnxruntime-node-install=skip$/m)
    expect(packageJson.allowScripts['onnxruntime-node']).toBe(false)
  })
})
