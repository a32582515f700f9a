import { SETTINGS, type SettingName, type SettingSpec } from './settings.ts'

export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

type ValueOf<S extends SettingSpec> =
  S['type'] extends 'boolean' ? boolean : S['type'] extends 'integer' | 'number' ? number : string

export type RawSettings = { [K in SettingName]?: ValueOf<(typeof SETTINGS)[K]> }

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on'])
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off'])

function convert(spec: SettingSpec, origin: string, text: string): string | number | boolean {
  switch (spec.type) {
    case 'string':
      return text
    case 'boolean': {
      const word = text.trim().toLowerCase()
      if (TRUE_WORDS.has(word)) return true
      if (FALSE_WORDS.has(word)) return false
      throw new ConfigError(`${origin}=${JSON.stringify(text)} is not a boolean (use true/false, 1/0)`)
    }
    case 'integer':
    case 'number': {
      const value = Number(text.trim())
      if (text.trim() === '' || !Number.isFinite(value) || (spec.type === 'integer' && !Number.isInteger(value))) {
        throw new ConfigError(`${origin}=${JSON.stringify(text)} is not ${spec.type === 'integer' ? 'an integer' : 'a number'}`)
      }
      return value
    }
  }
}

/**
 * Looks a setting up in the environment under its name and aliases. Empty values count as unset.
 * Upstream silently unsets a setting when a name and its alias disagree (§15.2); here that is an error
 * naming both, so an OS-level `USERNAME` can never quietly disable `LOOP_USERNAME`.
 */
export function readEnvSetting(spec: SettingSpec, env: Record<string, string | undefined>): string | undefined {
  const found = spec.env
    .map((name) => ({ name, value: env[name] }))
    .filter((entry): entry is { name: string; value: string } => entry.value !== undefined && entry.value !== '')
  if (found.length === 0) return undefined
  const first = found[0]!
  const conflicting = found.find((entry) => entry.value !== first.value)
  if (conflicting) {
    throw new ConfigError(
      `${first.name}=${JSON.stringify(first.value)} conflicts with ${conflicting.name}=${JSON.stringify(conflicting.value)}; ` +
      `unset one of them or make them equal`)
  }
  return first.value
}

/**
 * Reads every known setting from flags (which win) and the environment.
 * `flags` holds raw strings keyed by flag name (without `--`); a boolean flag given bare is "true".
 */
export function readSettings(env: Record<string, string | undefined>, flags: Record<string, string> = {}): RawSettings {
  const out: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, SettingSpec][]) {
    const flagValue = flags[spec.flag]
    if (flagValue !== undefined) {
      out[name] = convert(spec, `--${spec.flag}`, flagValue)
      continue
    }
    const envValue = readEnvSetting(spec, env)
    if (envValue !== undefined) out[name] = convert(spec, spec.env[0]!, envValue)
  }
  return out as RawSettings
}
