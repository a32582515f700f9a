import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnChild, type Child } from './child-process.ts'

const ROOT = join(import.meta.dir, '../..')
const MAIN = join(ROOT, 'src/cli/main.ts')
const READY_LINE = / listening on (http:\/\/\S+)/

/** A port that was free a moment ago: for a node that must listen on a port known before it starts, or come back on it. */
export function freePort(): number {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = probe.port
  probe.stop(true)
  return port
}

export interface NodeProcess {
  child: Child
  /** the address of its "… listening on <url>" line */
  url: string
  /** that line */
  line: string
}

export type NodeRuntime = 'bun' | 'deno'

/**
 * The command line that starts `learning-loop-node <command>`: src/cli/main.ts under this Bun, or under Deno as
 * the `deno task <command>` of deno.json runs it (the same permission flags, without `deno task` between the
 * test and the node, so signals and exit codes are the node's own).
 */
export function nodeCommandLine(runtime: NodeRuntime, args: string[]): string[] {
  if (runtime === 'bun') return [process.execPath, MAIN, ...args]
  const task = (JSON.parse(readFileSync(join(ROOT, 'deno.json'), 'utf8')) as { tasks: Record<string, string> }).tasks[args[0]!]
  if (!task) throw new Error(`deno.json has no task ${args[0]}`)
  const [deno, ...words] = task.split(/\s+/)
  return [join(ROOT, deno!), ...words.map((word) => (word === 'src/cli/main.ts' ? MAIN : word)).slice(0, -1), ...args]
}

/**
 * `learning-loop-node <args>` (src/cli/main.ts under this Bun, or under Deno with `runtime: 'deno'`) as a child
 * process, resolved once it prints its "… listening on <url>" line. It listens on a free port of 127.0.0.1 unless
 * `env` or a flag says otherwise. A node that exits or stays silent instead is killed, and the error carries its
 * output.
 */
export async function startNodeProcess(args: string[], options: { env?: Record<string, string>; cwd?: string; runtime?: NodeRuntime } = {}): Promise<NodeProcess> {
  const child = spawnChild(nodeCommandLine(options.runtime ?? 'bun', args), { env: { PORT: '0', BIND_HOST: '127.0.0.1', ...options.env }, cwd: options.cwd })
  try {
    const line = await child.waitForLine((text) => READY_LINE.test(text), 60_000)
    return { child, url: READY_LINE.exec(line)![1]!, line }
  } catch (error) {
    await child.kill('SIGKILL')
    throw error
  }
}

/** `learning-loop-node <args>` run to its end (a `loop admin …` call): its exit code and output. */
export async function runNodeCommand(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { code, stdout, stderr }
}
