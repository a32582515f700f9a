import type { Subprocess } from 'bun'

/** A child process whose stdout is read line by line, so a test can wait for its "ready" line. */
export interface Child {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  /** resolves with the first stdout line that `match` accepts */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>
  /** stdout + stderr so far, for failure messages */
  output(): string
  kill(signal?: NodeJS.Signals): Promise<void>
}

export function spawnChild(cmd: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Child {
  const proc = Bun.spawn(cmd, { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env: { ...process.env, ...options.env }, cwd: options.cwd })
  const lines: string[] = []
  let text = ''
  let errText = ''
  const listeners = new Set<() => void>()
  void (async () => {
    const decoder = new TextDecoder()
    let partial = ''
    for await (const chunk of proc.stdout) {
      const decoded = decoder.decode(chunk, { stream: true })
      text += decoded
      partial += decoded
      const parts = partial.split('\n')
      partial = parts.pop()!
      lines.push(...parts)
      for (const listener of listeners) listener()
    }
  })()
  void (async () => {
    for await (const chunk of proc.stderr) errText += new TextDecoder().decode(chunk)
  })()
  return {
    proc,
    output: () => `${text}\n${errText}`,
    waitForLine(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match)
          if (found === undefined) return false
          cleanup()
          resolve(found)
          return true
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`no matching line from ${cmd.join(' ')} within ${timeoutMs} ms; output:\n${text}\n${errText}`))
        }, timeoutMs)
        const exited = proc.exited.then((code) => {
          if (check()) return
          cleanup()
          reject(new Error(`${cmd.join(' ')} exited with ${code} before a matching line; output:\n${text}\n${errText}`))
        })
        const cleanup = () => {
          clearTimeout(timer)
          listeners.delete(listener)
          void exited
        }
        const listener = () => void check()
        listeners.add(listener)
        check()
      })
    },
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      await proc.exited
    },
  }
}
