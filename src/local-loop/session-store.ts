/**
 * Login sessions of the local Loop. Held in memory on purpose: a restart drops every session, as a
 * restarted real Loop may, and nodes must then log in again (§3.5: relogin on 401).
 */
export const SESSION_COOKIE = 'loop_session'

export interface Credentials {
  username: string
  password: string
}

export interface Session {
  token: string
  username: string
  createdAt: number
}

/** Sessions are bounded; the oldest goes first when a login storm would grow the map without end. */
const MAX_SESSIONS = 10_000

export class SessionStore {
  private readonly sessions = new Map<string, Session>()

  /** `credentials` undefined: any username/password logs in (sessions are still required). */
  constructor(private readonly credentials: Credentials | undefined) {}

  get requiresCredentials(): boolean {
    return this.credentials !== undefined
  }

  /** A new session for valid credentials, else undefined. */
  login(username: string, password: string, nowMs = Date.now()): Session | undefined {
    if (this.credentials && !(constantTimeEqual(username, this.credentials.username) && constantTimeEqual(password, this.credentials.password))) {
      return undefined
    }
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value
      if (oldest !== undefined) this.sessions.delete(oldest)
    }
    const session = { token: crypto.randomUUID().replaceAll('-', '') + crypto.randomUUID().replaceAll('-', ''), username, createdAt: nowMs }
    this.sessions.set(session.token, session)
    return session
  }

  /** Checks credentials without creating a session (HTTP Basic on the admin API). */
  credentialsMatch(username: string, password: string): boolean {
    if (!this.credentials) return true
    return constantTimeEqual(username, this.credentials.username) && constantTimeEqual(password, this.credentials.password)
  }

  /** The session named by the request's Cookie header, if it is live. */
  fromCookieHeader(cookieHeader: string | null | undefined): Session | undefined {
    const token = readCookie(cookieHeader, SESSION_COOKIE)
    return token ? this.sessions.get(token) : undefined
  }

  logout(token: string): boolean {
    return this.sessions.delete(token)
  }

  get size(): number {
    return this.sessions.size
  }
}

/** The value of cookie `name` in a Cookie header (`a=1; b=2`), or undefined. */
export function readCookie(cookieHeader: string | null | undefined, name: string): string | undefined {
  if (!cookieHeader) return undefined
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() !== name) continue
    try {
      return decodeURIComponent(part.slice(eq + 1).trim())
    } catch {
      return undefined
    }
  }
  return undefined
}

export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax`
}

export function expiredSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`
}

function constantTimeEqual(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a)
  const right = new TextEncoder().encode(b)
  let difference = left.length ^ right.length
  for (let i = 0; i < Math.max(left.length, right.length); i++) difference |= (left[i] ?? 0) ^ (right[i] ?? 0)
  return difference === 0
}
