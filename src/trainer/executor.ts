import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { createLogger, errorMessage, type Logger } from '../foundation/log.ts'
import { GROUP_MEMBERS_VISIBLE, isProcessGroupAlive, processGroupMembers, signalProcessGroup } from './process-group.ts'
import { DEFAULT_MAX_LOG_BYTES, DEFAULT_MAX_LOG_FILES, RotatingLogFile } from './rotating-log-file.ts'

/**
 * Runs a training (or detection) command as the leader of its OWN process group, streams stdout and stderr
 * into a rotating log file in the training folder, hands every output line to listeners (progress parsing),
 * and on stop, abort, exit of the leader, or exit of our own process signals the WHOLE group: SIGTERM first,
 * SIGKILL after a grace period. No orphan may keep holding a GPU (§8.6, §15.12, upstream PR #81).
 *
 * If our process is SIGKILLed (or OOM-killed) no handler runs; for that the command is wrapped in a tiny
 * `/bin/sh` watchdog, in the same group, that kills the group within about a second of our pid going away.
 */

export interface ExecutorOptions {
  /** working directory of the command (the training folder) */
  cwd: string
  /** the log file, opened for append; upstream name `last_training.log` */
  logPath: string
  maxLogBytes?: number
  maxLogFiles?: number
  /** how long a graceful stop waits after SIGTERM before SIGKILL */
  stopGraceMs?: number
  /** how long a cancellation (abort, shutdown) waits after SIGTERM before SIGKILL */
  cancelGraceMs?: number
  /** wrap the command in the parent-death watchdog (default: on where /bin/sh exists) */
  watchParent?: boolean
  log?: Logger
}

export interface ExecutorExit {
  /** exit status of the command; null when it was ended by a signal */
  code: number | null
  signal: string | null
  /** true when stop()/kill()/cancel() ended it, so a non-zero status is expected */
  stoppedByUs: boolean
}

export type OutputStream = 'stdout' | 'stderr'
export type LineListener = (line: string, stream: OutputStream) => void

export const DEFAULT_STOP_GRACE_MS = 15_000
export const DEFAULT_CANCEL_GRACE_MS = 3_000
/** Longest line handed to listeners; longer output is split so memory stays bounded. */
const MAX_LINE_CHARS = 1 << 20
/** How long to wait for the output pipes to drain after the group is gone. */
const DRAIN_TIMEOUT_MS = 2_000
const GROUP_POLL_MS = 50
const KILL_SETTLE_MS = 5_000
const LEFTOVER_SETTLE_MS = 300
const WATCHDOG_POLL_SECONDS = 1

// `$1` is our pid; the rest is the command. The watchdog sits in the command's group and kills it when we vanish.
// Each shell waits for what it killed, so the watchdog and its `sleep` are gone, reaped, when the command's shell
// exits: unreaped, they would be orphans in the group until PID 1 reaps them, which some inits do only now and
// then, and a group check that cannot read /proc (Deno without --allow-all) counts those zombies as members.
const WATCHDOG_SCRIPT = [
  'parent=$1; shift',
  `( trap 'kill $s 2>/dev/null; wait $s; exit 0' TERM; while kill -0 "$parent" 2>/dev/null; do sleep ${WATCHDOG_POLL_SECONDS} & s=$!; wait $s; done; kill -KILL 0 ) </dev/null >/dev/null 2>&1 &`,
  'watchdog=$!',
  '"$@"',
  'status=$?',
  'kill "$watchdog" 2>/dev/null',
  'wait "$watchdog"',
  'exit "$status"',
].join('\n')

const liveGroups = new Set<number>()
let exitHooksInstalled = false

/** Process groups of executors still running in this process (for diagnostics and tests). */
export function runningProcessGroups(): number[] {
  return [...liveGroups]
}

function killAllGroupsNow(signal: NodeJS.Signals): void {
  for (const pgid of liveGroups) {
    try {
      signalProcessGroup(pgid, signal)
    } catch {
      // nothing more can be done while exiting
    }
  }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }

/**
 * On our own exit every remaining group gets SIGKILL (the `exit` event is synchronous). On SIGTERM/SIGINT/SIGHUP,
 * when nobody else handles the signal, the groups get SIGTERM, a short grace, SIGKILL, and then we exit the way
 * the default handler would have; when another handler exists (a node's graceful shutdown) it owns the exit.
 */
function installExitHooks(graceMs: number): void {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('exit', () => killAllGroupsNow('SIGKILL'))
  for (const signal of Object.keys(SIGNAL_NUMBERS) as NodeJS.Signals[]) {
    const handler = async () => {
      if (process.listenerCount(signal) > 1) return
      killAllGroupsNow('SIGTERM')
      const deadline = Date.now() + graceMs
      while (Date.now() < deadline && [...liveGroups].some(isProcessGroupAlive)) await sleep(GROUP_POLL_MS)
      killAllGroupsNow('SIGKILL')
      process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0))
    }
    process.on(signal, handler)
  }
}

type ChildProcess = ChildProcessByStdio<null, Readable, Readable>

export class Executor {
  private proc: ChildProcess | undefined
  private logFile: RotatingLogFile
  private readonly listeners = new Set<LineListener>()
  private exitPromise: Promise<ExecutorExit> | undefined
  private leaderExited = false
  private stoppedByUs = false
  private terminating: Promise<void> | undefined
  private readonly log: Logger
  readonly stopGraceMs: number
  readonly cancelGraceMs: number

  constructor(readonly options: ExecutorOptions) {
    this.logFile = new RotatingLogFile(options.logPath, options.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES, options.maxLogFiles ?? DEFAULT_MAX_LOG_FILES)
    this.stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS
    this.cancelGraceMs = options.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS
    this.log = (options.log ?? createLogger('trainer')).child('executor')
  }

  /** Process id of the group leader (= the process group id); undefined before start. */
  get pid(): number | undefined {
    return this.proc?.pid
  }

  get isRunning(): boolean {
    return this.proc !== undefined && !this.leaderExited
  }

  /** Registers a listener for every complete output line; returns the function that removes it. */
  onLine(listener: LineListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * Starts `argv` (no shell: arguments are passed as they are) with cwd = options.cwd and the environment of
   * this process plus `env`. Python output is unbuffered unless the caller says otherwise, so progress streams.
   */
  start(argv: readonly string[], env: Record<string, string> = {}): void {
    if (this.isRunning) throw new Error('the executor is already running a process')
    if (argv.length === 0 || !argv[0]) throw new Error('no command to run')
    installExitHooks(this.cancelGraceMs)
    const watch = this.options.watchParent ?? (process.platform !== 'win32' && existsSync('/bin/sh'))
    const cmd = watch ? ['/bin/sh', '-c', WATCHDOG_SCRIPT, 'training-watchdog', String(process.pid), ...argv] : [...argv]
    this.leaderExited = false
    this.stoppedByUs = false
    this.terminating = undefined
    this.logFile.write(`\n--- ${new Date().toISOString()} starting: ${argv.join(' ')}\n`)
    let proc: ChildProcess
    try {
      proc = spawn(cmd[0]!, cmd.slice(1), {
        cwd: this.options.cwd,
        env: { PYTHONUNBUFFERED: '1', ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        // setsid(): the child leads a new session and process group whose id is its pid
        detached: true,
      })
    } catch (error) {
      this.logFile.write(`--- could not start: ${errorMessage(error)}\n`)
      throw new Error(`could not start ${argv[0]}: ${errorMessage(error)}`)
    }
    // a program that cannot be started has no pid; its error event (ENOENT, EACCES) follows on the next tick
    const pid = proc.pid
    if (pid === undefined) {
      proc.once('error', (error) => this.log.warn('training process could not start', { command: cmd[0], error: errorMessage(error) }))
      this.logFile.write(`--- could not start: ${cmd[0]} was not found or is not executable\n`)
      throw new Error(`could not start ${argv[0]}: ${cmd[0]} was not found or is not executable`)
    }
    // an 'error' event nobody listens to would end this process; the exit and the group checks tell the outcome
    proc.on('error', (error) => this.log.warn('training process error', { pid, error: errorMessage(error) }))
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
    this.proc = proc
    liveGroups.add(pid)
    this.log.info('training process started', { pid, command: argv[0], cwd: this.options.cwd })
    const readers = [this.pump(proc.stdout, 'stdout'), this.pump(proc.stderr, 'stderr')]
    this.exitPromise = this.awaitExit(pid, exited, proc, readers)
  }

  /** Resolves when the command has ended, its leftover group members are gone and the output is drained. */
  wait(): Promise<ExecutorExit> {
    if (!this.exitPromise) return Promise.reject(new Error('the executor has not started a process'))
    return this.exitPromise
  }

  /** Graceful stop: SIGTERM to the group, SIGKILL after `stopGraceMs`; resolves with the exit. */
  async stop(graceMs = this.stopGraceMs): Promise<ExecutorExit | undefined> {
    if (!this.proc) return undefined
    this.stoppedByUs = true
    await this.terminateGroup(graceMs)
    return this.wait()
  }

  /** Cancellation: like stop, with the short `cancelGraceMs`. */
  cancel(): Promise<ExecutorExit | undefined> {
    return this.stop(this.cancelGraceMs)
  }

  /** SIGKILL to the group now. */
  async kill(): Promise<ExecutorExit | undefined> {
    return this.stop(0)
  }

  /** All of the log still on disk (rotated parts included), oldest first. */
  readLog(): string {
    return this.logFile.readAll()
  }

  /** The last `count` lines of the log. */
  logTail(count: number): string[] {
    return this.logFile.tail(count)
  }

  get logPath(): string {
    return this.logFile.path
  }

  private terminateGroup(graceMs: number): Promise<void> {
    const proc = this.proc
    if (!proc) return Promise.resolve()
    this.terminating ??= (async () => {
      const pgid = proc.pid!
      const alive = () => !this.leaderExited || isProcessGroupAlive(pgid)
      if (!alive()) return
      if (graceMs > 0) {
        signalProcessGroup(pgid, 'SIGTERM')
        const deadline = Date.now() + graceMs
        while (alive() && Date.now() < deadline) await sleep(GROUP_POLL_MS)
      }
      if (alive()) {
        if (graceMs > 0) this.log.warn('training process group ignored SIGTERM; sending SIGKILL', { pgid, grace_ms: graceMs })
        signalProcessGroup(pgid, 'SIGKILL')
        // SIGKILL cannot be ignored, but delivery takes a moment; a process stuck in the kernel (D state) may take longer
        const deadline = Date.now() + KILL_SETTLE_MS
        while (alive() && Date.now() < deadline) await sleep(GROUP_POLL_MS / 5)
        if (alive()) this.log.error('training process group survived SIGKILL', { pgid, members: processGroupMembers(pgid) })
      }
    })()
    return this.terminating
  }

  private async awaitExit(pid: number, exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>, proc: ChildProcess, readers: Promise<void>[]): Promise<ExecutorExit> {
    const status = await exited
    this.leaderExited = true
    // children the command left behind would keep the GPU (and our pipes): end them too
    // the watchdog needs a moment to notice that the command ended
    const settle = Date.now() + LEFTOVER_SETTLE_MS
    while (!this.terminating && isProcessGroupAlive(pid) && Date.now() < settle) await sleep(GROUP_POLL_MS / 5)
    if (this.terminating) {
      await this.terminating
    } else if (isProcessGroupAlive(pid)) {
      const members = GROUP_MEMBERS_VISIBLE ? processGroupMembers(pid) : 'unknown: without /proc an exited process not yet reaped counts too'
      this.log.warn('training process exited but left processes in its group; ending them', { pgid: pid, members })
      await this.terminateGroup(this.cancelGraceMs)
    }
    liveGroups.delete(pid)
    const drained = await Promise.race([Promise.all(readers).then(() => true), sleep(DRAIN_TIMEOUT_MS, false)])
    if (!drained) {
      // a process that left the group still holds the pipes open; stop reading them so they do not keep us alive
      this.log.warn('the output pipes stayed open after the process group ended; no longer reading them', { pid })
      for (const stream of [proc.stdout, proc.stderr]) stream.destroy()
    }
    const exit: ExecutorExit = { code: status.signal ? null : status.code, signal: status.signal, stoppedByUs: this.stoppedByUs }
    this.logFile.write(`--- ${new Date().toISOString()} ended: ${exit.signal ?? `exit code ${exit.code}`}${exit.stoppedByUs ? ' (stopped)' : ''}\n`)
    this.logFile.close()
    this.log.info('training process ended', { pid, code: exit.code, signal: exit.signal, stopped: exit.stoppedByUs })
    return exit
  }

  private async pump(stream: AsyncIterable<Uint8Array>, name: OutputStream): Promise<void> {
    const decoder = new TextDecoder()
    let partial = ''
    const emit = (line: string) => {
      for (const listener of this.listeners) {
        try {
          listener(line, name)
        } catch (error) {
          this.log.error('output line listener failed', { error: errorMessage(error) })
        }
      }
    }
    try {
      for await (const chunk of stream) {
        this.logFile.write(chunk)
        partial += decoder.decode(chunk, { stream: true })
        // \r too: progress bars (tqdm) redraw with carriage returns
        const lines = partial.split(/\r\n|\n|\r/)
        partial = lines.pop() ?? ''
        for (const line of lines) emit(line)
        while (partial.length > MAX_LINE_CHARS) {
          emit(partial.slice(0, MAX_LINE_CHARS))
          partial = partial.slice(MAX_LINE_CHARS)
        }
      }
    } catch (error) {
      // a premature close is awaitExit giving up on pipes held open after the group ended
      if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') this.log.warn('reading process output failed', { stream: name, error: errorMessage(error) })
    }
    partial += decoder.decode()
    if (partial) emit(partial)
  }
}

