import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import type { Readable } from 'node:stream'
import { errorMessage, type Logger } from '../../foundation/log.ts'
import { FfmpegLog, withoutCredentials } from './ffmpeg-arguments.ts'
import { FrameAssembler } from './frame-slot.ts'

/**
 * One ffmpeg child of a camera: frames from its stdout, the frame size and its last complaint from its stderr.
 * It leads a process group of its own (ended as a whole) and, where util-linux's `setpriv` exists, gets SIGKILL
 * from the kernel when this process dies, `kill -9` included (PR_SET_PDEATHSIG), so no ffmpeg outlives the node.
 */
export const FFMPEG_INSTALL_HINT = 'ffmpeg was not found on PATH (or in FFMPEG_PATH); install it, e.g. `apt-get install ffmpeg` on Debian/Ubuntu'
const STOP_GRACE_MS = 2_000
/** Raw bytes kept while ffmpeg has not said the frame size yet (it says it before its first frame). */
const MAX_BYTES_BEFORE_SIZE = 64 * 1024 * 1024
const MAX_STDERR_LINE = 4_096

function onPath(name: string, env: Record<string, string | undefined>): string | undefined {
  for (const folder of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!folder) continue
    const path = join(folder, name)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {
      // not in this folder
    }
  }
  return undefined
}

/** The ffmpeg executable (FFMPEG_PATH, else PATH), or undefined when there is none. */
export function findFfmpeg(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.FFMPEG_PATH) {
    try {
      accessSync(env.FFMPEG_PATH, constants.X_OK)
      return env.FFMPEG_PATH
    } catch {
      return undefined
    }
  }
  return onPath('ffmpeg', env)
}

const setpriv = process.platform === 'linux' ? onPath('setpriv', process.env) : undefined

const liveGroups = new Set<number>()
let exitHookInstalled = false
function killAllOnExit(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const pgid of liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL')
      } catch {
        // gone already
      }
    }
  })
}

/** Process group ids of the ffmpeg children running now (tests, diagnostics). */
export function runningFfmpegGroups(): number[] {
  return [...liveGroups]
}

export interface FfmpegHandlers {
  /** the size of the frames, once ffmpeg said it */
  onFrameSize(size: { width: number; height: number }): void
  /** a buffer for the next frame (of `bytes` bytes); default: a new one each time */
  allocateFrame?(bytes: number): Uint8Array
  onFrame(rgb: Uint8Array, size: { width: number; height: number }): void
  /** ffmpeg ended (or could not start); `reason` says why in words */
  onExit(reason: string): void
}

export class FfmpegProcess {
  private readonly proc: ChildProcessByStdio<null, Readable, Readable>
  private readonly ffmpegLog = new FfmpegLog()
  private assembler: FrameAssembler | undefined
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  private exited = false
  private stopping = false
  private readonly exit: Promise<void>

  constructor(ffmpeg: string, args: string[], private readonly handlers: FfmpegHandlers, private readonly log: Logger) {
    killAllOnExit()
    const command = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', ffmpeg, ...args] : [ffmpeg, ...args]
    // detached: setsid(), so ffmpeg leads a group of its own and a signal to the group reaches all it started
    this.proc = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const pid = this.proc.pid
    if (pid !== undefined) liveGroups.add(pid)
    this.exit = new Promise((resolve) => {
      const finish = (reason: string) => {
        if (this.exited) return
        this.exited = true
        if (pid !== undefined) liveGroups.delete(pid)
        resolve()
        if (!this.stopping) handlers.onExit(reason)
      }
      this.proc.once('error', (error) => finish(`ffmpeg could not start: ${errorMessage(error)}`))
      this.proc.once('close', (code, signal) => {
        const said = this.ffmpegLog.lastProblem ? `: ${this.ffmpegLog.lastProblem}` : ''
        finish(code === 0 ? `the stream ended${said}` : `ffmpeg exited with ${signal ?? `status ${code}`}${said}`)
      })
    })
    this.proc.stdout.on('data', (chunk: Uint8Array) => this.readFrames(chunk))
    this.readLog(this.proc.stderr)
  }

  get pid(): number | undefined {
    return this.proc.pid
  }

  private readFrames(chunk: Uint8Array): void {
    if (this.stopping) return
    if (!this.assembler) {
      // stdout and stderr are read independently: frames may come before the line that gives their size
      this.pending.push(chunk)
      this.pendingBytes += chunk.length
      if (this.pendingBytes > MAX_BYTES_BEFORE_SIZE) void this.stop()
      return
    }
    const size = this.ffmpegLog.frameSize!
    this.assembler.push(chunk, (frame) => this.handlers.onFrame(frame, size))
  }

  private readLog(stderr: Readable): void {
    let partial = ''
    stderr.setEncoding('utf8')
    stderr.on('data', (text: string) => {
      const lines = (partial + text).split(/\r?\n|\r/)
      partial = lines.pop() ?? ''
      if (partial.length > MAX_STDERR_LINE) partial = partial.slice(-MAX_STDERR_LINE)
      for (const line of lines) {
        const size = this.ffmpegLog.read(line)
        if (line.trim()) this.log.debug('ffmpeg', { line: withoutCredentials(line).slice(0, 300) })
        if (size && !this.assembler) {
          const bytes = size.width * size.height * 3
          const allocate = this.handlers.allocateFrame
          this.assembler = new FrameAssembler(bytes, allocate ? () => allocate(bytes) : undefined)
          this.handlers.onFrameSize(size)
          const pending = this.pending
          this.pending = []
          for (const chunk of pending) this.readFrames(chunk)
        }
      }
    })
  }

  /** SIGTERM to the group, SIGKILL after a grace; resolves when ffmpeg is gone. onExit is not called. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true
    const pid = this.proc.pid
    if (this.exited || pid === undefined) return this.exit
    signalGroup(pid, 'SIGTERM')
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.exit, new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs) })])
    clearTimeout(timer)
    if (!this.exited) {
      signalGroup(pid, 'SIGKILL')
      await this.exit
    }
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal)
  } catch {
    // the group is gone already
  }
}
