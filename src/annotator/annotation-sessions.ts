/**
 * Annotation sessions keyed by frontend id (a user's browser tab, or the socket id the Loop sends on
 * logout): histories are created on first use and freed on logout, Escape, a tool error, idle timeout,
 * or when more than `maxSessions` exist (least recently used first). Pure: the caller passes the time.
 */
export interface AnnotationSessionsOptions {
  /** a session unused for this long is dropped by `expireIdle` */
  idleTimeoutMs: number
  /** the oldest session is dropped when a new one would exceed this */
  maxSessions: number
}

export const DEFAULT_SESSION_OPTIONS: AnnotationSessionsOptions = { idleTimeoutMs: 30 * 60_000, maxSessions: 1_000 }

export class AnnotationSessions<History> {
  /** Map order = least recently used first */
  private readonly sessions = new Map<string, { history: History; lastUsed: number }>()
  private readonly options: AnnotationSessionsOptions
  /** sessions dropped because the limit was reached */
  evicted = 0

  constructor(private readonly createHistory: () => History, options: Partial<AnnotationSessionsOptions> = {}) {
    this.options = { ...DEFAULT_SESSION_OPTIONS, ...options }
    if (!(this.options.idleTimeoutMs > 0)) throw new Error(`idleTimeoutMs must be positive, got ${this.options.idleTimeoutMs}`)
    if (!(this.options.maxSessions >= 1)) throw new Error(`maxSessions must be at least 1, got ${this.options.maxSessions}`)
  }

  get size(): number {
    return this.sessions.size
  }

  has(frontendId: string): boolean {
    return this.sessions.has(frontendId)
  }

  /** The history of `frontendId`, created when there is none; marks the session used at `now`. */
  acquire(frontendId: string, now: number): History {
    const existing = this.sessions.get(frontendId)
    if (existing) {
      this.sessions.delete(frontendId)
      existing.lastUsed = now
      this.sessions.set(frontendId, existing)
      return existing.history
    }
    while (this.sessions.size >= this.options.maxSessions) {
      this.sessions.delete(this.sessions.keys().next().value!)
      this.evicted++
    }
    const created = { history: this.createHistory(), lastUsed: now }
    this.sessions.set(frontendId, created)
    return created.history
  }

  /** Drops the session; true when there was one. */
  release(frontendId: string): boolean {
    return this.sessions.delete(frontendId)
  }

  /** Drops every session unused for longer than the idle timeout; returns their ids. */
  expireIdle(now: number): string[] {
    const expired: string[] = []
    for (const [id, session] of this.sessions) {
      if (now - session.lastUsed > this.options.idleTimeoutMs) expired.push(id)
    }
    for (const id of expired) this.sessions.delete(id)
    return expired
  }
}
