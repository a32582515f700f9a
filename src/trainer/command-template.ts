/**
 * Command templates for the command trainer, e.g.
 *   python train.py --data {data_dir} --epochs {hyperparameters.epochs} --name "run {training_number}"
 * The template is split into arguments shell-style FIRST (single quotes, double quotes, backslash escapes), then
 * placeholders are replaced inside each argument, so a value with spaces or quotes stays one argument and can
 * never inject another command. No shell runs it. `{{` and `}}` are literal braces. Pure.
 */

const PLACEHOLDER = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}/g

export class CommandTemplateError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CommandTemplateError'
  }
}

/** Splits a command line into arguments the way a POSIX shell would, without expansions. */
export function splitCommandLine(text: string): string[] {
  const args: string[] = []
  let current = ''
  let inArgument = false
  let quote: '"' | "'" | null = null
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote === "'") {
      if (c === "'") quote = null
      else current += c
      continue
    }
    if (quote === '"') {
      if (c === '"') quote = null
      else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!)) current += text[++i]
      else current += c
      continue
    }
    if (c === "'" || c === '"') {
      quote = c
      inArgument = true
    } else if (c === '\\') {
      if (i + 1 < text.length) current += text[++i]
      inArgument = true
    } else if (/\s/.test(c)) {
      if (inArgument) args.push(current)
      current = ''
      inArgument = false
    } else {
      current += c
      inArgument = true
    }
  }
  if (quote) throw new CommandTemplateError(`unterminated ${quote} quote in command ${JSON.stringify(text)}`)
  if (inArgument) args.push(current)
  return args
}

/** Placeholder names used in a template, in order of first use. */
export function placeholdersIn(template: string): string[] {
  const names: string[] = []
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1]
    if (name && !names.includes(name)) names.push(name)
  }
  return names
}

/**
 * A lookup for placeholder values: undefined means "not available". A value of several words (`{bun}` on Deno is
 * `deno run --allow-…`) becomes several arguments where the placeholder is a whole argument, and is joined with
 * spaces inside a longer one.
 */
export type PlaceholderValues = (name: string) => string | readonly string[] | undefined

/**
 * Throws CommandTemplateError when a placeholder is not one of `known` (exact names, or prefixes ending in `.`
 * like `hyperparameters.`), so a typo fails at configuration time rather than at the start of a training.
 */
export function checkTemplate(template: string, known: readonly string[]): void {
  const args = splitCommandLine(template)
  if (args.length === 0) throw new CommandTemplateError('the command is empty')
  for (const name of placeholdersIn(template)) {
    const ok = known.some((k) => (k.endsWith('.') ? name.startsWith(k) && name.length > k.length : name === k))
    if (!ok) throw new CommandTemplateError(`unknown placeholder {${name}}; known: ${known.map((k) => (k.endsWith('.') ? `{${k}*}` : `{${k}}`)).join(', ')}`)
  }
}

/** The argument vector for `template` with every placeholder replaced; a missing value is an error naming it. */
export function expandCommand(template: string, values: PlaceholderValues): string[] {
  const valueOf = (name: string) => {
    const value = values(name)
    if (value === undefined) throw new CommandTemplateError(`the command needs {${name}}, but the training has no value for it`)
    return value
  }
  return splitCommandLine(template).flatMap((arg) => {
    const whole = /^\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}$/.exec(arg)
    if (whole) {
      const value = valueOf(whole[1]!)
      return typeof value === 'string' ? [value] : [...value]
    }
    return [arg.replace(PLACEHOLDER, (token, name: string | undefined) => {
      if (token === '{{') return '{'
      if (token === '}}') return '}'
      const value = valueOf(name!)
      return typeof value === 'string' ? value : value.join(' ')
    })]
  })
}

/** A hyperparameter as a command-line word: strings as they are, everything else as JSON. */
export function hyperparameterText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  return typeof value === 'string' ? value : JSON.stringify(value)
}
