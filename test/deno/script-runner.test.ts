/**
 * The command a child script runs with (`{bun}` in a trainer's command): this Bun's executable, or `deno run` with
 * exactly the permissions the Deno process holds (scoped ones left out), and a child started with it can do what
 * the parent may and nothing more.
 */
import { expect, test } from 'bun:test'
import { join } from 'node:path'
import { scriptRunnerCommand } from '../../src/runtime/script-runner.ts'

const REPO = join(import.meta.dir, '..', '..')
const DENO = join(REPO, 'node_modules', '.bin', 'deno')
const PRINT = join(import.meta.dir, 'fixtures', 'print-script-runner.ts')

function denoPrints(flags: string[]): string[] {
  const run = Bun.spawnSync([DENO, 'run', '--no-prompt', ...flags, PRINT], { cwd: REPO, env: { PATH: '/usr/bin:/bin', HOME: '/tmp', NO_COLOR: '1' }, stdout: 'pipe', stderr: 'pipe' })
  if (run.exitCode !== 0) throw new Error(`deno exited with ${run.exitCode}: ${run.stderr.toString()}`)
  return JSON.parse(run.stdout.toString()) as string[]
}

test('on Bun: the Bun executable itself', () => {
  expect(scriptRunnerCommand()).toEqual([process.execPath])
})

test('on Deno: deno run with the permissions granted in full and the sys kinds granted one by one', () => {
  const [deno, ...args] = denoPrints(['--allow-read', '--allow-env', '--allow-ffi', '--allow-sys=uid,statfs'])
  expect(deno).toEndWith('deno')
  expect(args).toEqual(['run', '--no-prompt', '--allow-read', '--allow-env', '--allow-ffi', '--allow-sys=uid,statfs'])
  // a permission given for some paths or hosts only is not passed on; all of sys is one flag
  expect(denoPrints(['--allow-read', '--allow-net=127.0.0.1', '--allow-sys']).slice(1)).toEqual(['run', '--no-prompt', '--allow-read', '--allow-sys'])
}, 30_000)

test('a child started with that command may read what the parent may, and is refused what the parent was', () => {
  const [deno, ...args] = denoPrints(['--allow-read'])
  const script = `import { readFileSync } from 'node:fs'; console.log(readFileSync(${JSON.stringify(join(REPO, 'package.json'))}, 'utf8').length > 0, typeof Deno.env.toObject)`
  const child = Bun.spawnSync([deno!, ...args, `data:text/javascript,${encodeURIComponent(script)}`], { cwd: REPO, env: { PATH: '/usr/bin:/bin', HOME: '/tmp' }, stdout: 'pipe', stderr: 'pipe' })
  expect(child.stdout.toString().trim()).toBe('true function')
  const envChild = Bun.spawnSync([deno!, ...args, `data:text/javascript,${encodeURIComponent('console.log(Deno.env.get("HOME"))')}`], { cwd: REPO, env: { PATH: '/usr/bin:/bin', HOME: '/tmp' }, stdout: 'pipe', stderr: 'pipe' })
  expect(envChild.exitCode).not.toBe(0)
  expect(envChild.stderr.toString()).toContain('NotCapable')
}, 30_000)
