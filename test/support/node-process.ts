import { join } from 'node:path'
import { spawnChild, type Child } from './child-process.ts'

const MAIN = join(import.meta.dir, '../../src/cli/main.ts')
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

/**
 * `learning-loop-node <args>` (src/cli/main.ts under this Bun) as a child process, resolved once it prints its
 * "… listening on <url>" line. It listens on a free port of 127.0.0.1 unless `env` or a flag says otherwise.
 * A node that exits or stays silent instead is killed, and the error carries its output.
 */
export async function startNodeProcess(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<NodeProcess> {
  const child = spawnChild([process.execPath, MAIN, ...args], { env: { PORT: '0', BIND_HOST: '127.0.0.1', ...options.env }, cwd: options.cwd })
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
