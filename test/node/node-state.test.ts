import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { readFile, writeFile, readdir, chmod, mkdir } from 'node:fs/promises'
import { loadOrCreateNodeUuid, identityKey } from '../../src/node/node-identity.ts'
import { resolveDataFolder } from '../../src/node/data-folder.ts'
import { writeFileAtomic } from '../../src/foundation/atomic-file.ts'
import { RepeatLoop } from '../../src/node/repeat-loop.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

describe('node identity (uuids.json, §3.2)', () => {
  test('creates, persists and reuses a uuid per node name, keeping other entries', async () => {
    const temp = await makeTempDir()
    try {
      await writeFile(join(temp.path, 'uuids.json'), JSON.stringify({ other_node: 'keep-me' }))
      const first = await loadOrCreateNodeUuid(temp.path, 'My Trainer')
      expect(first).toMatch(/^[0-9a-f-]{36}$/)
      expect(await loadOrCreateNodeUuid(temp.path, 'My Trainer')).toBe(first)
      const stored = JSON.parse(await readFile(join(temp.path, 'uuids.json'), 'utf8'))
      expect(stored).toEqual({ other_node: 'keep-me', my_trainer: first })
      expect(identityKey('My Trainer')).toBe('my_trainer')
    } finally {
      await temp.cleanup()
    }
  })
  test('a corrupt uuids.json is reported, not overwritten', async () => {
    const temp = await makeTempDir()
    try {
      await writeFile(join(temp.path, 'uuids.json'), '{not json')
      await expect(loadOrCreateNodeUuid(temp.path, 'x')).rejects.toThrow('uuids.json is not a JSON object')
      expect(await readFile(join(temp.path, 'uuids.json'), 'utf8')).toBe('{not json')
    } finally {
      await temp.cleanup()
    }
  })
})

describe('data folder', () => {
  test('a configured folder is created and used', async () => {
    const temp = await makeTempDir()
    try {
      const choice = await resolveDataFolder('nested/data', temp.path)
      expect(choice.path).toBe(join(temp.path, 'nested/data'))
      expect(choice.reason).toContain('configured')
    } finally {
      await temp.cleanup()
    }
  })
  test('without configuration: /data when writable, else ./data', async () => {
    const temp = await makeTempDir()
    try {
      const choice = await resolveDataFolder(undefined, temp.path)
      expect([join(temp.path, 'data'), '/data']).toContain(choice.path)
      expect(choice.reason.length).toBeGreaterThan(0)
    } finally {
      await temp.cleanup()
    }
  })
})

describe('atomic writes', () => {
  test('replace content without leaving temp files', async () => {
    const temp = await makeTempDir()
    try {
      const file = join(temp.path, 'state.json')
      await writeFileAtomic(file, 'one')
      await writeFileAtomic(file, 'two')
      expect(await readFile(file, 'utf8')).toBe('two')
      expect(await readdir(temp.path)).toEqual(['state.json'])
    } finally {
      await temp.cleanup()
    }
  })
  test('a failing write leaves the old content', async () => {
    if (process.getuid?.() === 0) return // root ignores directory permissions; nothing to show
    const temp = await makeTempDir()
    try {
      const dir = join(temp.path, 'ro')
      await mkdir(dir)
      await writeFileAtomic(join(dir, 'f'), 'old')
      await chmod(dir, 0o500)
      await expect(writeFileAtomic(join(dir, 'f'), 'new')).rejects.toThrow()
      expect(await readFile(join(dir, 'f'), 'utf8')).toBe('old')
    } finally {
      await temp.cleanup()
    }
  })
})

describe('repeat loop', () => {
  test('runs one iteration at a time, survives failures, skips while muted, stops', async () => {
    let running = 0
    let maxConcurrent = 0
    let calls = 0
    const loop = new RepeatLoop(async () => {
      calls++
      running++
      maxConcurrent = Math.max(maxConcurrent, running)
      await Bun.sleep(5)
      running--
      if (calls === 2) throw new Error('boom')
    }, 1)
    loop.start()
    void loop.runOnce() // an explicit run while the schedule runs must not overlap it
    await waitFor(() => calls >= 5, 5_000, 'five iterations')
    expect(maxConcurrent).toBe(1)
    expect(loop.failures).toBe(1)
    loop.muted = true
    await Bun.sleep(20)
    const callsWhileMuted = calls
    await Bun.sleep(30)
    expect(calls).toBe(callsWhileMuted)
    await loop.stop()
    loop.muted = false
    const callsAfterStop = calls
    await Bun.sleep(30)
    expect(calls).toBe(callsAfterStop)
    expect(loop.running).toBe(false)
  })
})
