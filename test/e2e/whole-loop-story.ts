/**
 * The README's "whole loop in five commands", run as written: its ```sh block is read from README.md, the ports
 * 8580/8004/8003 become free ones and `./data/` a temporary folder. Long-running lines (ending in `&`) start as
 * child processes with their environment assignments; their `npx learning-loop-node` is run as
 * `bun src/cli/main.ts` (the program npx starts; or its `deno task` under Deno), so a test sees each node's own exit status — npx's signal
 * handling is tested in test/cli/npm-start.test.ts. The other lines run through `sh -c` exactly as written, with
 * LOOP_HOST set to this run's loop (`loop admin` goes there when a line gives no --url).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { splitCommandLine } from '../../src/trainer/command-template.ts'
import type { Child } from '../support/child-process.ts'
import { freePort, startNodeProcess, type NodeRuntime } from '../support/node-process.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

export const ROOT = join(import.meta.dir, '../..')
const README_PORTS = { loop: 8580, detector: 8004, trainer: 8003 } as const
type Role = keyof typeof README_PORTS

/** The command lines of the walkthrough, in order. */
export function walkthroughLines(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## The whole loop in five commands'))
  const block = /^```sh\n([\s\S]*?)^```/m.exec(section)
  if (!block) throw new Error('README.md has no ```sh block under "The whole loop in five commands"')
  return block[1]!.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
}

export interface RunningNode {
  role: Role
  line: string
  child: Child
}

export class Story {
  readonly ports: Record<Role, number> = { loop: freePort(), detector: freePort(), trainer: freePort() }
  readonly nodes = new Map<Role, RunningNode>()

  private constructor(readonly temp: { path: string; cleanup(): Promise<void> }, readonly runtime: NodeRuntime) {}

  /** A story whose long-running nodes run on `runtime` (the `loop admin` lines run on Bun through npx). */
  static async create(runtime: NodeRuntime = 'bun'): Promise<Story> {
    return new Story(await makeTempDir('lln-whole-loop-'), runtime)
  }

  get loopUrl(): string {
    return `http://127.0.0.1:${this.ports.loop}`
  }

  get detectorUrl(): string {
    return `http://127.0.0.1:${this.ports.detector}`
  }

  /** A README line with this run's ports and folder. */
  localise(line: string): string {
    let text = line.replaceAll('./data/', `${this.temp.path}/`)
    for (const role of Object.keys(README_PORTS) as Role[]) text = text.replaceAll(String(README_PORTS[role]), String(this.ports[role]))
    return text
  }

  /** Starts a long-running line (`… &`) and waits for its ready line on stdout. */
  async start(line: string): Promise<RunningNode> {
    const words = splitCommandLine(this.localise(line).replace(/\s*&$/, ''))
    const env: Record<string, string> = {}
    while (words[0] && /^[A-Z_][A-Z0-9_]*=/.test(words[0])) {
      const [name, ...value] = words.shift()!.split('=')
      env[name!] = value.join('=')
    }
    if (words[0] !== 'npx' || words[1] !== 'learning-loop-node') throw new Error(`not a learning-loop-node line: ${line}`)
    const role = words[2] as Role
    if (!(role in README_PORTS)) throw new Error(`unexpected command ${role} in: ${line}`)
    const { child } = await startNodeProcess(words.slice(2), { cwd: ROOT, env: { ...env, LOG_LEVEL: 'info' }, runtime: this.runtime })
    const node = { role, line, child }
    this.nodes.set(role, node)
    return node
  }

  /** Runs a short line through `sh -c` as written; resolves with its output, rejects on a non-zero exit. */
  run(line: string): { stdout: string; stderr: string } {
    const command = this.localise(line)
    // LOOP_HOST is how `loop admin` finds this run's loop when a line does not name it (the README's relies on the default port)
    const result = Bun.spawnSync(['sh', '-c', command], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', LOOP_HOST: this.loopUrl }, stdout: 'pipe', stderr: 'pipe' })
    const stdout = result.stdout.toString()
    const stderr = result.stderr.toString()
    if (result.exitCode !== 0) throw new Error(`${command} exited with ${result.exitCode}\nstdout: ${stdout}\nstderr: ${stderr}`)
    return { stdout, stderr }
  }

  /** GET of the local loop's admin API. */
  async admin<T>(path: string): Promise<T> {
    const response = await fetch(`${this.loopUrl}/admin${path}`)
    if (!response.ok) throw new Error(`GET /admin${path}: ${response.status} ${await response.text()}`)
    return (await response.json()) as T
  }

  images(): Promise<{ images: { id: string; file_name: string | null; source: string | null; tags: string[]; has_trainer_detections: boolean }[] }> {
    return this.admin('/projects/local/demo/images')
  }

  trainings(): Promise<{ trainings: { number: number; id: string; state: string; outcome: string | null; error: string | null; models: { id: string; version: string }[] }[] }> {
    return this.admin('/projects/local/demo/trainings')
  }

  /** The detector's current model version, once it serves `version`. */
  async detectorServes(version: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => {
      const answer = (await (await fetch(`${this.detectorUrl}/model_version`)).json()) as { current_version: string | null }
      return answer.current_version === version
    }, timeoutMs, `the detector to serve version ${version}`)
  }

  /** SIGKILL, as a crash would. */
  async crash(role: Role): Promise<void> {
    const node = this.nodes.get(role)!
    node.child.proc.kill('SIGKILL')
    await node.child.proc.exited
  }

  /** SIGTERM to every node; resolves with each one's exit status. */
  async stopAll(): Promise<Record<string, number | null>> {
    const exits: Record<string, number | null> = {}
    await Promise.all([...this.nodes.values()].map(async ({ role, child }) => {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGTERM')
      await Promise.race([child.proc.exited, Bun.sleep(20_000)])
      exits[role] = child.proc.exitCode
    }))
    // a node still running is the failure to explain: its own log says where its shutdown stopped
    for (const [role, code] of Object.entries(exits)) {
      if (code === null) console.error(`the ${role} (${this.runtime}) had not exited 20 s after SIGTERM; its output:\n${this.output(role as Role).slice(-6000)}`)
    }
    return exits
  }

  output(role: Role): string {
    return this.nodes.get(role)?.child.output() ?? ''
  }

  async cleanup(): Promise<void> {
    for (const { child } of this.nodes.values()) {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL')
    }
    await this.temp.cleanup()
  }
}

/** POST /detect of a fixture to the detector, with headers; resolves with the ImageMetadata. */
export async function detect(story: Story, fixture: string, headers: Record<string, string> = {}): Promise<{ box_detections: { category_name: string; model_name: string; x: number; y: number; width: number; height: number }[] }> {
  const form = new FormData()
  form.append('file', new File([readFileSync(join(ROOT, 'test/fixtures', fixture))], fixture, { type: 'image/jpeg' }))
  const response = await fetch(`${story.detectorUrl}/detect`, { method: 'POST', body: form, headers })
  if (!response.ok) throw new Error(`POST /detect: ${response.status} ${await response.text()}`)
  return (await response.json()) as never
}
