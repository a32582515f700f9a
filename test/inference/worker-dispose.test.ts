import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { makeTempDir } from '../support/temp.ts'

// Each case runs in a child process (test/support/dispose-busy-worker.ts): a worker thread terminated while
// onnxruntime-node runs aborts its whole process, which here ends the child with a crash instead of the test runner.
const SCRIPT = join(import.meta.dir, '../support/dispose-busy-worker.ts')
let temp: Awaited<ReturnType<typeof makeTempDir>>

beforeAll(async () => {
  temp = await makeTempDir('lln-dispose-')
})
afterAll(async () => {
  await temp.cleanup()
})

async function run(scenario: string): Promise<{ code: number; result: { ran?: number; failed: string[] }; output: string }> {
  const child = Bun.spawn([process.execPath, SCRIPT, scenario, temp.path], { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, LOG_LEVEL: 'warn' } })
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited])
  const lines = stdout.split('\n').filter((line) => line.startsWith('{"ran"') || line.startsWith('{"failed"') || line === 'alive')
  // what the child said first; its log (the end of it) after, for the failure message
  return { code, result: JSON.parse(lines[0] ?? '{"failed":[]}'), output: `${lines.join('\n')}\n${`${stdout}\n${stderr}`.slice(-3000)}` }
}

describe('disposing an engine whose worker is busy', () => {
  test('requests queued in the worker fail at once instead of running first; the process lives on', async () => {
    const { code, result, output } = await run('queued')
    expect(code, output).toBe(0)
    // only the run in progress when the dispose arrived finishes
    expect(result.ran!).toBeLessThanOrEqual(1)
    expect(result.failed).toEqual(['the inference engine was disposed'])
    expect(output.split('\n')[1]).toBe('alive')
  })

  test('with dynamic batching: images waiting for a batch fail at once', async () => {
    const { code, result, output } = await run('batched')
    expect(code, output).toBe(0)
    expect(result.ran!).toBeLessThanOrEqual(4)
    expect(result.failed).toEqual(['the inference engine was disposed'])
  })

  test('a request of many images stops after the image in progress', async () => {
    const { code, result, output } = await run('one-request')
    expect(code, output).toBe(0)
    expect(result.failed).toEqual(['the inference engine was disposed'])
  })

  test('a run still going after the dispose wait: its request fails, the thread is left to finish it, nothing aborts', async () => {
    const { code, result, output } = await run('long-run')
    expect(code, output).toBe(0)
    expect(result.failed).toEqual(['the inference engine was disposed'])
    expect(output).toStartWith('{"failed":["the inference engine was disposed"]')
    expect(output.split('\n')[1]).toBe('alive')
    expect(output).toContain('had not released its model after the dispose wait')
  })
})
