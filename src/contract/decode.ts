import type { Static, TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/** A value that does not match its contract shape. `issues` name each offending path. */
export class ContractError extends Error {
  constructor(readonly shape: string, readonly issues: { path: string; message: string }[]) {
    super(`invalid ${shape}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`)
    this.name = 'ContractError'
  }
}

const MAX_REPORTED_ISSUES = 5
/** A path can hold keys from the input (a record's keys); an error message repeats at most this much of one. */
const MAX_PATH_CHARACTERS = 100

function describeIssue(error: { path: string; message: string; value: unknown }): { path: string; message: string } {
  const missing = error.value === undefined
  const path = error.path.length > MAX_PATH_CHARACTERS ? `${error.path.slice(0, MAX_PATH_CHARACTERS)}…` : error.path
  return { path, message: missing ? 'required field is missing' : error.message.toLowerCase() }
}

/**
 * Validates wire/disk JSON against a contract schema, filling defaults for missing optional fields
 * (the way upstream's dacite does). Unknown keys are kept and ignored. Throws ContractError naming
 * every offending path (up to a few) when a required field is missing or has the wrong type.
 */
export function decode<T extends TSchema>(schema: T, input: unknown): Static<T> {
  const candidate = Value.Default(schema, structuredCloneIfObject(input))
  // a default of {} is merged into what was sent: an array there would pass as {"0": …, "1": …}
  const converted = arrayMadeObject(input, candidate, '')
  if (converted !== undefined) throw new ContractError(String(schema.$id ?? 'value'), [{ path: converted.slice(0, MAX_PATH_CHARACTERS), message: 'expected object' }])
  if (Value.Check(schema, candidate)) return candidate as Static<T>
  const issues: { path: string; message: string }[] = []
  for (const error of Value.Errors(schema, candidate)) {
    // unions report once for the union and once per branch; keep the first report per path
    const issue = describeIssue(error)
    if (issues.some((i) => i.path === issue.path)) continue
    issues.push(issue)
    if (issues.length >= MAX_REPORTED_ISSUES) break
  }
  throw new ContractError(String(schema.$id ?? 'value'), issues)
}

/** Non-throwing variant: `{ ok: true, value }` or `{ ok: false, error }`. */
export function tryDecode<T extends TSchema>(schema: T, input: unknown):
  { ok: true; value: Static<T> } | { ok: false; error: ContractError } {
  try {
    return { ok: true, value: decode(schema, input) }
  } catch (error) {
    if (error instanceof ContractError) return { ok: false, error }
    throw error
  }
}

/** Parses JSON text and decodes it; malformed JSON is a ContractError too. */
export function decodeJson<T extends TSchema>(schema: T, text: string): Static<T> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new ContractError(String(schema.$id ?? 'value'), [{ path: '', message: `malformed JSON: ${(error as Error).message}` }])
  }
  return decode(schema, parsed)
}

/** The path of an array in `sent` that defaulting turned into a plain object in `decoded`, if any. */
function arrayMadeObject(sent: unknown, decoded: unknown, path: string): string | undefined {
  if (sent === null || typeof sent !== 'object' || decoded === null || typeof decoded !== 'object' || ArrayBuffer.isView(sent)) return undefined
  if (Array.isArray(sent) !== Array.isArray(decoded)) return path
  for (const [key, value] of Object.entries(sent)) {
    // a key the clone dropped ("__proto__") has nothing to compare with
    if (!Object.hasOwn(decoded, key)) continue
    const found = arrayMadeObject(value, (decoded as Record<string, unknown>)[key], `${path}/${key}`)
    if (found !== undefined) return found
  }
  return undefined
}

// Value.Default mutates its argument; callers keep their own object unchanged.
function structuredCloneIfObject(input: unknown): unknown {
  if (input === null || typeof input !== 'object') return input
  if (input instanceof Uint8Array) return input
  return cloneKeepingBinary(input)
}

function cloneKeepingBinary(input: unknown): unknown {
  if (input === null || typeof input !== 'object') return input
  if (ArrayBuffer.isView(input) || input instanceof ArrayBuffer) return input
  if (Array.isArray(input)) return input.map(cloneKeepingBinary)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(input)) {
    // JSON.parse makes "__proto__" an own key; assigning it would set the prototype, whose fields would then
    // pass validation without being there. No wire field has that name.
    if (key === '__proto__') continue
    out[key] = cloneKeepingBinary(value)
  }
  return out
}
