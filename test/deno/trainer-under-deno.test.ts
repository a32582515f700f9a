/**
 * One training of the testing trainer through a local loop, both on Deno as their `deno task`s start them: the
 * trainer downloads the project's images, runs the testing trainer's script (`{bun}`: `deno run` with the
 * trainer's own permissions) in its own process group, uploads the model and its detections on every image,
 * and the loop records the training as completed. The training program leaves nothing behind in its group, so
 * the trainer has nothing to end after it (no "left processes in its group" warning). SIGTERM → exit 0.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { runNodeCommand, startNodeProcess, type NodeProcess } from '../support/node-process.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

interface LogLine { msg?: string; command?: string; outcome?: string }

describe('the testing trainer on Deno, against a local loop on Deno', () => {
  let temp: { path: string; cleanup(): Promise<void> }
  let loop: NodeProcess
  let trainer: NodeProcess
  const admin = (...args: string[]) => runNodeCommand(['loop', 'admin', ...args, '--url', loop.url])
  const logLines = (node: NodeProcess) => node.child.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as LogLine)

  beforeAll(async () => {
    temp = await makeTempDir('lln-deno-trainer-')
    loop = await startNodeProcess(['loop', '--port', '0', '--data', join(temp.path, 'loop')], { runtime: 'deno', env: { HOME: temp.path } })
    const created = await admin('create-project', '--project', 'deno', '--complete', '4', '--box', '2', '--seed', '1')
    expect(created.code).toBe(0)
    trainer = await startNodeProcess(['trainer', '--logic', 'testing', '--name', 'trainer'], {
      runtime: 'deno',
      env: { LOOP_HOST: loop.url, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'deno', DATA_FOLDER: join(temp.path, 'trainer'), HOME: temp.path, LOG_LEVEL: 'info' },
    })
    await waitFor(async () => {
      const { nodes } = await (await fetch(`${loop.url}/admin/nodes`)).json() as { nodes: { nodeType: string; name: string | null }[] }
      return nodes.some((node) => node.nodeType === 'trainer' && node.name === 'trainer')
    }, 30_000, 'the trainer to connect to the loop')
  }, 90_000)
  afterAll(async () => {
    await trainer?.child.kill('SIGKILL')
    await loop?.child.kill('SIGKILL')
    await temp?.cleanup()
  })

  test('a training completes: model 1.0 uploaded, detections on every image, the training program run by Deno', async () => {
    const run = await admin('start-training', '--project', 'deno', '--node', 'trainer', '--wait')
    expect({ code: run.code, stderr: run.stderr.slice(-2000) }).toMatchObject({ code: 0 })
    const { training } = JSON.parse(run.stdout) as { training: { outcome: string; models: { version: string; formats: string[] }[] } }
    expect(training.outcome).toBe('completed')
    expect(training.models).toEqual([expect.objectContaining({ version: '1.0', formats: ['mocked'] })])

    const { images } = await (await fetch(`${loop.url}/admin/projects/local/deno/images`)).json() as { images: { has_trainer_detections: boolean }[] }
    expect(images).toHaveLength(4)
    expect(images.every((image) => image.has_trainer_detections)).toBe(true)

    const logs = logLines(trainer)
    const started = logs.filter((line) => line.msg === 'training process started')
    // the training and the detection on the project's images, each a `deno run` of the testing trainer's script
    expect(started).toHaveLength(2)
    for (const line of started) expect(line.command).toEndWith('deno')
    expect(logs.filter((line) => line.msg === 'training process exited but left processes in its group; ending them')).toEqual([])
    expect(logs.find((line) => line.msg === 'training finished')).toMatchObject({ outcome: 'completed' })
  }, 90_000)

  test('SIGTERM: the trainer and the loop exit 0', async () => {
    trainer.child.proc.kill('SIGTERM')
    loop.child.proc.kill('SIGTERM')
    expect([await trainer.child.proc.exited, await loop.child.proc.exited]).toEqual([0, 0])
  }, 30_000)
})
