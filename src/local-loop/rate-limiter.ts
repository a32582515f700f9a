/**
 * Token buckets per client, like the reverse proxy in front of the real Loop (§15.17). Pure: the clock is
 * passed in, so the arithmetic is testable without waiting.
 */
export interface RateLimit {
  /** sustained requests per second per client */
  perSecond: number
  /** bucket size: requests a client may send at once after being quiet; defaults to max(1, perSecond) */
  burst?: number
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number }

interface Bucket {
  tokens: number
  updatedAt: number
}

/** Buckets idle this long are full again and can be forgotten, which bounds the map. */
const FORGET_AFTER_MS = 10 * 60_000
const MAX_CLIENTS = 10_000

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()
  readonly perSecond: number
  readonly burst: number

  constructor(limit: RateLimit) {
    if (!(limit.perSecond > 0) || !Number.isFinite(limit.perSecond)) throw new RangeError(`rate limit must be a positive number of requests per second, got ${limit.perSecond}`)
    this.perSecond = limit.perSecond
    this.burst = Math.max(1, Math.floor(limit.burst ?? Math.max(1, limit.perSecond)))
  }

  /** Takes one token from `client`'s bucket at time `nowMs`, or says how long to wait for one. */
  take(client: string, nowMs: number): RateDecision {
    let bucket = this.buckets.get(client)
    if (!bucket) {
      if (this.buckets.size >= MAX_CLIENTS) this.forgetIdle(nowMs)
      bucket = { tokens: this.burst, updatedAt: nowMs }
      this.buckets.set(client, bucket)
    }
    const elapsedSeconds = Math.max(0, nowMs - bucket.updatedAt) / 1000
    bucket.tokens = Math.min(this.burst, bucket.tokens + elapsedSeconds * this.perSecond)
    bucket.updatedAt = nowMs
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return { allowed: true }
    }
    // Retry-After carries whole seconds (RFC 9110); round up so a client that obeys it finds a token
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond))
    return { allowed: false, retryAfterSeconds }
  }

  private forgetIdle(nowMs: number): void {
    for (const [client, bucket] of this.buckets) {
      if (nowMs - bucket.updatedAt > FORGET_AFTER_MS) this.buckets.delete(client)
    }
    // still full of active clients: drop the oldest rather than grow without bound
    if (this.buckets.size >= MAX_CLIENTS) {
      const oldest = this.buckets.keys().next().value
      if (oldest !== undefined) this.buckets.delete(oldest)
    }
  }
}
