/**
 * Structured logs: one JSON object per line on stderr, `{time, level, component, msg, ...fields}`.
 * The level comes from LOG_LEVEL (or setLogLevel); `LOG_FORMAT=pretty` prints a short human line instead.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

let threshold = LEVELS[parseLevel(process.env.LOG_LEVEL) ?? 'info']
let pretty = process.env.LOG_FORMAT === 'pretty'
type Sink = (line: string) => void
let sink: Sink = (line) => process.stderr.write(line + '\n')

export function parseLevel(text: string | undefined): LogLevel | undefined {
  const word = text?.trim().toLowerCase()
  // own keys only: `constructor` is `in` every object
  return word && Object.hasOwn(LEVELS, word) ? (word as LogLevel) : undefined
}

export function setLogLevel(level: LogLevel): void {
  threshold = LEVELS[level]
}
export function getLogLevel(): LogLevel {
  return (Object.keys(LEVELS) as LogLevel[]).find((l) => LEVELS[l] === threshold) ?? 'info'
}
/** Redirects log lines (tests capture them); returns the previous sink. */
export function setLogSink(next: Sink): Sink {
  const previous = sink
  sink = next
  return previous
}
export function setPrettyLogs(on: boolean): void {
  pretty = on
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  child(component: string): Logger
}

/** Longest string a log field keeps; input from the wire can be megabytes and a log line must stay one line. */
const MAX_LOGGED_STRING = 2_000
/** Most items a logged array keeps. */
const MAX_LOGGED_ITEMS = 50

function serialiseField(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: clipText(value.message, MAX_LOGGED_STRING) }
  if (typeof value === 'string') return clipText(value, MAX_LOGGED_STRING)
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `<${value.byteLength} bytes>`
  if (Array.isArray(value) && value.length > MAX_LOGGED_ITEMS) return [...value.slice(0, MAX_LOGGED_ITEMS), `… ${value.length - MAX_LOGGED_ITEMS} more`]
  return value
}

/** Applies the caps at every depth of a logged value. */
const capNested = (_key: string, value: unknown) => serialiseField(value)

/** `text` cut after `max` characters, saying how long it was. */
export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text
}

/** How many characters of a client's value an error message or log line repeats. */
export const ECHO_CHARACTERS = 100
/**
 * The longest error answer (`detail`, `error`, `error_msg`): the last guard for messages that repeat a path
 * segment or a name from the request without quoteInput.
 */
export const MAX_ERROR_ANSWER_CHARACTERS = 1_000

/**
 * A value from the outside (a request body, a header, an event name or payload) as error messages and logs show
 * it: JSON-quoted and cut after ECHO_CHARACTERS with `…`, so a 50 MB body never comes back as a 50 MB answer.
 */
export function quoteInput(value: unknown, max = ECHO_CHARACTERS): string {
  if (typeof value === 'string') {
    return value.length > max ? `${JSON.stringify(value.slice(0, max)).slice(0, -1)}…" (${value.length} characters)` : JSON.stringify(value)
  }
  let text: string
  try {
    // an array of millions of numbers needs only its start to be shown
    text = String(JSON.stringify(Array.isArray(value) && value.length > max ? [...value.slice(0, max), '…'] : value))
  } catch {
    text = Object.prototype.toString.call(value)
  }
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text
}

export function createLogger(component: string): Logger {
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < threshold) return
    if (pretty) {
      const extra = fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields, capNested) : ''
      sink(`${new Date().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} [${component}] ${clipText(msg, MAX_LOGGED_STRING)}${extra}`)
      return
    }
    const record: Record<string, unknown> = { time: new Date().toISOString(), level, component, msg: clipText(msg, MAX_LOGGED_STRING) }
    if (fields) for (const [key, value] of Object.entries(fields)) record[key] = value
    sink(JSON.stringify(record, capNested))
  }
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    child: (sub) => createLogger(`${component}.${sub}`),
  }
}

/** Message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
