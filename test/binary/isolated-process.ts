/**
 * Runs a compiled binary so that it cannot see the repository: a fresh environment (no inherited
 * variables), cwd and HOME in a temp folder, and, where user namespaces are allowed, a private mount
 * namespace in which the repository folder is covered by an empty tmpfs (`unshare -rm`). A binary that
 * still works there reads nothing from the repo or its node_modules.
 */
import type { Subprocess } from 'bun'

export interface IsolatedRun {
  /** the process; with unshare it is the binary itself (sh execs it), so signals reach it */
  process: Subprocess<'ignore', 'pipe', 'pipe'>
  /** stdout and stderr lines so far */
  stdout: string[]
  stderr: string[]
  /** resolves with the exit code once both streams are drained */
  exited: Promise<number>
}

/** True when this machine lets an unprivileged user namespace mount a tmpfs over `hiddenDir`. */
export function canHideFolder(hiddenDir: string): boolean {
  try {
    const probe = Bun.spawnSync(['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs none "$0" && test -z "$(ls -A "$0")"', hiddenDir], { stdout: 'ignore', stderr: 'ignore' })
    return probe.exitCode === 0
  } catch {
    return false
  }
}

async function collectLines(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
  const decoder = new TextDecoder()
  let pending = ''
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true })
    const lines = pending.split('\n')
    pending = lines.pop()!
    into.push(...lines)
  }
  if (pending) into.push(pending)
}

export function runIsolated(command: string[], options: { cwd: string; env: Record<string, string>; hiddenDir?: string }): IsolatedRun {
  const argv = options.hiddenDir
    ? ['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs none "$0" && exec "$@"', options.hiddenDir, ...command]
    : command
  const child = Bun.spawn(argv, { cwd: options.cwd, env: options.env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const stdout: string[] = []
  const stderr: string[] = []
  const drained = Promise.all([collectLines(child.stdout, stdout), collectLines(child.stderr, stderr)])
  return { process: child, stdout, stderr, exited: drained.then(() => child.exited) }
}

/** The absolute paths of the files mapped into a running process (its code, libraries, mapped files). */
export async function mappedFiles(pid: number): Promise<string[]> {
  const maps = await Bun.file(`/proc/${pid}/maps`).text()
  const paths = new Set<string>()
  for (const line of maps.split('\n')) {
    const at = line.indexOf('/')
    if (at >= 0) paths.add(line.slice(at).replace(/ \(deleted\)$/, ''))
  }
  return [...paths]
}
