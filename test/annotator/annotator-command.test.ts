/**
 * `learning-loop-node annotator` as a real child process against a local loop: it connects, segments a
 * box drag in its segmentation worker, and exits 0 on SIGTERM.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { join } from 'node:path'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { runAnnotatorCommand } from '../../src/cli/annotator-command.ts'
import { UsageError } from '../../src/cli/arguments.ts'
import { startNodeProcess } from '../support/node-process.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { annotatorSelector, COFFEE_ID, COFFEE_PATH, ORG, PROJECT, uploadPhoto, userInput } from './annotator-fixture.ts'

let testLoop: TestLoop
let loop: LocalLoop

beforeAll(async () => {
  testLoop = await startTestLoop({ seedProject: false, username: 'u', password: 'p' })
  loop = testLoop.loop
  await loop.createProject(ORG, { project_name: PROJECT })
  await uploadPhoto(loop, COFFEE_ID, await Bun.file(COFFEE_PATH).bytes())
})
afterAll(async () => {
  await testLoop.cleanup()
})

test('runs against the Loop, segments in its worker, and exits 0 on SIGTERM', async () => {
  const { child, url, line } = await startNodeProcess(['annotator', '--port', '0', '--bind', '127.0.0.1', '--data', join(testLoop.folder, 'node'), '--loop-host', loop.url,
    '--username', 'u', '--password', 'p', '--organization', ORG, '--project', PROJECT, '--name', 'cli annotator'], { env: { LOG_LEVEL: 'warn' } })
  try {
    expect(line).toStartWith('annotator listening on ')
    await waitFor(() => loop.connectedNodes().some((n) => n.nodeType === 'annotation_node'), 15_000, 'the annotator to connect')
    await waitFor(async () => (await fetch(`${url}/ready`)).status === 200, 15_000, 'readiness')
    const emit = (input: unknown) => loop.emitToNode(annotatorSelector, 'handle_user_input', input) as Promise<{ success: boolean; payload: unknown }>
    expect((await emit(userInput('cli-user', 'left_mouse_down', 160, 15))).success).toBe(true)
    const done = await emit(userInput('cli-user', 'left_mouse_up', 420, 310))
    expect(done.success).toBe(true)
    expect(done.payload).toContain('<polygon points="')
    expect(await waitFor(() => loop.statusHistory().find((s) => (s.status as { name?: string }).name === 'cli annotator'), 10_000, 'a status')).toBeTruthy()
    child.proc.kill('SIGTERM')
    expect(await child.proc.exited).toBe(0)
  } finally {
    await child.kill('SIGKILL')
  }
})

test('--help exits 0; unknown flags and bad values are usage errors', async () => {
  const lines: string[] = []
  const original = console.log
  console.log = (text: string) => lines.push(text)
  try {
    expect(await runAnnotatorCommand(['--help'])).toBe(0)
  } finally {
    console.log = original
  }
  expect(lines.join('\n')).toContain('--session-idle-timeout')
  expect(lines.join('\n')).toContain('LOOP_HOST')
  await expect(runAnnotatorCommand(['--bogus'])).rejects.toThrow(UsageError)
  await expect(runAnnotatorCommand(['--session-idle-timeout', '-3'], {})).rejects.toThrow('positive number of seconds')
  await expect(runAnnotatorCommand(['extra'])).rejects.toThrow('unexpected argument')
})
