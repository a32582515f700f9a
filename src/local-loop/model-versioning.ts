import type { Category } from '../contract/index.ts'
import { quoteInput } from '../foundation/log.ts'

/**
 * Model versions of the local Loop: `<training number>.<k>`, k counting from 0 per training, so the first
 * model of training 1 is "1.0", the next "1.1" (upstream shows versions like "1.3"). A trainer uploads one
 * format at a time (§8.8); the formats of one run belong to one model, so an upload adds its format to the
 * training's latest model when that model lacks it, and otherwise starts the next version. Pure.
 */
export interface ExistingModel {
  id: string
  version: string
  formats: readonly string[]
}

export type ModelUploadPlan =
  | { kind: 'add-format'; modelId: string; version: string }
  | { kind: 'new-model'; version: string }

/** `models` are the models of training `trainingNumber` (any order). */
export function planModelUpload(trainingNumber: number, models: readonly ExistingModel[], format: string): ModelUploadPlan {
  const ours = models
    .map((m) => ({ model: m, minor: minorOf(trainingNumber, m.version) }))
    .filter((m): m is { model: ExistingModel; minor: number } => m.minor !== undefined)
    .sort((a, b) => a.minor - b.minor)
  const latest = ours.at(-1)
  if (latest && !latest.model.formats.includes(format)) {
    return { kind: 'add-format', modelId: latest.model.id, version: latest.model.version }
  }
  return { kind: 'new-model', version: `${trainingNumber}.${latest ? latest.minor + 1 : 0}` }
}

/** k of "<n>.<k>" when the version belongs to training n. */
function minorOf(trainingNumber: number, version: string): number | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(version)
  if (!match || Number(match[1]) !== trainingNumber) return undefined
  return Number(match[2])
}

/** Orders versions numerically part by part ("1.10" after "1.9"). */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number)
  const right = b.split('.').map(Number)
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0)
    if (difference !== 0 && !Number.isNaN(difference)) return difference
  }
  return a.localeCompare(b)
}

export interface ModelFacts {
  id: string
  host: string | null
  organization: string
  project: string
  version: string
  format: string
  /** used when the uploaded model.json has none */
  projectCategories: readonly Category[]
}

/**
 * The model.json served in a model zip (§6.4): what the uploader sent, with the keys the Loop owns set
 * (`host`, `organization`, `project`, `version`, `id`, `format`) and the node-local `model_root_path` removed.
 */
export function rewriteModelJson(uploaded: Record<string, unknown> | undefined, facts: ModelFacts): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(uploaded ?? {}) }
  delete out.model_root_path
  if (!Array.isArray(out.categories)) out.categories = [...facts.projectCategories]
  out.id = facts.id
  out.host = facts.host
  out.organization = facts.organization
  out.project = facts.project
  out.version = facts.version
  out.format = facts.format
  return out
}

/** File name of a model download: only characters that are safe in a header and on every file system. */
export function modelZipName(facts: { organization: string; project: string; version: string; format: string }): string {
  const safe = (text: string) => text.replace(/[^A-Za-z0-9._-]+/g, '_')
  return `${safe(facts.organization)}_${safe(facts.project)}_${safe(facts.version)}_${safe(facts.format)}.zip`
}

/** Why a file name from an upload cannot be stored as is, or undefined. Model folders are flat (§7.7). */
export function modelFileNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'a file has an empty name'
  if (name.length > 255) return `file name ${JSON.stringify(name.slice(0, 40))}… is longer than 255 characters`
  if (name === '.' || name === '..' || /[\/\\\u0000-\u001f]/.test(name)) return `file name ${quoteInput(name)} is not a plain file name`
  // the zip writer keys its entries by name in a plain object, where this one would become the prototype
  if (name === '__proto__') return 'file name "__proto__" is reserved'
  return undefined
}

/** Why `format` cannot name a model format (it is a URL segment and a folder name), or undefined. */
export function modelFormatProblem(format: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(format)) return `model format ${quoteInput(format)} must be letters, digits, '_', '.', '-' (at most 100)`
  return undefined
}
