/**
 * Model version control (§7.6), the pure part: what `PUT /model_version` / `set_model_version_mode` asked for,
 * and which versions count as local. No I/O.
 */
import { quoteInput } from '../foundation/log.ts'
import { backoffDelayMs } from '../foundation/backoff.ts'

export type VersionControlMode = 'follow_loop' | 'specific_version' | 'pause'

export type VersionModeRequest =
  | { mode: 'follow_loop' }
  | { mode: 'pause' }
  | { mode: 'specific_version'; version: string }

/** Upstream's rule: a version is non-empty and all digits once the dots are removed (e.g. `1.3`). */
export function isValidVersion(text: string): boolean {
  const digits = text.replace(/\./g, '')
  return digits.length > 0 && /^\d+$/.test(digits) && !text.startsWith('.') && !text.endsWith('.') && !text.includes('..')
}

/**
 * Parses a version-mode request. Upstream switched to `specific_version` before validating, so a typo left the
 * detector in a half-set mode (§15.11); here an invalid string is an error and nothing changes.
 */
export function parseVersionModeRequest(raw: unknown): VersionModeRequest | { error: string } {
  if (typeof raw !== 'string') return { error: 'expected a string: follow_loop, pause or a version such as 1.3' }
  const text = raw.trim().replace(/^"|"$/g, '')
  if (text === 'follow_loop') return { mode: 'follow_loop' }
  if (text === 'pause') return { mode: 'pause' }
  if (!isValidVersion(text)) return { error: `Invalid version number ${quoteInput(text)}: use follow_loop, pause or a version such as 1.3` }
  return { mode: 'specific_version', version: text }
}

/** The sub-folders of `<data>/models` that are versions (upstream: digits after removing the dots). */
export function localVersionsOf(folderNames: readonly string[]): string[] {
  return folderNames.filter(isValidVersion).sort(compareVersions)
}

/** Orders versions numerically part by part: 1.2 < 1.10 < 2.0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** Delay before the next attempt after `failures` failed model updates: 5 s doubling to 5 min. */
export function updateRetryDelayMs(failures: number, baseMs = 5_000, maxMs = 300_000): number {
  if (failures <= 0) return 0
  return backoffDelayMs(failures - 1, { initialMs: baseMs, maxMs })
}
