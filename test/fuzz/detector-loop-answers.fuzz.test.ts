/**
 * Fuzz suite of the detector's model updater (issue 11): what a broken or hostile Loop answers to
 * `GET …/deployment/target` (#10) and `GET …/models/{id}/{format}/file` (#7), from a scripted Loop. A refused
 * answer leaves the served model, the data folder and everything beside it as they were, and is named in a log
 * line or the node's status; a valid deployment afterwards is still installed and served.
 *
 * Entry points: the deployment target (its JSON shape, `version` as a folder name) and the model zip (entries,
 * sizes, links) that the update cycle reads.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { DetectorNode } from '../../src/detector/detector-node.ts'
import { builtinModelDir } from '../../src/inference/builtin-model.ts'
import { createZip } from '../../src/foundation/zip-archive.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { startScriptedLoop, type ScriptedLoop } from '../loop/scripted-loop.ts'
import { makeTempDir } from '../support/temp.ts'
import { startTestDetector } from '../support/test-detector.ts'
import { expectHealthy, folderSnapshot } from './fuzz-harness.ts'
import { deepJsonObject, zipBomb, zipClaimingSize, zipWithEntries, zipWithSymlink } from './fuzz-inputs.ts'

setDefaultTimeout(60_000)

const astronaut = new Uint8Array(await readFile(join(import.meta.dir, '../fixtures/astronaut.jpg')))
const BUILTIN_VERSION = 'builtin-blazeface-1'

let temp: { path: string; cleanup(): Promise<void> }
let peer: ScriptedLoop
let detector: DetectorNode
let dataFolder: string
const logLines: string[] = []
let restoreSink: ((line: string) => void) | undefined
/** what the scripted Loop answers now */
let target: () => Response = () => new Response('{"detail":"no target"}', { status: 404 })
const zips = new Map<string, Uint8Array>()

beforeAll(async () => {
  temp = await makeTempDir('lln-fuzz-detector-loop-')
  restoreSink = setLogSink((line) => {
    logLines.push(line)
  })
  // what a version like ../../victim would reach from <temp>/detector/data/models
  for (const folder of [join(temp.path, 'victim'), join(temp.path, 'detector', 'victim'), join(temp.path, 'detector', 'data', 'victim')]) {
    await mkdir(folder, { recursive: true })
    await writeFile(join(folder, 'keep.txt'), 'precious')
  }
  peer = startScriptedLoop()
  peer.route = (req) => {
    const path = new URL(req.url).pathname
    if (path === '/api/local/projects/demo/deployment/target') return target()
    const file = /^\/api\/local\/projects\/demo\/models\/([^/]+)\/onnx\/file$/.exec(path)
    if (file) {
      const zip = zips.get(decodeURIComponent(file[1]!))
      return zip ? new Response(zip as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/zip' } }) : undefined
    }
    if (path === '/api/local/projects/demo/detectors') return Response.json({ success: true })
    if (path === '/api/local/projects/demo/models') return Response.json({ models: [] })
    return undefined
  }
  dataFolder = join(temp.path, 'detector', 'data')
  detector = await startTestDetector(peer.url, dataFolder, { LOOP_USERNAME: 'alice', LOOP_PASSWORD: 'secret' })
})

afterAll(async () => {
  await detector?.stop()
  await peer?.stop()
  if (restoreSink) setLogSink(restoreSink)
  await temp?.cleanup()
})

/** Everything under the temp folder but the detector's outbox (the node's own bookkeeping) and its uuid file. */
const everything = () => folderSnapshot(temp.path, (path) => path.startsWith('detector/data/outbox/') || path === 'detector/data/uuids.json')

/** One update cycle against `answer`; what the log and the node's status said meanwhile. */
async function cycleWith(answer: () => Response): Promise<string> {
  target = answer
  const from = logLines.length
  await detector.updater.cycle()
  return [...logLines.slice(from), JSON.stringify(detector.runtime.status.errors ?? {})].join('\n')
}

async function expectStillServingTheBuiltinModel(): Promise<void> {
  await expectHealthy(detector.url)
  const about = (await (await fetch(`${detector.url}/about`)).json()) as { model_info: { version: string } }
  expect(about.model_info.version).toBe(BUILTIN_VERSION)
  // no version folder was left behind (the built-in model is served from where it lies)
  expect(await readdir(join(dataFolder, 'models')).catch(() => [])).toEqual([])
}

interface TargetRow {
  input: string
  answer: () => Response
  says: RegExp
}

const json = (body: unknown) => () => Response.json(body)
const targetRows: TargetRow[] = [
  ...['../../victim', '../../../victim', '../victim', '..', '/tmp/lln-fuzz-absolute', '1.0/../../../victim', '__proto__', '', 'a\u0000b', '1.0\u202E', '1.0 ', '1..0'].map((version): TargetRow => ({
    input: `version ${JSON.stringify(version)}`, answer: json({ model_uuid: 'm-1', version }), says: /deployment target has the version .*which is not a version number/,
  })),
  { input: 'null', answer: json(null), says: /could not check the deployment target.*expected object/ },
  { input: 'an array', answer: json([{ model_uuid: 'm', version: '1.0' }]), says: /could not check the deployment target.*expected object/ },
  { input: 'version as a number', answer: json({ model_uuid: 'm', version: 1.0 }), says: /could not check the deployment target.*\/version: expected string/ },
  { input: 'model_uuid missing', answer: json({ version: '1.0' }), says: /could not check the deployment target.*\/model_uuid: required field is missing/ },
  { input: 'JSON nested 10 000 deep', answer: () => new Response(deepJsonObject(), { headers: { 'content-type': 'application/json' } }), says: /could not check the deployment target/ },
  { input: 'not JSON', answer: () => new Response('<html>gateway</html>', { status: 200 }), says: /could not check the deployment target/ },
  { input: 'a 500', answer: () => new Response('{"detail":"boom"}', { status: 500 }), says: /could not check the deployment target.*500/ },
]

describe('the deployment target', () => {
  test.each(targetRows.map((row) => [row.input, row] as const))('%s: refused, named in the log; the model, the data folder and everything beside it unchanged', async (_, row) => {
    const before = await everything()
    const said = await cycleWith(row.answer)
    expect(said).toMatch(row.says)
    expect(await everything()).toEqual(before)
    await expectStillServingTheBuiltinModel()
  })
})

interface ZipRow {
  input: string
  zip: () => Uint8Array
  says: RegExp
}

const modelJson = JSON.stringify({ id: 'x', host: null, organization: 'local', project: 'demo', version: '1.0', categories: [] })
const zipRows: ZipRow[] = [
  { input: 'a zip bomb (64 MiB of zeros in 65 KB)', zip: () => zipBomb('model.onnx', 64 * 1024 * 1024, { 'model.json': modelJson }), says: /expands from \d+ to 67108864 bytes.*zip bomb/ },
  { input: 'an entry claiming 1.5 GiB', zip: () => zipClaimingSize(1.5 * 2 ** 30, { 'model.json': modelJson }), says: /zip bomb|header says/ },
  { input: 'an entry named ../../../victim/evil.txt', zip: () => zipWithEntries({ 'model.json': modelJson, '../../../victim/evil.txt': 'x' }), says: /escapes the target folder/ },
  { input: 'an entry with an absolute path', zip: () => zipWithEntries({ 'model.json': modelJson, '/tmp/lln-fuzz-absolute/evil.txt': 'x' }), says: /has an absolute path/ },
  { input: 'an entry with a Windows drive', zip: () => zipWithEntries({ 'model.json': modelJson, 'C:\\evil.txt': 'x' }), says: /has an absolute path/ },
  { input: 'a symbolic link to /etc', zip: () => zipWithSymlink('model.onnx', '/etc/passwd', { 'model.json': modelJson }), says: /is a symbolic link/ },
  { input: 'an entry with a NUL in its name', zip: () => zipWithEntries({ 'model.json': modelJson, 'a\u0000b.onnx': 'x' }), says: /NUL byte/ },
  { input: 'a folder 2000 levels deep', zip: () => zipWithEntries({ 'model.json': modelJson, [`${'d/'.repeat(2000)}x.onnx`]: 'x' }), says: /lies 2000 folders deep, more than the limit of 32/ },
  { input: 'not a zip', zip: () => new TextEncoder().encode('PK but not really'), says: /not a zip archive/ },
  { input: 'no model.json', zip: () => zipWithEntries({ 'model.onnx': 'not a model' }), says: /model\.json/ },
  { input: 'model.json nested 10 000 deep', zip: () => zipWithEntries({ 'model.json': deepJsonObject(), 'model.onnx': 'x' }), says: /model\.json.*invalid/ },
  { input: 'a model.onnx that is not ONNX', zip: () => zipWithEntries({ 'model.json': modelJson, 'model.onnx': 'not a model' }), says: /Could not update model/ },
]

describe('the model zip', () => {
  let next = 10
  test.each(zipRows.map((row) => [row.input, row] as const))('%s: refused and named in the status; nothing written anywhere', async (_, row) => {
    const version = `${next++}.0`
    const id = `model-${version}`
    zips.set(id, row.zip())
    const before = await everything()
    const said = await cycleWith(json({ model_uuid: id, version }))
    expect(said).toMatch(row.says)
    expect(detector.runtime.status.errors?.update_model).toContain('Could not update model')
    expect(await everything()).toEqual(before)
    await expectStillServingTheBuiltinModel()
  })

  test('afterwards a valid deployment is installed, served and finds the face', async () => {
    const source = builtinModelDir()
    const files: Record<string, Uint8Array | string> = {}
    for (const name of await readdir(source)) files[name] = new Uint8Array(await readFile(join(source, name)))
    files['model.json'] = JSON.stringify({ ...JSON.parse(new TextDecoder().decode(files['model.json'] as Uint8Array)), version: '99.0', id: 'model-99.0' })
    zips.set('model-99.0', createZip(files))
    await cycleWith(json({ model_uuid: 'model-99.0', version: '99.0' }))
    const about = (await (await fetch(`${detector.url}/about`)).json()) as { model_info: { version: string } }
    expect(about.model_info.version).toBe('99.0')
    expect(detector.runtime.status.errors?.update_model).toBeUndefined()
    const form = new FormData()
    form.append('file', new File([astronaut], 'a.jpg'))
    const answer = (await (await fetch(`${detector.url}/detect?autoupload=disabled`, { method: 'POST', body: form })).json()) as { box_detections: { category_name: string }[] }
    expect(answer.box_detections.map((d) => d.category_name)).toEqual(['face'])
    for (const folder of ['victim', 'detector/victim', 'detector/data/victim']) expect(await readFile(join(temp.path, folder, 'keep.txt'), 'utf8')).toBe('precious')
  })
})
