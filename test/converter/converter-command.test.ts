/** `learning-loop-node converter` as a real child process: converts an uploaded export, exits 0 on SIGTERM. */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { join } from 'node:path'
import { makeTinyYoloModel } from '../../scripts/make-test-models.ts'
import { runConverterCommand } from '../../src/cli/converter-command.ts'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { startNodeProcess } from '../support/node-process.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'

let testLoop: TestLoop
let loop: LocalLoop

beforeAll(async () => {
  testLoop = await startTestLoop({ seedProject: false })
  loop = testLoop.loop
  await loop.createProject('acme', { project_name: 'parts' })
})
afterAll(async () => {
  await testLoop.cleanup()
})

test('converts a model uploaded under the --from format and exits 0 on SIGTERM', async () => {
  const onnx = makeTinyYoloModel({ layout: 'yolov5', metadata: { names: "{0: 'bolt', 1: 'nut'}", imgsz: '[64, 64]' } })
  const model = await loop.uploadModel('acme', 'parts', { format: 'ultralytics', files: { 'best.onnx': onnx } })
  const { child, url, line } = await startNodeProcess(['converter', '--from', 'ultralytics', '--to', 'onnx', '--interval', '0.3', '--port', '0', '--bind', '127.0.0.1',
    '--data', join(testLoop.folder, 'node'), '--loop-host', loop.url, '--username', 'any', '--password', 'any'], { env: { LOG_LEVEL: 'warn' } })
  try {
    expect(line).toStartWith('converter (ultralytics → onnx) listening on ')
    await waitFor(() => (loop.models('acme', 'parts').models.find((m) => m.id === model.id)?.formats as string[]).includes('onnx'), 20_000, 'the onnx format')
    expect(await (await fetch(`${url}/status`)).json()).toMatchObject({ converted: 1, source_format: 'ultralytics', target_format: 'onnx' })
    child.proc.kill('SIGTERM')
    expect(await child.proc.exited).toBe(0)
  } finally {
    await child.kill('SIGKILL')
  }
})

test('format flags are checked before anything starts', async () => {
  await expect(runConverterCommand(['--from', 'onnx', '--to', 'onnx'], {})).rejects.toThrow('both "onnx"')
  await expect(runConverterCommand(['--from', '../x'], {})).rejects.toThrow('is not a format name')
  await expect(runConverterCommand(['--interval', '0'], {})).rejects.toThrow('positive number of seconds')
  const lines: string[] = []
  const original = console.log
  console.log = (text: string) => lines.push(text)
  try {
    expect(await runConverterCommand(['--help'], {})).toBe(0)
  } finally {
    console.log = original
  }
  expect(lines.join('\n')).toContain('Ultralytics YOLO ONNX export')
})
