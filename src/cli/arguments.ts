import { SETTINGS, type SettingSpec } from '../config/settings.ts'

export interface ParsedArguments {
  positionals: string[]
  /** raw flag values keyed by name without `--`; bare boolean flags are "true" */
  flags: Record<string, string>
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

const settingByFlag = new Map<string, SettingSpec>(Object.values(SETTINGS).map((s) => [s.flag, s]))

/**
 * `--name value`, `--name=value`, bare `--flag` for booleans (settings of type boolean and names in
 * `booleanFlags`), `--` ends flags. Unknown flags are errors unless listed in `extraFlags`.
 */
export function parseArguments(argv: string[], options: { extraFlags?: string[]; booleanFlags?: string[] } = {}): ParsedArguments {
  const known = new Set([...settingByFlag.keys(), ...(options.extraFlags ?? []), ...(options.booleanFlags ?? []), 'help'])
  const booleans = new Set([...[...settingByFlag].filter(([, s]) => s.type === 'boolean').map(([f]) => f), ...(options.booleanFlags ?? []), 'help'])
  const positionals: string[] = []
  const flags: Record<string, string> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('--') || arg === '-') {
      if (arg === '-h') flags.help = 'true'
      else positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2)
    if (!known.has(name)) throw new UsageError(`unknown flag --${name}`)
    if (eq >= 0) {
      flags[name] = arg.slice(eq + 1)
    } else if (booleans.has(name)) {
      const next = argv[i + 1]
      if (next !== undefined && /^(true|false|1|0)$/i.test(next)) {
        flags[name] = next
        i++
      } else {
        flags[name] = 'true'
      }
    } else {
      const next = argv[i + 1]
      if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value`)
      flags[name] = next
      i++
    }
  }
  return { positionals, flags }
}

/** Help lines for the given settings: flag, env names, default, description. */
export function describeSettings(names: (keyof typeof SETTINGS)[]): string {
  return names.map((name) => {
    const s: SettingSpec = SETTINGS[name]
    const value = s.type === 'boolean' ? '' : ` <${s.type === 'string' ? 'value' : s.type}>`
    const defaults = s.defaultText ? ` (default: ${s.defaultText})` : ''
    return `  --${s.flag}${value}\n      ${s.help}${defaults}\n      env: ${s.env.join(', ')}`
  }).join('\n')
}

export function integerFlag(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) throw new UsageError(`--${name} ${JSON.stringify(text)} is not an integer from ${min} to ${max}`)
  return Number(text)
}

export function numberFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} ${JSON.stringify(text)} is not a positive number`)
  return value
}

export function jsonFlag(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--${name} is not valid JSON: ${(error as Error).message}`)
  }
}
