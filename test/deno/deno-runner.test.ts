/**
 * `npm run test:deno` (deno test, configured by deno.json) must be able to fail: a fixture with one passing
 * and one failing test, run through the same config and shim, has to report exactly that and exit non-zero.
 */
import { expect, test } from 'bun:test'
import { join } from 'node:path'

const REPO = join(import.meta.dir, '..', '..')
const DENO = join(REPO, 'node_modules', '.bin', 'deno')

test('deno test with the bun:test shim reports a failing expectation as a failure', () => {
  const run = Bun.spawnSync([DENO, 'test', '--config', join(REPO, 'deno.json'), join(import.meta.dir, 'fixtures', 'failing.deno-fixture.ts')], {
    cwd: REPO, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1' }, stdout: 'pipe', stderr: 'pipe',
  })
  const output = run.stdout.toString() + run.stderr.toString()
  try {
    expect(run.exitCode).not.toBe(0)
    expect(output).toContain('the shim under Deno > a true expectation passes ... ok')
    expect(output).toContain('the shim under Deno > a false expectation fails ... FAILED')
    expect(output).toMatch(/1 passed \| 1 failed/)
    expect(output).toContain('toEqual')
  } catch (error) {
    console.error(`deno test said (exit ${run.exitCode}):\n${output}`)
    throw error
  }
}, 60_000)
