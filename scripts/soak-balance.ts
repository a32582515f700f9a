/**
 * The soak benchmark's image balance (scripts/soak.ts), pure: every image a client asked the detector to send
 * to the Loop is found at the Loop, still queued in the outbox, or counted by the detector as dropped or failed —
 * except images in flight when the node was killed with -9, which are counted apart.
 *
 * Each asked image carries a unique `source` (the Loop and the outbox's JSON keep it), so the Loop's and the
 * outbox's side are matched image by image; the detector's counters are only known as sums.
 */

export type UploadRoute = 'rest /detect' | 'rest /upload' | 'socket detect' | 'socket upload'

/**
 * accepted: 200 or an ok ack (for /detect with autoupload all: the detection was answered, the image handed to
 * the outbox); refused: the outbox said no (503 or an {error} ack naming the refusal; counted as a drop);
 * unknown: no answer (connection lost, timeout) or an unexpected error: the client cannot tell.
 */
export type UploadOutcome = 'accepted' | 'refused' | 'unknown'

export interface AskedUpload {
  source: string
  route: UploadRoute
  outcome: UploadOutcome
  /** ms since the soak began */
  startedAt: number
  endedAt: number
}

/** From the SIGKILL until the restarted node answered /ready (ms since the soak began). */
export interface KillWindow {
  killedAt: number
  servingAt: number
}

export interface DetectorCounts {
  /** lln_outbox_dropped_total, all reasons (on arrival, and queued items displaced by the cap) */
  dropped: number
  /** lln_outbox_save_failures_total */
  saveFailures: number
  /** lln_outbox_rejected_total: items the Loop refused or found broken, kept in outbox/rejected */
  quarantined: number
  /** autouploads that failed with an exception before the outbox (encoding): failures not counted above */
  autouploadErrors: number
}

export interface BalanceInput {
  asked: readonly AskedUpload[]
  /** sources of the soak's images at the Loop */
  received: ReadonlySet<string>
  /** sources of the items left in the outbox on disk */
  queued: ReadonlySet<string>
  counts: DetectorCounts
  kills: readonly KillWindow[]
  /** an accepted image missing at the end and answered at most this long before a kill is "in a kill window" */
  killLeadMs: number
}

export interface Balance {
  /** accepted + refused, plus images with an unknown outcome that turned up anyway */
  asked: number
  /** images sent into a kill (no answer) that did not turn up: the detector may never have read them */
  unknownNotFound: number
  received: number
  /** queued on disk and not (yet) at the Loop */
  queued: number
  /** queued on disk though already at the Loop: sent before a kill, not yet deleted (the Loop recognises the repeat) */
  queuedAndReceived: number
  counted: number
  /** asked − received − queued − counted */
  lost: number
  /** asked images neither received nor queued, by whether they were answered in a kill window */
  missingInKillWindows: AskedUpload[]
  missingElsewhere: AskedUpload[]
  /** sources at the Loop that no client asked for (must be 0) */
  unexpected: number
  /** every missing image outside the kill windows is a counted drop or failure, and nothing else is missing there */
  exactOutsideKillWindows: boolean
}

export function inKillWindow(at: number, kills: readonly KillWindow[], leadMs = 0): boolean {
  return kills.some((k) => at >= k.killedAt - leadMs && at <= k.servingAt)
}

export function computeBalance(input: BalanceInput): Balance {
  const { received, queued, counts } = input
  const turnedUp = (a: AskedUpload) => received.has(a.source) || queued.has(a.source)
  const asked = input.asked.filter((a) => a.outcome !== 'unknown' || turnedUp(a))
  const askedSources = new Set(asked.map((a) => a.source))
  const missing = asked.filter((a) => !turnedUp(a))
  const missingInKillWindows = missing.filter((a) => inKillWindow(a.endedAt, input.kills, input.killLeadMs))
  const missingElsewhere = missing.filter((a) => !inKillWindow(a.endedAt, input.kills, input.killLeadMs))
  const receivedCount = asked.filter((a) => received.has(a.source)).length
  const queuedCount = asked.filter((a) => !received.has(a.source) && queued.has(a.source)).length
  const counted = counts.dropped + counts.saveFailures + counts.quarantined + counts.autouploadErrors
  const lost = asked.length - receivedCount - queuedCount - counted
  return {
    asked: asked.length,
    unknownNotFound: input.asked.length - asked.length,
    received: receivedCount,
    queued: queuedCount,
    queuedAndReceived: asked.filter((a) => received.has(a.source) && queued.has(a.source)).length,
    counted,
    lost,
    missingInKillWindows,
    missingElsewhere,
    unexpected: [...received].filter((source) => !askedSources.has(source)).length,
    // then lost (= missing − counted) is exactly the images missing from the kill windows
    exactOutsideKillWindows: missingElsewhere.length === counted,
  }
}
