import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Executor, runningProcessGroups } from '../../src/trainer/executor.ts'
import { isProcessAlive, isProcessGroupAlive, processGroupOf } from '../../src/trainer/process-group.ts'
import { RotatingLogFile } from '../../src/trainer/rotating-log-file.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

const SCRIPT = join(import.meta.dir, '../../src/trainer/testing-trainer-script.ts')
const HOST = join(import.meta.dir, 'fixtures/executor-host.ts')
const trainer = (...args: string[]) => [process.execPath, SCRIPT, 'train', ...args]

let temp: Awaited<ReturnType<typeof makeTempDir>>
const executors: Executor[] = []
function newExecutor(options: Partial<ConstructorParameters<typeof Executor>[0]> = {}): Executor {
  const executor = new Executor({ cwd: temp.path, logPath: join(temp.path, 'last_training.log'), stopGraceMs: 2_000, cancelGraceMs: 500, ...options })
  executors.push(executor)
  return executor
}

/** Collects protocol lines that carry a pid, e.g. {"grandchild_pid": 123}. */
function pidsFrom(executor: Executor): Record<string, number> {
  const pids: Record<string, number> = {}
  executor.onLine((line) => {
    if (!line.startsWith('{')) return
    for (const [key, value] of Object.entries(JSON.parse(line) as Record<string, unknown>)) {
      if (key.endsWith('pid') && typeof value === 'number') pids[key] = value
    }
  })
  return pids
}

beforeEach(async () => {
  temp = await makeTempDir('lln-executor-')
})
afterEach(async () => {
  for (const executor of executors.splice(0)) await executor.kill()
  await temp.cleanup()
})

describe('Executor: output', () => {
  test('streams stdout and stderr into the log (appending across runs) and hands every line to listeners', async () => {
    const executor = newExecutor()
    const lines: { line: string; stream: string }[] = []
    executor.onLine((line, stream) => lines.push({ line, stream }))
    executor.start(trainer('--epochs', '2', '--epoch-ms', '10'))
    const exit = await executor.wait()
    expect(exit).toEqual({ code: 0, signal: null, stoppedByUs: false })
    expect(lines).toContainEqual({ line: '{"progress":1}', stream: 'stdout' })
    expect(lines).toContainEqual({ line: 'epoch 2 done', stream: 'stderr' })
    expect(lines).toContainEqual({ line: '{"model_files":{"mocked":["model.bin"]}}', stream: 'stdout' })
    const log = readFileSync(join(temp.path, 'last_training.log'), 'utf8')
    expect(log).toContain('epoch 1 done')
    expect(log).toContain('{"progress":0.5}')
    expect(executor.logTail(1)[0]).toContain('ended: exit code 0')

    executor.start(trainer('--epochs', '1', '--epoch-ms', '10'))
    await executor.wait()
    const again = readFileSync(join(temp.path, 'last_training.log'), 'utf8')
    expect(again.startsWith(log)).toBe(true)
    expect(again.match(/starting:/g)).toHaveLength(2)
  })

  test('arguments pass through as they are (no shell), and a missing program is a clear non-zero exit', async () => {
    const executor = newExecutor()
    const lines: string[] = []
    executor.onLine((line) => lines.push(line))
    executor.start(['/bin/echo', 'a  b', '$HOME', '; rm -rf x'])
    await executor.wait()
    expect(lines).toEqual(['a  b $HOME ; rm -rf x'])

    const missing = newExecutor({ logPath: join(temp.path, 'missing.log') })
    missing.start(['/definitely/not/a/program'])
    const exit = await missing.wait()
    expect(exit.code).not.toBe(0)
    expect(readFileSync(join(temp.path, 'missing.log'), 'utf8')).toMatch(/not found|No such file/)

    // without the watchdog shell the program itself is started: a missing one cannot start at all
    const unwatched = newExecutor({ logPath: join(temp.path, 'unwatched.log'), watchParent: false })
    expect(() => unwatched.start(['/definitely/not/a/program'])).toThrow('could not start /definitely/not/a/program')
    expect(unwatched.isRunning).toBe(false)
    expect(runningProcessGroups()).toEqual([])
    expect(readFileSync(join(temp.path, 'unwatched.log'), 'utf8')).toContain('could not start')
  })

  test('the log rotates at its size cap and keeps a bounded number of files', async () => {
    const logPath = join(temp.path, 'chatty.log')
    const executor = newExecutor({ logPath, maxLogBytes: 4_000, maxLogFiles: 3 })
    executor.start(['/bin/sh', '-c', 'i=0; while [ $i -lt 600 ]; do echo "line $i of a chatty training"; i=$((i+1)); done'])
    await executor.wait()
    expect(existsSync(`${logPath}.1`)).toBe(true)
    expect(existsSync(`${logPath}.2`)).toBe(true)
    expect(existsSync(`${logPath}.3`)).toBe(false)
    for (const path of [logPath, `${logPath}.1`, `${logPath}.2`]) expect(statSync(path).size).toBeLessThanOrEqual(4_000)
    const all = executor.readLog()
    expect(all).toContain('line 599 of a chatty training')
    expect(all).not.toContain('line 0 of a chatty training')
    expect(executor.logTail(2)[0]).toBe('line 599 of a chatty training')
  })

  test('RotatingLogFile.tail reaches into the previous file when the current one is short', () => {
    const log = new RotatingLogFile(join(temp.path, 'x.log'), 20, 2)
    for (let i = 0; i < 6; i++) log.write(`line ${i}\n`)
    log.close()
    expect(log.tail(3)).toEqual(['line 3', 'line 4', 'line 5'])
    expect(log.readAll()).toBe('line 2\nline 3\nline 4\nline 5\n')
  })
})

describe('Executor: process group', () => {
  test('the command leads its own process group, separate from ours', async () => {
    const executor = newExecutor()
    executor.start(trainer('--forever', '--epoch-ms', '20'))
    const pid = executor.pid!
    expect(processGroupOf(pid)).toBe(pid)
    expect(processGroupOf(process.pid)).not.toBe(pid)
    expect(runningProcessGroups()).toContain(pid)
    await executor.stop()
    expect(runningProcessGroups()).not.toContain(pid)
  })

  test('stop() ends the whole group, grandchild included, and the training saves its model on SIGTERM', async () => {
    const executor = newExecutor()
    const pids = pidsFrom(executor)
    executor.start(trainer('--forever', '--epoch-ms', '20', '--grandchild'))
    const grandchild = await waitFor(() => pids.grandchild_pid, 10_000, 'grandchild pid')
    const training = pids.pid!
    expect(isProcessAlive(grandchild)).toBe(true)
    expect(processGroupOf(grandchild)).toBe(executor.pid)
    const exit = await executor.stop()
    expect(exit?.stoppedByUs).toBe(true)
    expect(isProcessAlive(training)).toBe(false)
    expect(isProcessAlive(grandchild)).toBe(false)
    expect(isProcessGroupAlive(executor.pid!)).toBe(false)
    expect(executor.readLog()).toContain('SIGTERM: saving the model')
    expect(existsSync(join(temp.path, 'model.bin'))).toBe(true)
  })

  test('a command that ignores SIGTERM (and a grandchild that does too) is SIGKILLed after the grace period', async () => {
    const executor = newExecutor({ stopGraceMs: 300 })
    const pids = pidsFrom(executor)
    executor.start(trainer('--forever', '--epoch-ms', '20', '--ignore-sigterm', '--stubborn-grandchild'))
    const grandchild = await waitFor(() => pids.grandchild_pid, 10_000, 'grandchild pid')
    const training = pids.pid!
    await executor.stop()
    expect(isProcessAlive(training)).toBe(false)
    expect(isProcessAlive(grandchild)).toBe(false)
    expect(executor.readLog()).toContain('ignoring SIGTERM')
    expect(executor.isRunning).toBe(false)
  })

  test('cancel() (abort) kills the group the same way', async () => {
    const executor = newExecutor()
    const pids = pidsFrom(executor)
    executor.start(trainer('--forever', '--epoch-ms', '20', '--stubborn-grandchild'))
    const grandchild = await waitFor(() => pids.grandchild_pid, 10_000, 'grandchild pid')
    await executor.cancel()
    expect(isProcessAlive(grandchild)).toBe(false)
    expect(isProcessGroupAlive(executor.pid!)).toBe(false)
  })

  test('processes left behind by a command that exits on its own are ended too', async () => {
    const executor = newExecutor()
    const pids = pidsFrom(executor)
    executor.start(trainer('--epochs', '2', '--epoch-ms', '20', '--stubborn-grandchild'))
    const exit = await executor.wait()
    expect(exit.code).toBe(0)
    expect(isProcessAlive(pids.grandchild_pid!)).toBe(false)
    expect(isProcessGroupAlive(executor.pid!)).toBe(false)
  })

  test.each(['SIGTERM', 'SIGKILL'] as const)('when our own process gets %s, its training group dies with it', async (signal) => {
    const host = Bun.spawn([process.execPath, HOST, join(temp.path, 'host.log'), SCRIPT, '--stubborn-grandchild'], { cwd: temp.path, stdout: 'pipe', stderr: 'inherit' })
    let pids: { host: number; leader: number; grandchild: number } | undefined
    try {
      const reader = host.stdout.getReader()
      let text = ''
      while (!text.includes('\n')) {
        const { value, done } = await reader.read()
        if (done) break
        text += new TextDecoder().decode(value)
      }
      pids = JSON.parse(text.split('\n')[0]!)
      expect(isProcessAlive(pids!.grandchild)).toBe(true)
      expect(isProcessGroupAlive(pids!.leader)).toBe(true)
      host.kill(signal)
      await host.exited
      // SIGTERM: our handler ends the group before exiting; SIGKILL: no handler runs, the watchdog does it (≈1 s)
      await waitFor(() => !isProcessGroupAlive(pids!.leader), 15_000, 'the training group to die')
      expect(isProcessAlive(pids!.grandchild)).toBe(false)
      if (signal === 'SIGTERM') expect(host.exitCode ?? host.signalCode).toBe(143)
    } finally {
      host.kill('SIGKILL')
      if (pids) {
        try {
          process.kill(-pids.leader, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }
  })
})

describe('RotatingLogFile', () => {
  test('a chunk bigger than the cap is split: no file ever exceeds it', () => {
    const path = join(temp.path, 'big.log')
    const log = new RotatingLogFile(path, 20, 3)
    log.write('x'.repeat(50))
    log.write('first line\nsecond line\n')
    log.close()
    for (const p of [path, ...log.rotatedPaths()]) expect(statSync(p).size).toBeLessThanOrEqual(20)
    expect(log.rotatedPaths()).toEqual([`${path}.1`, `${path}.2`])
    expect(log.readAll().endsWith('first line\nsecond line\n')).toBe(true)
  })
})
