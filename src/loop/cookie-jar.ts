/**
 * The Loop's login session lives in cookies. One Loop = one origin, so domain and path attributes are
 * ignored; only expiry matters (`Max-Age`, `Expires`). Pure: time is passed in.
 */
interface StoredCookie {
  value: string
  /** epoch ms; undefined = session cookie */
  expiresAt?: number
}

export class CookieJar {
  private readonly cookies = new Map<string, StoredCookie>()

  /** Applies `Set-Cookie` header values (one cookie each) as a browser would; expired ones are removed. */
  store(setCookieHeaders: readonly string[], nowMs = Date.now()): void {
    for (const header of setCookieHeaders) {
      const parsed = parseSetCookie(header, nowMs)
      if (!parsed) continue
      if (parsed.expiresAt !== undefined && parsed.expiresAt <= nowMs) this.cookies.delete(parsed.name)
      else this.cookies.set(parsed.name, { value: parsed.value, expiresAt: parsed.expiresAt })
    }
  }

  /** `Cookie` request header value; empty string when the jar holds no live cookie. */
  header(nowMs = Date.now()): string {
    return this.live(nowMs).map(([name, cookie]) => `${name}=${cookie.value}`).join('; ')
  }

  /** Number of cookies that have not expired. */
  size(nowMs = Date.now()): number {
    return this.live(nowMs).length
  }

  clear(): void {
    this.cookies.clear()
  }

  private live(nowMs: number): [string, StoredCookie][] {
    return [...this.cookies].filter(([, cookie]) => cookie.expiresAt === undefined || cookie.expiresAt > nowMs)
  }
}

/** Parses one `Set-Cookie` value; returns undefined for a value without `name=`. */
export function parseSetCookie(header: string, nowMs = Date.now()): { name: string; value: string; expiresAt?: number } | undefined {
  const [pair, ...attributes] = header.split(';')
  const separator = pair?.indexOf('=') ?? -1
  if (!pair || separator <= 0) return undefined
  const name = pair.slice(0, separator).trim()
  if (!name) return undefined
  let value = pair.slice(separator + 1).trim()
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
  let expiresAt: number | undefined
  let maxAgeSeen = false
  for (const attribute of attributes) {
    const eq = attribute.indexOf('=')
    const key = (eq < 0 ? attribute : attribute.slice(0, eq)).trim().toLowerCase()
    const attrValue = eq < 0 ? '' : attribute.slice(eq + 1).trim()
    if (key === 'max-age' && /^-?\d+$/.test(attrValue)) {
      // Max-Age wins over Expires (RFC 6265 §5.3 step 3)
      expiresAt = nowMs + Number(attrValue) * 1000
      maxAgeSeen = true
    } else if (key === 'expires' && !maxAgeSeen) {
      const at = Date.parse(attrValue)
      if (Number.isFinite(at)) expiresAt = at
    }
  }
  return { name, value, expiresAt }
}
