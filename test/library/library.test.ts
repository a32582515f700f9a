/**
 * Issue 7, acceptance 3: learning-loop-node as a library. A scratch Bun app depends on the package through a
 * `file:` path and is installed with `bun install --offline`; it imports the public API, typechecks the
 * README examples (test/library/examples/) against it, and serves detections with a custom DetectorLogic.
 *
 * The `file:` source is a staged copy of what the package publishes (package.json, src/, LICENSE): bun copies
 * a `file:` folder whole, and the repo holds .git, .cache and binaries. Its dependency lists are left out of the
 * staged manifest so the install needs no network; the app's node_modules then links each dependency to the
 * repo's installed copy, as an install would have put it there.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import packageJson from '../../package.json' with { type: 'json' }
import { decode, ImageMetadata } from '../../src/contract/index.ts'
import { makeTempDir, waitFor } from '../support/temp.ts'

const REPO = join(import.meta.dir, '..', '..')
const TSC = join(REPO, 'node_modules', '.bin', 'tsc')

let temp: { path: string; cleanup(): Promise<void> }
let app: string
let env: Record<string, string>
const children: Bun.Subprocess[] = []

async function stagePackage(into: string): Promise<string[]> {
  const manifest: Record<string, unknown> = { ...packageJson }
  const dependencies = [...Object.keys(packageJson.dependencies), ...Object.keys(packageJson.optionalDependencies ?? {})]
  for (const key of ['dependencies', 'devDependencies', 'optionalDependencies', 'scripts']) delete manifest[key]
  await mkdir(into, { recursive: true })
  await writeFile(join(into, 'package.json'), JSON.stringify(manifest, null, 2))
  await cp(join(REPO, 'src'), join(into, 'src'), { recursive: true })
  await cp(join(REPO, 'LICENSE'), join(into, 'LICENSE'))
  return dependencies
}

function run(command: string[], cwd: string) {
  const result = Bun.spawnSync(command, { cwd, env, stdout: 'pipe', stderr: 'pipe' })
  return { code: result.exitCode, out: result.stdout.toString() + result.stderr.toString() }
}

beforeAll(async () => {
  temp = await makeTempDir('lln-library-')
  app = join(temp.path, 'app')
  env = { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: join(temp.path, 'home'), BUN_INSTALL_CACHE_DIR: join(temp.path, 'bun-cache'), LOG_LEVEL: 'warn' }
  const dependencies = await stagePackage(join(temp.path, 'package'))
  await mkdir(app, { recursive: true })
  await writeFile(join(app, 'package.json'), JSON.stringify({
    name: 'scratch-app', private: true, type: 'module', dependencies: { 'learning-loop-node': 'file:../package' },
  }, null, 2))
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'ESNext', moduleResolution: 'bundler', lib: ['ES2023', 'DOM'], types: ['bun-types'],
      strict: true, skipLibCheck: true, resolveJsonModule: true, allowImportingTsExtensions: true, verbatimModuleSyntax: true, noEmit: true,
    },
    include: ['*.ts'],
  }, null, 2))
  for (const example of await readdir(join(import.meta.dir, 'examples'))) await cp(join(import.meta.dir, 'examples', example), join(app, example))

  const install = run([process.execPath, 'install', '--offline', '--ignore-scripts', '--no-progress'], app)
  if (install.code !== 0) throw new Error(`bun install --offline failed:\n${install.out}`)
  for (const name of [...dependencies, 'bun-types']) {
    const link = join(app, 'node_modules', name)
    await mkdir(dirname(link), { recursive: true })
    await symlink(join(REPO, 'node_modules', name), link)
  }
}, 60_000)

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await temp?.cleanup()
})

describe('a scratch Bun app that depends on learning-loop-node (file:)', () => {
  test('resolves the installed copy, not the repo', () => {
    const resolved = run([process.execPath, '-e', "console.log(Bun.resolveSync('learning-loop-node', process.cwd()))"], app)
    expect(resolved.code).toBe(0)
    expect(resolved.out.trim()).toBe(join(app, 'node_modules', 'learning-loop-node', 'src', 'index.ts'))
  })

  test('the README examples (custom DetectorLogic, AnnotatorLogic, TrainerLogic) typecheck against the package; a wrong one does not', async () => {
    await writeFile(join(app, 'wrong-logic.ts'), [
      "import type { DetectorLogic } from 'learning-loop-node'",
      "export const logic: DetectorLogic = { backend: 'x', modelInfo: { id: 'm', host: null, organization: 'o', project: 'p', version: '1', resolution: null, model_root_path: null, model_size: null } }",
    ].join('\n'))
    const checked = run([TSC, '-p', '.'], app)
    const errors = checked.out.split('\n').filter((line) => /error TS\d+/.test(line))
    expect(errors.filter((line) => !line.startsWith('wrong-logic.ts'))).toEqual([])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/wrong-logic\.ts.*missing.*(detect|dispose)/)
  }, 60_000)

  test('a custom DetectorLogic serves POST /detect through DetectorNode (embedded local loop), and SIGTERM stops it', async () => {
    const child = Bun.spawn([process.execPath, 'detector-app.ts'], {
      cwd: app,
      env: { ...env, PORT: '0', BIND_HOST: '127.0.0.1', LOCAL_LOOP_PORT: '0', DATA_FOLDER: join(temp.path, 'detector-data') },
      stdout: 'pipe', stderr: 'pipe',
    })
    children.push(child)
    let output = ''
    void (async () => {
      for await (const chunk of child.stdout) output += new TextDecoder().decode(chunk)
    })()
    const url = await waitFor(() => /detector listening on (\S+)/.exec(output)?.[1], 30_000, 'the scratch app to listen')
    await waitFor(async () => (await fetch(`${url}/ready`)).ok, 30_000, '/ready')

    const form = new FormData()
    form.append('file', new File([await readFile(join(REPO, 'test', 'fixtures', 'coffee.jpg'))], 'coffee.jpg', { type: 'image/jpeg' }))
    const response = await fetch(`${url}/detect`, { method: 'POST', body: form })
    expect(response.status).toBe(200)
    const metadata = decode(ImageMetadata, await response.json())
    expect(metadata.box_detections).toEqual([expect.objectContaining({ category_name: 'bright', model_name: '1.0', width: 32, height: 32 })])
    const about = await (await fetch(`${url}/about`)).json() as { model_info: { id: string } | null }
    expect(about.model_info?.id).toBe('brightest-patch')

    child.kill('SIGTERM')
    expect(await child.exited).toBe(0)
  }, 60_000)
})
