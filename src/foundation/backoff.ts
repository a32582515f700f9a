/**
 * Exponential backoff with a cap and optional jitter: the one schedule behind every retry in the package
 * (Loop socket reconnects, 429 answers, outbox uploads, model updates, training steps and downloads, the
 * trainer's wait for the Loop, conversions). Callers keep their own option names and map them here.
 * Pure; `random` is injectable so tests get a fixed schedule.
 */
export interface BackoffPolicy {
  /** delay cap of the first retry */
  initialMs: number
  /** no delay is ever longer than this (Infinity: uncapped) */
  maxMs: number
  /** growth of the cap per retry; default 2 */
  factor?: number
  /**
   * `none` (default): exactly the cap;
   * `full`: uniform in [0, cap] — spreads a herd of clients best (socket reconnects);
   * `equal`: uniform in [cap/2, cap] — never retries almost at once (429 answers).
   */
  jitter?: 'none' | 'full' | 'equal'
  /** floor after jitter (default 0): bounds the attempt rate even when the random draw is near zero */
  minMs?: number
}

/** Delay in whole milliseconds before retry number `retry` (0 = the first retry): exponential cap, then jitter. */
export function backoffDelayMs(retry: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  // a zero start stays zero however large the retry number (0 × Infinity would be NaN)
  const grown = policy.initialMs <= 0 ? policy.initialMs : policy.initialMs * (policy.factor ?? 2) ** Math.max(0, retry)
  const cap = Math.min(policy.maxMs, grown)
  const jitter = policy.jitter ?? 'none'
  const r = jitter === 'none' ? 1 : Math.min(1, Math.max(0, random()))
  const jittered = jitter === 'equal' ? cap / 2 + (cap / 2) * r : cap * r
  return Math.round(Math.max(policy.minMs ?? 0, jittered))
}
