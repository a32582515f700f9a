/**
 * Builds the single executable: `bun scripts/build-binary.ts [--target=bun-linux-arm64] [--outfile=PATH]
 * [--no-bytecode] [--with-webgpu-wasm]` (npm run build). Default target: the host's Linux architecture →
 * dist/learning-loop-node; another target → dist/learning-loop-node-<os>-<arch>.
 *
 * What goes in (runtime-notes §1–§3):
 * - code: src/cli/main.ts; its subcommands are `import('./x-command.ts')` with literal paths, so every
 *   command added there is bundled without touching this script;
 * - Workers: every `new Worker(new URL('./name.ts', import.meta.url))` (or `startModuleWorker(…)`, the
 *   runtime edge's) under src/ becomes an extra entrypoint. In a binary that URL resolves next to the main
 *   module (`/$bunfs/root/name.ts`), so each worker gets a one-line virtual entry `src/cli/name.ts`
 *   (root = src/cli) that imports the real file;
 * - onnxruntime-node's addon (Bun resolves its require template for the target) and, through the
 *   generated src/foundation/embedded-assets.ts (the only module that imports files `with { type: 'file' }`:
 *   Deno cannot load such imports, so src/ itself has none), the target's libonnxruntime.so.1, the built-in
 *   model, onnxruntime-web's wasm + glue, the detector status page and the GPU verification model;
 * - @napi-rs/image's addon when the target's package is installed; otherwise (e.g. arm64 built on x64)
 *   @napi-rs/image is replaced by a module that throws a clear error and decoding falls back to jpeg-js.
 * What stays out: CUDA provider libraries (ORT_LIB_DIR at run time) and WebGPU through
 * onnxruntime-web + dawn.node (`webgpu` is external: its loader computes dawn.node's path at run time,
 * which cannot point into a binary; its 26 MB asyncify wasm is left out unless --with-webgpu-wasm).
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LOOP_PAGE_FILES } from '../src/local-loop/web-page.ts'

export const REPOSITORY_ROOT = resolve(import.meta.dir, '..')
const SRC = join(REPOSITORY_ROOT, 'src')
const CLI_DIR = join(SRC, 'cli')
const MAIN_ENTRY = join(CLI_DIR, 'main.ts')
const EMBEDDED_ASSETS_MODULE = join(SRC, 'foundation', 'embedded-assets.ts')
const PORTABLE_IMAGE_MODULE = join(REPOSITORY_ROOT, 'scripts', 'portable-image-module.ts')
const BUILTIN_MODEL_DIR = join(REPOSITORY_ROOT, 'assets', 'builtin-model')
const BUILTIN_MODEL_FILES = ['model.json', 'model.onnx', 'LICENSE', 'NOTICE']
const SUPPORTED_TARGETS = ['bun-linux-x64', 'bun-linux-x64-baseline', 'bun-linux-arm64'] as const
export type BinaryTarget = (typeof SUPPORTED_TARGETS)[number]

export interface BuildOptions {
  target?: BinaryTarget
  outfile?: string
  /** precompile to JavaScriptCore bytecode (faster start); falls back to plain when the build refuses */
  bytecode?: boolean
  /** also embed onnxruntime-web's 26 MB WebGPU wasm (useless unless dawn.node can load: it cannot from a binary) */
  withWebgpuWasm?: boolean
  /** use the jpeg-js stand-in for @napi-rs/image even when the addon is available */
  portableImage?: boolean
  log?: (line: string) => void
}

export interface BuildResult {
  outfile: string
  target: BinaryTarget
  bytes: number
  bytecode: boolean
  workers: string[]
  /** where the image addon came from, or why the binary uses jpeg-js */
  nativeImageDecoder: string
  seconds: number
}

export class BuildError extends Error {}

export function hostTarget(): BinaryTarget {
  if (process.platform !== 'linux') throw new BuildError(`binaries are built for Linux (host is ${process.platform}); pass --target=bun-linux-x64 or bun-linux-arm64`)
  if (process.arch === 'x64') return 'bun-linux-x64'
  if (process.arch === 'arm64') return 'bun-linux-arm64'
  throw new BuildError(`no binary target for ${process.arch}`)
}

/** `linux-x64` for `bun-linux-x64` and `bun-linux-x64-baseline`: the folder names native packages use. */
export function targetPlatform(target: BinaryTarget): { os: 'linux'; arch: 'x64' | 'arm64' } {
  return { os: 'linux', arch: target.startsWith('bun-linux-arm64') ? 'arm64' : 'x64' }
}

export function defaultOutfile(target: BinaryTarget): string {
  const { os, arch } = targetPlatform(target)
  const host = (() => { try { return targetPlatform(hostTarget()) } catch { return undefined } })()
  const suffix = host && host.arch === arch ? '' : `-${os}-${arch}`
  return join(REPOSITORY_ROOT, 'dist', `learning-loop-node${suffix}`)
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function describeFile(path: string): { path: string; size: number; sha256: string } {
  return { path, size: statSync(path).size, sha256: sha256(readFileSync(path)) }
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => join(dir, name))
}

const WORKER_URL = /(?:new\s+\w*Worker|startModuleWorker)\(\s*new\s+URL\(\s*['"]\.\/([\w.-]+\.ts)['"]\s*,\s*import\.meta\.url\s*\)/g

/** Every worker module started with `new Worker(new URL('./x.ts', import.meta.url))` or `startModuleWorker(new URL(…))` under src/. */
export function findWorkerModules(srcDir: string = SRC): string[] {
  const found = new Set<string>()
  for (const file of tsFiles(srcDir)) {
    for (const match of readFileSync(file, 'utf8').matchAll(WORKER_URL)) found.add(join(dirname(file), match[1]!))
  }
  const workers = [...found].sort()
  const byName = new Map<string, string>()
  for (const worker of workers) {
    if (!existsSync(worker)) throw new BuildError(`${relative(REPOSITORY_ROOT, worker)} is started as a Worker but does not exist`)
    const clash = byName.get(basename(worker))
    if (clash) throw new BuildError(`two workers share the file name ${basename(worker)} (${clash}, ${worker}); in a binary every worker lives next to the main module, so names must be unique`)
    byName.set(basename(worker), worker)
  }
  return workers
}

/** The generated src/foundation/embedded-assets.ts: imports the target's files `with { type: 'file' }`. */
export function embeddedAssetsModule(target: BinaryTarget, withWebgpuWasm: boolean): string {
  const { os, arch } = targetPlatform(target)
  const ortPackage = dirname(fileURLToPath(import.meta.resolve('onnxruntime-node/package.json')))
  const ortVersion = (JSON.parse(readFileSync(join(ortPackage, 'package.json'), 'utf8')) as { version: string }).version
  const ortLibrary = join(ortPackage, 'bin', 'napi-v6', os, arch, 'libonnxruntime.so.1')
  if (!existsSync(ortLibrary)) throw new BuildError(`onnxruntime-node ${ortVersion} ships no ${ortLibrary}`)
  const missingModel = BUILTIN_MODEL_FILES.filter((name) => !existsSync(join(BUILTIN_MODEL_DIR, name)))
  if (missingModel.length > 0) throw new BuildError(`the built-in model is not prepared (${missingModel.join(', ')} missing in ${BUILTIN_MODEL_DIR}): run \`bun scripts/prepare-builtin-model.ts\``)

  const imports: string[] = []
  const fileEntry = (variable: string, path: string) => {
    imports.push(`import ${variable} from ${JSON.stringify(path)} with { type: 'file' }`)
    const { size, sha256 } = describeFile(path)
    return `{ path: ${variable} as unknown as string, size: ${size}, sha256: ${JSON.stringify(sha256)} }`
  }
  const ortEntry = fileEntry('ortLibrary', ortLibrary)
  const modelEntries = BUILTIN_MODEL_FILES.map((name, index) => `${JSON.stringify(name)}: ${fileEntry(`builtinModel${index}`, join(BUILTIN_MODEL_DIR, name))}`)
  const testingTrainerEntry = fileEntry('testingTrainerScript', join(SRC, 'trainer', 'testing-trainer-script.ts'))
  const statusPageEntry = fileEntry('statusPage', join(SRC, 'detector', 'status-page', 'index.html'))
  const apiDocsPageEntry = fileEntry('apiDocsPage', join(SRC, 'node', 'api-docs-page', 'index.html'))
  const loopPageEntries = LOOP_PAGE_FILES.map((name, index) => `${JSON.stringify(name)}: ${fileEntry(`loopPage${index}`, join(SRC, 'local-loop', 'web-page', name))}`)
  const verificationModelEntry = fileEntry('verificationModel', join(SRC, 'inference', 'verification-model.onnx'))
  const ortWebWasmEntry = fileEntry('ortWebWasm', fileURLToPath(import.meta.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm')))
  const ortWebGlueEntry = fileEntry('ortWebWasmGlue', fileURLToPath(import.meta.resolve('onnxruntime-web/ort-wasm-simd-threaded.mjs')))
  const webgpuEntry = withWebgpuWasm
    ? fileEntry('ortWebWebgpuWasm', fileURLToPath(import.meta.resolve('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm')))
    : 'undefined'
  return [
    `// generated by scripts/build-binary.ts for ${target}; replaces the stub in the binary only`,
    ...imports,
    // the stub's types are erased by the bundler, so the replacement only needs the value
    `export const EMBEDDED_ASSETS = {`,
    `  target: ${JSON.stringify(target)},`,
    `  ortLibrary: { ...${ortEntry}, ortVersion: ${JSON.stringify(ortVersion)} },`,
    `  builtinModel: { files: { ${modelEntries.join(', ')} } },`,
    `  ortWebWebgpuWasm: ${webgpuEntry},`,
    `  testingTrainerScript: ${testingTrainerEntry},`,
    `  statusPage: ${statusPageEntry},`,
    `  apiDocsPage: ${apiDocsPageEntry},`,
    `  loopPage: { files: { ${loopPageEntries.join(', ')} } },`,
    `  verificationModel: ${verificationModelEntry},`,
    `  ortWebWasm: { wasm: ${ortWebWasmEntry}, mjs: ${ortWebGlueEntry} },`,
    `}`,
    '',
  ].join('\n')
}

export type NativeImageSource =
  | { kind: 'addon'; path: string; from: 'node_modules' | 'npm pack' }
  | { kind: 'portable'; reason: string }

/**
 * The target's @napi-rs/image addon: the installed platform package, else one fetched once with
 * `npm pack` into .cache/binary/npm/ (npm only installs the host's platform package), else the
 * jpeg-js stand-in (scripts/portable-image-module.ts) with the reason.
 */
export function nativeImageSource(target: BinaryTarget, fetchMissing = true): NativeImageSource {
  const { os, arch } = targetPlatform(target)
  const name = `@napi-rs/image-${os}-${arch}-gnu`
  const file = `image.${os}-${arch}-gnu.node`
  const napiEntry = fileURLToPath(import.meta.resolve('@napi-rs/image'))
  try {
    const installed = join(dirname(fileURLToPath(import.meta.resolve(`${name}/package.json`, napiEntry))), file)
    if (existsSync(installed)) return { kind: 'addon', path: installed, from: 'node_modules' }
  } catch {
    // not installed: try the cache
  }
  const version = (JSON.parse(readFileSync(join(dirname(napiEntry), 'package.json'), 'utf8')) as { version: string }).version
  const cacheDir = join(REPOSITORY_ROOT, '.cache', 'binary', 'npm', `${name.slice(1).replace('/', '-')}-${version}`)
  const cached = join(cacheDir, 'package', file)
  if (existsSync(cached)) return { kind: 'addon', path: cached, from: 'npm pack' }
  if (!fetchMissing) return { kind: 'portable', reason: `${name} is not installed (and fetching was not allowed)` }
  const run = (command: string[], cwd: string) => Bun.spawnSync(command, { cwd, stdout: 'pipe', stderr: 'pipe' })
  try {
    mkdirSync(cacheDir, { recursive: true })
    const packed = run(['npm', 'pack', `${name}@${version}`, '--silent'], cacheDir)
    const tarball = packed.stdout.toString().trim().split('\n').pop()
    if (packed.exitCode !== 0 || !tarball) return { kind: 'portable', reason: `${name}@${version} is not installed and \`npm pack\` failed: ${packed.stderr.toString().trim().split('\n').pop()}` }
    const unpacked = run(['tar', 'xzf', tarball, `package/${file}`, 'package/package.json'], cacheDir)
    if (unpacked.exitCode !== 0 || !existsSync(cached)) return { kind: 'portable', reason: `${tarball} did not unpack: ${unpacked.stderr.toString().trim()}` }
    return { kind: 'addon', path: cached, from: 'npm pack' }
  } catch (error) {
    return { kind: 'portable', reason: `${name}@${version} is not installed and could not be fetched: ${(error as Error).message}` }
  }
}

export async function buildBinary(options: BuildOptions = {}): Promise<BuildResult> {
  const started = performance.now()
  const log = options.log ?? ((line: string) => console.log(line))
  const target = options.target ?? hostTarget()
  const outfile = resolve(options.outfile ?? defaultOutfile(target))
  const workers = findWorkerModules()
  const files: Record<string, string> = {
    [EMBEDDED_ASSETS_MODULE]: embeddedAssetsModule(target, options.withWebgpuWasm ?? false),
  }
  const workerEntries: string[] = []
  for (const worker of workers) {
    const entry = join(CLI_DIR, basename(worker))
    if (existsSync(entry)) throw new BuildError(`src/cli/${basename(worker)} exists; the build needs that name for the virtual entry of ${relative(REPOSITORY_ROOT, worker)}`)
    files[entry] = `// virtual entry: in the binary this worker must sit next to the main module\nimport ${JSON.stringify(worker)}\n`
    workerEntries.push(entry)
  }

  // @napi-rs/image's own loader probes every platform at run time; the binary gets exactly the target's addon
  const napiEntry = fileURLToPath(import.meta.resolve('@napi-rs/image'))
  const image = options.portableImage ? { kind: 'portable' as const, reason: '--portable-image was given' } : nativeImageSource(target)
  if (image.kind === 'addon') {
    files[napiEntry] = `module.exports = require(${JSON.stringify(image.path)})\n`
  } else {
    files[napiEntry] = `export * from ${JSON.stringify(PORTABLE_IMAGE_MODULE)}\n`
    log(`note: no native image addon for ${target} (${image.reason}): this binary reads and writes JPEG with jpeg-js only, PNG input is refused`)
  }

  await mkdir(dirname(outfile), { recursive: true })
  const attempt = (bytecode: boolean) => Bun.build({
    entrypoints: [MAIN_ENTRY, ...workerEntries],
    root: CLI_DIR,
    files,
    external: ['webgpu'],
    minify: true,
    bytecode,
    format: 'esm',
    target: 'bun',
    compile: { target, outfile, autoloadDotenv: false, autoloadBunfig: false, autoloadTsconfig: false, autoloadPackageJson: false },
    throw: false,
  })
  let bytecode = options.bytecode ?? true
  let result = await attempt(bytecode)
  if (!result.success && bytecode) {
    log(`note: the bytecode build failed (${result.logs.map(String).join('; ')}); building without --bytecode`)
    bytecode = false
    result = await attempt(false)
  }
  if (!result.success) throw new BuildError(`bun build failed:\n${result.logs.map(String).join('\n')}`)
  const bytes = (await stat(outfile)).size
  return { outfile, target, bytes, bytecode, workers: workers.map((w) => relative(REPOSITORY_ROOT, w)), nativeImageDecoder: image.kind === 'addon' ? `${relative(REPOSITORY_ROOT, image.path)} (${image.from})` : `jpeg-js (${image.reason})`, seconds: (performance.now() - started) / 1000 }
}

/** Files whose content decides the binary: sources, the build itself, manifests, the built-in model. */
function fingerprintInputs(): string[] {
  const files = [
    ...tsFiles(SRC),
    ...readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((n) => !n.endsWith('.ts')).map((n) => join(SRC, n)),
    join(REPOSITORY_ROOT, 'scripts', 'build-binary.ts'),
    PORTABLE_IMAGE_MODULE,
    join(REPOSITORY_ROOT, 'package.json'),
    join(REPOSITORY_ROOT, 'package-lock.json'),
    ...BUILTIN_MODEL_FILES.map((name) => join(BUILTIN_MODEL_DIR, name)),
  ]
  return [...new Set(files)].filter((file) => existsSync(file) && statSync(file).isFile()).sort()
}

/** sha256 over the build inputs, the target, the options and the Bun version: the cache key of a binary. */
export function sourceFingerprint(options: BuildOptions = {}): string {
  const hash = createHash('sha256')
  const target = options.target ?? hostTarget()
  hash.update(JSON.stringify({ target, bun: Bun.version, bytecode: options.bytecode ?? true, webgpu: options.withWebgpuWasm ?? false, portable: options.portableImage ?? false }))
  for (const file of fingerprintInputs()) {
    hash.update(relative(REPOSITORY_ROOT, file)).update('\0').update(readFileSync(file)).update('\0')
  }
  return hash.digest('hex').slice(0, 16)
}

export const BINARY_CACHE_DIR = join(REPOSITORY_ROOT, '.cache', 'binary')

/**
 * Builds into `.cache/binary/<target>-<fingerprint>/learning-loop-node` unless that exists, and removes the
 * older builds of the same target (each is ~190 MB). For tests and benchmarks that need a binary of the
 * current sources without rebuilding on every run.
 */
export async function buildBinaryCached(options: Omit<BuildOptions, 'outfile'> = {}): Promise<BuildResult & { cached: boolean }> {
  const target = options.target ?? hostTarget()
  const folderName = `${target}${options.portableImage ? '-portable' : ''}-${sourceFingerprint({ ...options, target })}`
  const outfile = join(BINARY_CACHE_DIR, folderName, 'learning-loop-node')
  const prefix = folderName.replace(/-[0-9a-f]{16}$/, '-')
  if (existsSync(outfile)) {
    return { outfile, target, bytes: statSync(outfile).size, bytecode: options.bytecode ?? true, workers: [], nativeImageDecoder: 'cached build', seconds: 0, cached: true }
  }
  // built under a scratch folder name and renamed, so a cut-off build never looks like a cached one
  const scratch = join(BINARY_CACHE_DIR, `${folderName}.building-${process.pid}`)
  await rm(scratch, { recursive: true, force: true })
  const result = await buildBinary({ ...options, target, outfile: join(scratch, 'learning-loop-node') })
  await rm(dirname(outfile), { recursive: true, force: true })
  await rename(scratch, dirname(outfile))
  for (const entry of readdirSync(BINARY_CACHE_DIR)) {
    if (entry !== folderName && entry.startsWith(prefix) && /^[0-9a-f]{16}$/.test(entry.slice(prefix.length))) {
      await rm(join(BINARY_CACHE_DIR, entry), { recursive: true, force: true })
    }
  }
  return { ...result, outfile, cached: false }
}

function parseCommandLine(argv: string[]): BuildOptions {
  const options: BuildOptions = {}
  for (const argument of argv) {
    const [flag, value] = argument.split('=', 2) as [string, string | undefined]
    if (flag === '--target' && value) {
      if (!(SUPPORTED_TARGETS as readonly string[]).includes(value)) throw new BuildError(`--target=${value}: use one of ${SUPPORTED_TARGETS.join(', ')}`)
      options.target = value as BinaryTarget
    } else if (flag === '--outfile' && value) {
      options.outfile = value
    } else if (argument === '--no-bytecode') {
      options.bytecode = false
    } else if (argument === '--portable-image') {
      options.portableImage = true
    } else if (argument === '--with-webgpu-wasm') {
      options.withWebgpuWasm = true
    } else {
      throw new BuildError(`unknown argument ${JSON.stringify(argument)}; usage: bun scripts/build-binary.ts [--target=${SUPPORTED_TARGETS.join('|')}] [--outfile=PATH] [--no-bytecode] [--with-webgpu-wasm] [--portable-image]`)
    }
  }
  return options
}

if (import.meta.main) {
  try {
    const result = await buildBinary(parseCommandLine(process.argv.slice(2)))
    console.log(`built ${relative(process.cwd(), result.outfile) || result.outfile} for ${result.target} in ${result.seconds.toFixed(1)} s`)
    console.log(`  size ${(result.bytes / 1024 / 1024).toFixed(1)} MiB (${result.bytes} B), bytecode ${result.bytecode ? 'on' : 'off'}, image decoder ${result.nativeImageDecoder}`)
    console.log(`  workers: ${result.workers.join(', ')}`)
  } catch (error) {
    console.error(`build-binary: ${(error as Error).message}`)
    process.exit(error instanceof BuildError ? 2 : 1)
  }
}
