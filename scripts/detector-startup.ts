/**
 * The time from spawning a detector (built-in face model, embedded local loop, cpu backend) until `/ready`
 * answers 200, i.e. the model is loaded and detections can be served. For bench-startup.ts (the binary, from
 * source) and bench-runtimes.ts (from source on Bun and on Deno).
 */
import { join } from 'node:path'

const READY_TIMEOUT_MS = 30_000

/**
 * Spawns `command detector`, polls /ready every 5 ms, returns the time to the first 200, then SIGTERMs it.
 * `env` adds to a clean environment (XDG_CACHE_HOME shared between runs keeps the runtimes' compile caches warm).
 */
export async function timeToReady(command: string[], home: string, cwd: string, env: Record<string, string> = {}): Promise<number> {
  const started = performance.now()
  const child = Bun.spawn([...command, 'detector'], {
    cwd,
    env: { PATH: '/usr/bin:/bin', HOME: home, DATA_FOLDER: join(home, 'data'), PORT: '0', BIND_HOST: '127.0.0.1', LOCAL_LOOP_PORT: '0', INFERENCE_BACKEND: 'cpu', LOG_LEVEL: 'warn', ...env },
    stdout: 'pipe', stderr: 'inherit',
  })
  try {
    let output = ''
    let url: string | undefined
    const reader = child.stdout.getReader()
    while (!url) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`the detector exited before listening (code ${await child.exited})`)
      output += new TextDecoder().decode(value)
      url = /detector listening on (\S+)/.exec(output)?.[1]
    }
    reader.releaseLock()
    while (performance.now() - started < READY_TIMEOUT_MS) {
      const ready = await fetch(`${url}/ready`).then((r) => r.ok, () => false)
      if (ready) return performance.now() - started
      await Bun.sleep(5)
    }
    throw new Error(`/ready did not answer 200 within ${READY_TIMEOUT_MS} ms`)
  } finally {
    child.kill('SIGTERM')
    await child.exited
  }
}
