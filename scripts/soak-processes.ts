/**
 * The soak benchmark's nodes as child processes (scripts/soak.ts): each keeps its port and data folder across
 * restarts, so clients and the detector find it again at the same address, and is sampled from /proc.
 */
import { spawnChild, type Child } from '../test/support/child-process.ts'
import { waitFor } from '../test/support/temp.ts'
import { sampleProcess, type ProcessSample } from './process-sample.ts'

/** How many log lines of each level and message a process wrote (JSON lines), with the first one's error or reason. */
export function countLogLines(output: string, levels: readonly string[] = ['error', 'warn']): Map<string, { count: number; example: string }> {
  const counts = new Map<string, { count: number; example: string }>()
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const { level, msg, error, reason, status } = JSON.parse(line) as Record<string, unknown>
      if (typeof level !== 'string' || !levels.includes(level)) continue
      const key = `${level}: ${msg}`
      const seen = counts.get(key)
      if (seen) seen.count++
      else counts.set(key, { count: 1, example: [status, reason, error].filter((v) => v !== undefined).join(' ').slice(0, 160) })
    } catch {
      // a line cut off by SIGKILL
    }
  }
  return counts
}

export class SoakProcess {
  private child: Child | undefined
  /** output of the processes this one replaced (killed or stopped), for the log summary */
  private earlierOutput = ''
  starts = 0

  /**
   * `command` runs with `env` on top of this process's environment; it is up when it prints a line containing
   * `readyText` and, when given, `ready()` holds.
   */
  constructor(
    readonly name: string,
    private readonly command: string[],
    private readonly env: Record<string, string>,
    private readonly readyText: string,
    private readonly ready?: () => Promise<boolean>,
  ) {}

  async start(timeoutMs = 120_000): Promise<void> {
    const child = spawnChild(this.command, { env: this.env })
    this.child = child
    this.starts++
    await child.waitForLine((line) => line.includes(this.readyText), timeoutMs)
    if (this.ready) await waitFor(() => this.ready!().catch(() => false), timeoutMs, `${this.name} ready`, 100)
  }

  get pid(): number {
    if (!this.child) throw new Error(`${this.name} is not running`)
    return this.child.proc.pid
  }

  get running(): boolean {
    return this.child !== undefined && this.child.proc.exitCode === null && this.child.proc.signalCode === null
  }

  /** Ends the process (SIGTERM: gracefully; SIGKILL: as a power cut) and waits until it is gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child
    if (!child) return
    await child.kill(signal)
    this.earlierOutput += child.output()
    this.child = undefined
  }

  /** SIGKILL without waiting, for an exiting script. */
  killNow(): void {
    if (this.running) this.child!.proc.kill('SIGKILL')
  }

  sample(): Promise<ProcessSample> {
    return sampleProcess(this.pid)
  }

  /** Everything every process of this node wrote so far. */
  output(): string {
    return this.earlierOutput + (this.child?.output() ?? '')
  }
}
