const pad = (n: number, width = 2) => String(n).padStart(width, '0')

/** Local time as upstream's `created` default: `YYYY-MM-DD_HH:MM:SS.mmm`. */
export function formatCreated(date = new Date()): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}_` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/**
 * Local time with microseconds, as upstream's outbox item identifier: `YYYY-MM-DD_HH:MM:SS.ffffff`.
 * JS clocks give milliseconds; `subMillisecond` (0–999) fills the last three digits so that
 * identifiers made within one millisecond stay unique.
 */
export function formatOutboxIdentifier(date = new Date(), subMillisecond = 0): string {
  return formatCreated(date) + pad(subMillisecond, 3)
}
