/**
 * `npm start` the way containers and process managers run it: they signal npm, not the node. SIGTERM to npm alone
 * must reach the detector, which shuts down gracefully (logs `stopped`, frees its port) before npm exits 0; npm as
 * PID 1 of a PID namespace (`docker run … npm start`, then `docker stop`) is checked through `unshare`.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnChild, type Child } from '../support/child-process.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

const root = join(import.meta.dir, '../..')
const npm = Bun.which('npm')
const hasProc = existsSync('/proc/self/stat')
const hasSetsid = Bun.which('setsid') !== null
const canUnsharePid = hasProc && Bun.which('unshare') !== null && Bun.spawnSync(['unshare', '--pid', '--fork', 'true']).exitCode === 0
if (!npm) console.log('skipping npm start tests: npm is not on PATH')
if (!hasProc) console.log('skipping npm start tests: they find the node through /proc (Linux only)')
if (npm && hasProc && !canUnsharePid) console.log('skipping npm start as PID 1: `unshare --pid --fork` is not allowed here (needs root or user namespaces)')

/** Parent pid of every process, read from /proc. */
function parentPids(): Map<number, number> {
  const parents = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // the command name in brackets may hold spaces; the fields after it are fixed
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // the process ended while we looked
    }
  }
  return parents
}

function descendants(pid: number): number[] {
  const parents = parentPids()
  const found: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    const parent = queue.shift()!
    for (const [child, itsParent] of parents) {
      if (itsParent === parent) {
        found.push(child)
        queue.push(child)
      }
    }
  }
  return found
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  } catch {
    return []
  }
}

/** Running, not a zombie waiting for its parent. */
function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
  } catch {
    return false
  }
}

let cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  cleanups = []
})

/** Runs `npm start` (or other npm arguments, below `prefix`), waits until the detector listens; returns npm, its URL and the node's pid. */
async function startNpm(prefix: string[], npmArgs: string[] = ['start']): Promise<{ child: Child; url: string; nodePid: number }> {
  const temp = await makeTempDir('lln-npm-start-')
  const child = spawnChild([...prefix, npm!, ...npmArgs], {
    cwd: root,
    env: { PORT: '0', BIND_HOST: '127.0.0.1', DATA_FOLDER: join(temp.path, 'data'), LOG_LEVEL: 'info', npm_config_update_notifier: 'false' },
  })
  const nodePids = new Set<number>()
  cleanups.push(async () => {
    // whatever the test left behind (an orphaned node before the fix) must not outlive it
    for (const pid of [...descendants(child.proc.pid), ...nodePids].filter(alive)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    await child.kill('SIGKILL')
    await temp.cleanup()
  })
  const ready = await child.waitForLine((line) => line.startsWith('detector listening on '), 50_000)
  const [nodePid] = nodePidsUnder(child.proc.pid)
  if (nodePid === undefined) throw new Error(`no detector process below npm:\n${child.output()}`)
  nodePids.add(nodePid)
  return { child, url: ready.slice('detector listening on '.length).trim(), nodePid }
}

/** The Bun processes running the detector below `pid` (not a shell that started one). */
const nodePidsUnder = (pid: number) => descendants(pid).filter((p) => {
  const [program, script, command] = commandLine(p)
  // npm start runs src/cli/main.ts; npx the package's bin (a link to it)
  return /(^|\/)bun$/.test(program ?? '') && /(^src\/cli\/main\.ts|\/learning-loop-node)$/.test(script ?? '') && command === 'detector'
})

describe.skipIf(!npm || !hasProc)('npm start', () => {
  test('SIGTERM to npm alone stops the node gracefully, frees the port, and npm exits 0', async () => {
    const { child, url, nodePid } = await startNpm([])
    expect((await fetch(`${url}/health`)).status).toBe(200)

    process.kill(child.proc.pid, 'SIGTERM')
    const npmExit = await Promise.race([child.proc.exited, Bun.sleep(20_000).then(() => 'still running')])
    await waitFor(() => !alive(nodePid), 15_000, `the node (pid ${nodePid}) to exit after npm got SIGTERM`).catch((error) => {
      throw new Error(`${error.message}\nnpm: ${npmExit}\n${child.output()}`)
    })
    expect({ npmExit, stopped: child.output().includes('"msg":"stopped"') }).toEqual({ npmExit: 0, stopped: true })
    await expect(fetch(`${url}/health`)).rejects.toThrow()
  })

  test('npx learning-loop-node detector: SIGTERM to npm alone stops the node too (npm exec starts it through a shell that does not pass signals on)', async () => {
    const { child, url, nodePid } = await startNpm([], ['exec', '--', 'learning-loop-node', 'detector'])
    expect((await fetch(`${url}/health`)).status).toBe(200)
    process.kill(child.proc.pid, 'SIGTERM')
    await waitFor(() => !alive(nodePid), 15_000, `the node (pid ${nodePid}) to exit after npm got SIGTERM`).catch((error) => {
      throw new Error(`${error.message}\n${child.output()}`)
    })
    expect(child.output()).toContain('"msg":"stopped"')
    expect(child.output()).toContain('the npm process that started this node exited')
    await expect(fetch(`${url}/health`)).rejects.toThrow()
  })

  test.skipIf(!hasSetsid)('Ctrl-C in a terminal (SIGINT to the process group, which npm forwards too) stops the node gracefully', async () => {
    // setsid makes npm the leader of its own process group, as a shell does for a foreground job
    const { child, nodePid } = await startNpm(['setsid'])
    process.kill(-child.proc.pid, 'SIGINT')
    const npmExit = await Promise.race([child.proc.exited, Bun.sleep(20_000).then(() => 'still running')])
    await waitFor(() => !alive(nodePid), 15_000, `the node (pid ${nodePid}) to exit after Ctrl-C`)
    expect({ npmExit, stopped: child.output().includes('"msg":"stopped"') }).toEqual({ npmExit: 0, stopped: true })
  })

  test.skipIf(!canUnsharePid)('npm as PID 1 of a PID namespace (docker run, docker stop): the node shuts down gracefully', async () => {
    const { child } = await startNpm(['unshare', '--pid', '--fork', '--kill-child'])
    // unshare forks npm, which is PID 1 inside the namespace; docker stop signals exactly that process
    const npmPid = descendants(child.proc.pid).find((pid) => /^npm( |$)/.test(commandLine(pid)[0] ?? ''))
    expect(npmPid).toBeDefined()
    process.kill(npmPid!, 'SIGTERM')
    const exit = await Promise.race([child.proc.exited, Bun.sleep(20_000).then(() => 'still running')])
    expect({ exit, stopped: child.output().includes('"msg":"stopped"') }).toEqual({ exit: 0, stopped: true })
  })
})
