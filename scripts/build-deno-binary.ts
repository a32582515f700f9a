/**
 * Builds the second single executable, with `deno compile`: `bun scripts/build-deno-binary.ts [--outfile=PATH]`
 * (npm run build:deno) → dist/learning-loop-node-deno, for the host (linux-x64 or linux-arm64).
 *
 * `deno compile` copies a base executable, denort (Deno's runtime without its CLI), and appends the module graph
 * and an embedded file system. denort is not part of the `deno` npm package: `deno compile` downloads it once
 * per Deno version into $DENO_DIR/dl/ (DENORT_BIN names a copy of one's own instead). Where it cannot be had,
 * the build fails with DenoBaseUnavailableError, which says so.
 *
 * What goes in:
 * - src/cli/main.ts and what it imports; the inference Worker, started by URL, is passed with --include, and
 *   so are the files read by path at run time: the built-in model, the status page, the GPU verification model;
 * - node_modules as it is (nodeModulesDir "manual" in deno.json: Deno embeds the folder), less what the nodes
 *   never load: the dev tools (bun, deno, typescript, playwright, …), dawn.node (Deno brings its own WebGPU),
 *   onnxruntime-node's libraries for other systems, onnxruntime-web's files other than the node, WebGPU and wasm
 *   builds;
 * - `--self-extracting`: the embedded files are unpacked to disk on the first start, so the native add-ons
 *   (onnxruntime-node, @napi-rs/image) and libonnxruntime.so.1 load from real paths, as the dynamic loader needs.
 * The binary holds the permissions of all commands together (each `deno task` has only its own); what it
 * cannot do: `{bun}` in a trainer's command (a compiled binary runs its own program, not `deno run`).
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'

export const REPOSITORY_ROOT = resolve(import.meta.dir, '..')
const DENO = join(REPOSITORY_ROOT, 'node_modules', '.bin', 'deno')
const MAIN_ENTRY = 'src/cli/main.ts'
/** read by path at run time, so not in the module graph */
const INCLUDED = ['src/inference/inference-worker.ts', 'assets/builtin-model', 'src/detector/status-page', 'src/inference/verification-model.onnx']
/** what every command needs together: serve, reach the Loop, data folder and caches, settings, native add-ons, training programs, disk and uid checks */
const PERMISSIONS = ['--allow-net', '--allow-read', '--allow-write', '--allow-env', '--allow-ffi', '--allow-run', '--allow-sys']
/** packages of node_modules no node loads (and .bin, whose links would bring the dev tools back) */
const UNUSED_PACKAGES = ['.bin', 'bun', 'bun-types', 'deno', '@deno', 'typescript', '@typescript', 'playwright-core', 'onnx-proto', '@types', 'webgpu']
/** onnxruntime-web files the nodes load: the node build (wasm backend), the WebGPU bundle, their wasm */
const ORT_WEB_FILES = ['ort.node.min.mjs', 'ort.webgpu.bundle.min.mjs', 'ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.asyncify.wasm']

export class DenoBuildError extends Error {}

/** denort, the base of every compiled binary, could not be had (downloaded or found through DENORT_BIN). */
export class DenoBaseUnavailableError extends DenoBuildError {}

export interface DenoBuildResult {
  outfile: string
  bytes: number
  seconds: number
}

function hostArch(): 'x64' | 'arm64' {
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
    throw new DenoBuildError(`Deno binaries are built here for linux-x64 and linux-arm64 (host is ${process.platform}-${process.arch})`)
  }
  return process.arch
}

/** Paths under node_modules (as Deno sees them: the real folder, node_modules may be a link) to leave out. */
export function excludedPaths(arch: 'x64' | 'arm64' = hostArch()): string[] {
  const modules = realpathSync(join(REPOSITORY_ROOT, 'node_modules'))
  const excluded = UNUSED_PACKAGES.map((name) => join(modules, name))
  const ortBinaries = join(modules, 'onnxruntime-node', 'bin', 'napi-v6')
  for (const os of readdirSync(ortBinaries)) {
    for (const cpu of readdirSync(join(ortBinaries, os))) if (os !== 'linux' || cpu !== arch) excluded.push(join(ortBinaries, os, cpu))
  }
  const ortWeb = join(modules, 'onnxruntime-web', 'dist')
  for (const file of readdirSync(ortWeb)) if (!ORT_WEB_FILES.includes(file)) excluded.push(join(ortWeb, file))
  return excluded.filter((path) => existsSync(path))
}

/** The `deno compile` command line for `outfile`. */
export function denoCompileCommand(outfile: string): string[] {
  return [
    DENO, 'compile', '--no-check', '--self-extracting', '--quiet', '--output', outfile, ...PERMISSIONS,
    ...INCLUDED.flatMap((path) => ['--include', path]),
    ...excludedPaths().flatMap((path) => ['--exclude', path]),
    MAIN_ENTRY,
  ]
}

/** Why `deno compile` failed, as an error that tells a missing base apart from everything else. */
export function compileFailure(output: string, code: number): DenoBuildError {
  const base = /Setting up base binary[\s\S]*?(?:\n\s*\d+: (.*))/.exec(output)
  if (base) {
    return new DenoBaseUnavailableError(`deno compile could not get denort, the runtime every compiled binary is made from, which it downloads per Deno version and which the deno npm package does not ship: ${base[1]!.trim()}. Put the denort zip of this Deno version in $DENO_DIR/dl/release/ or set DENORT_BIN to a denort executable`)
  }
  return new DenoBuildError(`deno compile exited with ${code}:\n${output.trim().split('\n').slice(-20).join('\n')}`)
}

export async function buildDenoBinary(outfile = join(REPOSITORY_ROOT, 'dist', 'learning-loop-node-deno')): Promise<DenoBuildResult> {
  const started = performance.now()
  await mkdir(dirname(outfile), { recursive: true })
  const run = Bun.spawnSync(denoCompileCommand(outfile), { cwd: REPOSITORY_ROOT, env: { ...process.env, NO_COLOR: '1' }, stdout: 'pipe', stderr: 'pipe' })
  if (run.exitCode !== 0) throw compileFailure(run.stdout.toString() + run.stderr.toString(), run.exitCode)
  return { outfile, bytes: statSync(outfile).size, seconds: (performance.now() - started) / 1000 }
}

/** sha256 over what decides the binary: sources, manifests, the built-in model, this script, the Deno version. */
function sourceFingerprint(): string {
  const hash = createHash('sha256').update(readFileSync(join(REPOSITORY_ROOT, 'node_modules', 'deno', 'package.json')))
  const files = ['src', 'assets/builtin-model'].flatMap((folder) => readdirSync(join(REPOSITORY_ROOT, folder), { recursive: true, encoding: 'utf8' }).map((name) => join(folder, name)))
  for (const file of [...files, 'scripts/build-deno-binary.ts', 'package.json', 'package-lock.json', 'deno.json'].sort()) {
    const path = join(REPOSITORY_ROOT, file)
    if (statSync(path).isFile()) hash.update(file).update('\0').update(readFileSync(path)).update('\0')
  }
  return hash.digest('hex').slice(0, 16)
}

/**
 * Builds into `.cache/binary/deno-<fingerprint>/learning-loop-node-deno` unless that exists (older ones are
 * removed): for the test, so CI compiles once per source state.
 */
export async function buildDenoBinaryCached(): Promise<DenoBuildResult & { cached: boolean }> {
  const cacheDir = join(REPOSITORY_ROOT, '.cache', 'binary')
  const folder = `deno-${sourceFingerprint()}`
  const outfile = join(cacheDir, folder, 'learning-loop-node-deno')
  if (existsSync(outfile)) return { outfile, bytes: statSync(outfile).size, seconds: 0, cached: true }
  const scratch = join(cacheDir, `${folder}.building-${process.pid}`)
  await rm(scratch, { recursive: true, force: true })
  let result: DenoBuildResult
  try {
    result = await buildDenoBinary(join(scratch, 'learning-loop-node-deno'))
  } catch (error) {
    await rm(scratch, { recursive: true, force: true })
    throw error
  }
  await rm(dirname(outfile), { recursive: true, force: true })
  await rename(scratch, dirname(outfile))
  for (const entry of readdirSync(cacheDir)) {
    if (entry !== folder && /^deno-[0-9a-f]{16}$/.test(entry)) await rm(join(cacheDir, entry), { recursive: true, force: true })
  }
  return { ...result, outfile, cached: false }
}

if (import.meta.main) {
  const outfile = process.argv.slice(2).find((argument) => argument.startsWith('--outfile='))?.slice('--outfile='.length)
  const unknown = process.argv.slice(2).filter((argument) => !argument.startsWith('--outfile='))
  if (unknown.length > 0) {
    console.error(`build-deno-binary: unknown argument ${JSON.stringify(unknown[0])}; usage: bun scripts/build-deno-binary.ts [--outfile=PATH]`)
    process.exit(2)
  }
  try {
    const result = await buildDenoBinary(outfile ? resolve(outfile) : undefined)
    console.log(`built ${relative(process.cwd(), result.outfile) || result.outfile} in ${result.seconds.toFixed(1)} s, ${(result.bytes / 1024 / 1024).toFixed(1)} MiB`)
  } catch (error) {
    console.error(`build-deno-binary: ${(error as Error).message}`)
    process.exit(error instanceof DenoBuildError ? 2 : 1)
  }
}
