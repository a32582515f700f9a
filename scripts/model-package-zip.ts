import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createZip } from '../src/foundation/zip-archive.ts'

/** The files of a model folder (model.json, model.onnx, …), read once so that many packages can be made from them. */
export async function readModelFiles(dir: string): Promise<Record<string, Uint8Array>> {
  const names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name)
  return Object.fromEntries(await Promise.all(names.map(async (name) => [name, new Uint8Array(await readFile(join(dir, name)))] as const)))
}

/** A model package zip of `files` whose model.json names `version` (benchmarks upload the same model as new versions). */
export function modelPackageZip(files: Record<string, Uint8Array>, version: string): Uint8Array {
  const json = JSON.parse(new TextDecoder().decode(files['model.json']))
  return createZip({ ...files, 'model.json': JSON.stringify({ ...json, version }) })
}
