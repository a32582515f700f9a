import { ConfigError } from './read-settings.ts'

export interface LoopUrls {
  /** e.g. `https://learning-loop.ai` (no trailing slash, no /api) */
  base: string
  /** the same origin with a ws/wss scheme, for socket.io */
  websocket: string
}

/**
 * Resolves LOOP_HOST to URLs. A value with a scheme (`https://loop.example:8443`) is used as given.
 * A bare host keeps the upstream rule: https/wss only if it contains `learning-loop.ai`, else http/ws.
 */
export function resolveLoopUrls(host: string): LoopUrls {
  const trimmed = host.trim().replace(/\/+$/, '')
  if (trimmed === '') throw new ConfigError('LOOP_HOST is empty')
  let url: URL
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    try {
      url = new URL(trimmed)
    } catch {
      throw new ConfigError(`LOOP_HOST=${JSON.stringify(host)} is not a valid URL`)
    }
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) {
      throw new ConfigError(`LOOP_HOST=${JSON.stringify(host)}: scheme must be http(s) or ws(s)`)
    }
  } else {
    const secure = trimmed.includes('learning-loop.ai')
    try {
      url = new URL(`${secure ? 'https' : 'http'}://${trimmed}`)
    } catch {
      throw new ConfigError(`LOOP_HOST=${JSON.stringify(host)} is not a valid host`)
    }
  }
  const secure = url.protocol === 'https:' || url.protocol === 'wss:'
  const path = url.pathname.replace(/\/+$/, '')
  const hostPart = url.host
  return {
    base: `${secure ? 'https' : 'http'}://${hostPart}${path}`,
    websocket: `${secure ? 'wss' : 'ws'}://${hostPart}${path}`,
  }
}
