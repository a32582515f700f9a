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
  return word && word in LEVELS ? (word as LogLevel) : undefined
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

function serialiseField(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message }
  return value
}

export function createLogger(component: string): Logger {
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < threshold) return
    if (pretty) {
      const extra = fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields, (_k, v) => serialiseField(v)) : ''
      sink(`${new Date().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} [${component}] ${msg}${extra}`)
      return
    }
    const record: Record<string, unknown> = { time: new Date().toISOString(), level, component, msg }
    if (fields) for (const [key, value] of Object.entries(fields)) record[key] = serialiseField(value)
    sink(JSON.stringify(record))
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
