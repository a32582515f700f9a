/**
 * serving.test.ts again, under Deno: the Deno path of src/runtime/ (Deno.serve, the WebSocket stand-in, the
 * socket.io engine loaded from data: modules) serves REST and socket.io with the permissions the README names.
 */
import { expect, test } from 'bun:test'
import { join } from 'node:path'

const REPO = join(import.meta.dir, '..', '..')
const DENO = join(REPO, 'node_modules', '.bin', 'deno')

test('deno test runs the serving tests on the Deno path and they pass', () => {
  const run = Bun.spawnSync([DENO, 'test', '--config', join(REPO, 'deno.json'), '--no-prompt', '--allow-net=127.0.0.1', '--allow-env', '--allow-read', join(import.meta.dir, 'serving.test.ts')], {
    cwd: REPO, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1' }, stdout: 'pipe', stderr: 'pipe',
  })
  const output = run.stdout.toString() + run.stderr.toString()
  try {
    expect(output).toContain('the runtime edge knows which runtime runs it ... ok')
    expect(output).toContain('socket.io over polling: acks, binary attachments both ways ... ok')
    expect(output).toMatch(/ok \| 8 passed \| 0 failed/)
    expect(run.exitCode).toBe(0)
  } catch (error) {
    console.error(`deno test said (exit ${run.exitCode}):\n${output}`)
    throw error
  }
}, 120_000)
