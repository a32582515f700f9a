import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { spawnChild } from '../support/child-process.ts'
import { makeTempDir } from '../support/temp.ts'

const photo = join(import.meta.dir, '../fixtures/astronaut.jpg')

/**
 * A detection that never returns must not keep a detector from stopping: SIGTERM ends the process within
 * 10 s (docker's default stop timeout), whatever hangs, and the hung request gets an answer or a closed connection.
 */
describe('graceful shutdown with a model that never answers', () => {
  for (const mode of ['detect hangs', 'detect and dispose hang']) {
    test(`${mode}: SIGTERM exits 0 within 10 s`, async () => {
      const temp = await makeTempDir()
      const child = spawnChild([process.execPath, join(import.meta.dir, 'fixtures/stuck-detector.ts'), join(temp.path, 'data'), ...(mode === 'detect and dispose hang' ? ['--stuck-dispose'] : [])])
      try {
        const { port } = JSON.parse(await child.waitForLine((line) => line.startsWith('{"port"'), 30_000))
        const url = `http://127.0.0.1:${port}`
        while ((await fetch(`${url}/ready`)).status !== 200) await Bun.sleep(100)
        const form = new FormData()
        form.append('file', new File([await readFile(photo)], 'astronaut.jpg', { type: 'image/jpeg' }))
        const hung = fetch(`${url}/detect`, { method: 'POST', body: form, headers: { autoupload: 'disabled' } }).then((r) => r.status, () => 'connection closed')
        await child.waitForLine((line) => line === 'detect called', 10_000)
        const signalled = performance.now()
        child.proc.kill('SIGTERM')
        const code = await Promise.race([child.proc.exited, Bun.sleep(12_000).then(() => 'still running')])
        const tookMs = performance.now() - signalled
        expect(code, child.output()).toBe(0)
        expect(tookMs).toBeLessThan(10_000)
        expect(await hung).not.toBe(200)
        expect(child.output()).toContain('in-flight work did not finish in time')
        if (mode === 'detect and dispose hang') expect(child.output()).toContain('the model could not be freed in time')
        else expect(child.output()).toContain('detections still running at shutdown were cut off')
      } finally {
        await child.kill('SIGKILL')
        await temp.cleanup()
      }
    }, 45_000)
  }
})
