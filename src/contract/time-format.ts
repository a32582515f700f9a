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

const CREATION_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T _](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))?)?$/

/**
 * Whether `text` is a date a client may give as `creation_date`: ISO 8601 in its extended form (`2026-11-28`,
 * `2026-11-28T10:00:00.123456+02:00`, a space for the T as Python prints it) or the Loop's own
 * `YYYY-MM-DD_HH:MM:SS.ffffff` that formatCreated writes. Calendar and clock ranges are checked too.
 */
export function isCreationDate(text: string): boolean {
  const match = CREATION_DATE.exec(text)
  if (!match) return false
  const [, year, month, day, hour = '0', minute = '0', second = '0', offsetHours = '0', offsetMinutes = '0'] = match
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)))
  const realDay = date.getUTCFullYear() === Number(year) && date.getUTCMonth() === Number(month) - 1 && date.getUTCDate() === Number(day)
  return realDay && Number(hour) < 24 && Number(minute) < 60 && Number(second) < 60 && Number(offsetHours) < 24 && Number(offsetMinutes) < 60
}
