import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { createZip } from '../../src/foundation/zip-archive.ts'
import type { Child } from '../support/child-process.ts'
import { freePort, runNodeCommand, startNodeProcess } from '../support/node-process.ts'
import { makeTempDir } from '../support/temp.ts'
import { connectNode, login } from './loop-test-peer.ts'

const runCli = (args: string[]) => runNodeCommand(['loop', ...args])

describe('learning-loop-node loop (child process)', () => {
  let temp: { path: string; cleanup(): Promise<void> }
  let child: Child
  let url: string

  beforeAll(async () => {
    temp = await makeTempDir('lln-loop-cli-')
    const port = freePort()
    const started = await startNodeProcess(['loop', '--port', String(port), '--data', temp.path], { env: { LOG_LEVEL: 'warn' } })
    child = started.child
    url = started.url
    expect(url).toBe(`http://127.0.0.1:${port}`)
  })

  afterAll(async () => {
    await child?.kill('SIGKILL')
    await temp.cleanup()
  })

  test('serves status, login, data (401 without a session, 200 with) and socket.io on /ws/socket.io', async () => {
    expect((await fetch(`${url}/api/status`)).status).toBe(200)
    const loginResponse = await fetch(`${url}/api/login`, { method: 'POST', body: new URLSearchParams({ username: 'u', password: 'p' }) })
    expect(loginResponse.status).toBe(200)
    expect(loginResponse.headers.get('set-cookie')).toContain('loop_session=')
    expect((await fetch(`${url}/api/local/projects/demo/data`)).status).toBe(401)
    const cookie = await login(url)
    expect((await fetch(`${url}/api/local/projects/demo/data`, { headers: { cookie } })).status).toBe(200)
    const socket = await connectNode(url, { cookie })
    expect(socket.connected).toBe(true)
    socket.close()
  })

  test('admin subcommands drive it and print JSON', async () => {
    const created = await runCli(['admin', 'create-project', '--url', url, '--org', 'acme', '--project', 'cli', '--complete', '2', '--box', '1', '--trainings', '1', '--tags', '1'])
    expect(created.code).toBe(0)
    expect(JSON.parse(created.stdout)).toMatchObject({ organization: 'acme', project: 'cli', trainings: [1] })
    // as its --help says: an existing project is refused, not replaced
    const twice = await runCli(['admin', 'create-project', '--url', url, '--org', 'acme', '--project', 'cli', '--complete', '1'])
    expect(twice.code).not.toBe(0)
    expect(twice.stderr).toContain('project acme/cli already exists; delete it first')

    const images = await runCli(['admin', 'images', '--url', url, '--org', 'acme', '--project', 'cli', '--state', 'complete'])
    expect(images.code).toBe(0)
    const listed = JSON.parse(images.stdout) as { images: { tags: string[]; box_annotations: number }[] }
    expect(listed.images).toHaveLength(2)
    expect(listed.images[0]).toMatchObject({ tags: ['tag_1'], box_annotations: 1 })

    const zipPath = join(temp.path, 'model.zip')
    await Bun.write(zipPath, createZip({ 'weights.onnx': new Uint8Array([1, 2]), 'model.json': '{"resolution": 64}' }))
    const uploaded = await runCli(['admin', 'upload-model', '--url', url, '--org', 'acme', '--project', 'cli', '--format', 'onnx', '--file', zipPath])
    expect(uploaded.code).toBe(0)
    // onnx is new for training 1's latest model (the generated 1.0), so it joins that model
    expect(JSON.parse(uploaded.stdout)).toMatchObject({ version: '1.0', formats: ['mocked', 'onnx'] })
    const again = await runCli(['admin', 'upload-model', '--url', url, '--org', 'acme', '--project', 'cli', '--format', 'onnx', '--file', zipPath])
    expect(JSON.parse(again.stdout)).toMatchObject({ version: '1.1', formats: ['onnx'] })

    const target = await runCli(['admin', 'set-target', '--url', url, '--org', 'acme', '--project', 'cli', '--version', '1.1'])
    expect(target.code).toBe(0)
    const cookie = await login(url)
    expect(await (await fetch(`${url}/api/acme/projects/cli/deployment/target`, { headers: { cookie } })).json()).toMatchObject({ version: '1.1' })

    const stats = await runCli(['admin', 'stats', '--url', url])
    expect(JSON.parse(stats.stdout).sockets.handshakes).toBeGreaterThanOrEqual(1)
    const nodes = await runCli(['admin', 'nodes', '--url', url])
    expect(JSON.parse(nodes.stdout)).toEqual({ nodes: [] })
  })

  test('a second loop on the same port exits 1 with one line saying the port is in use (it does not share the port)', async () => {
    const port = new URL(url).port
    const second = await runCli(['--port', port, '--data', join(temp.path, 'second')])
    expect(second.code).toBe(1)
    expect(second.stderr.trim()).toBe(`learning-loop-node loop: cannot listen on 127.0.0.1:${port}: the port is in use (another node or program listens there); choose another with --port or PORT`)
    expect((await fetch(`${url}/api/status`)).status).toBe(200)
  })

  test('admin errors exit 1 with the detail; usage errors exit 2', async () => {
    const missing = await runCli(['admin', 'images', '--url', url, '--org', 'acme', '--project', 'nothing'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('404: project acme/nothing does not exist')
    const usage = await runCli(['admin', 'set-target', '--url', url, '--org', 'acme', '--project', 'cli'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('--model-id or --version')
    const unknown = await runCli(['admin', 'fly', '--url', url])
    expect(unknown.code).toBe(2)
    const help = await runCli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--rate-limit')
    const adminHelp = await runCli(['admin', '--help'])
    expect(adminHelp.stdout).toContain('start-training')
    expect(adminHelp.stdout).toContain('--user U --password PW  needed when the loop was started with --user/--password')
    // names that are JavaScript object members are unknown subcommands like any other
    for (const name of ['constructor', 'toString', '__proto__']) expect((await runCli(['admin', name, '--url', url])).code).toBe(2)
  })

  test('every admin subcommand has its own --help: usage, defaults and what it prints', async () => {
    const own = await runCli(['admin', 'create-project', '--help'])
    expect(own.code).toBe(0)
    expect(own.stdout).toStartWith('usage: learning-loop-node loop admin create-project --project P')
    expect(own.stdout).toContain('(default local)')
    expect(own.stdout).toContain('A project that exists already is refused (409)')
    expect(own.stdout).not.toContain('subcommands:')
    const training = await runCli(['admin', 'start-training', '--help'])
    expect(training.stdout).toContain('--wait')
    expect(training.stdout).toContain('--org and --project default to local and demo')
    const trainings = await runCli(['admin', 'trainings', '--help'])
    expect(trainings.stdout).toContain('outcome (completed')
  })

  test('SIGTERM stops it gracefully with exit code 0', async () => {
    child.proc.kill('SIGTERM')
    expect(await child.proc.exited).toBe(0)
    const after = await fetch(`${url}/api/status`).then(() => 'answered', () => 'refused')
    expect(after).toBe('refused')
  })
})
