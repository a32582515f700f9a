/**
 * Deno ends a terminated Worker's thread (and frees what it held: a GPU device) after `terminate()` returns; a
 * process that exited meanwhile crashed in the GPU driver's exit handlers. An engine on Deno counts as disposed only
 * once its workers' threads have ended.
 */
import { expect, test } from 'bun:test'
import { join } from 'node:path'

const REPO = join(import.meta.dir, '..', '..')

test('on Deno, the inference worker\'s thread has ended once engine.dispose() has resolved', async () => {
  const proc = Bun.spawn([join(REPO, 'node_modules', '.bin', 'deno'), 'run', '-A', join(REPO, 'test', 'deno', 'fixtures', 'engine-dispose-threads.ts')], {
    cwd: REPO, env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'warn' }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe',
  })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  if (code !== 0) throw new Error(`the probe exited ${code}:\n${stderr.slice(-3000)}`)
  const { running, afterDispose } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { running: number[]; afterDispose: number[] }
  expect(running.length).toBeGreaterThanOrEqual(1)
  // the Worker's own thread (the first): a thread onnxruntime started from it may live on, idle, in the process
  expect(afterDispose).not.toContain(running[0]!)
}, 60_000)
