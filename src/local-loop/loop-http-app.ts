import { Type } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import { registerApiDocs } from '../node/api-docs.ts'
import { routeDocs, textContent } from '../node/route-docs.ts'
import { clipText, errorMessage, MAX_ERROR_ANSWER_CHARACTERS, type Logger } from '../foundation/log.ts'
import type { Counter, MetricsRegistry } from '../foundation/metrics.ts'
import { createAdminRoutes } from './admin-routes.ts'
import { createApiRoutes } from './api-routes.ts'
import { checkDeclaredLength, json } from './http-body.ts'
import type { LocalLoopAdmin, RequestCounts } from './local-loop-admin.ts'
import { asLoopRequestError, LoopRequestError, notFound, validationMessage } from './loop-errors.ts'
import type { LoopOperations } from './loop-operations.ts'
import type { LoopStore } from './loop-store.ts'
import { ThumbnailCache } from './thumbnails.ts'
import { createWebPage } from './web-page.ts'
import { createWebRoutes } from './web-routes.ts'
import { RateLimiter, type RateDecision, type RateLimit } from './rate-limiter.ts'
import type { SessionStore } from './session-store.ts'

const MAX_JSON_BYTES = 16 * 1024 * 1024
const MAX_ROUTES_COUNTED = 200

/** The local loop's request counts (for /admin/stats and the request counter) and its per-client rate limit. */
export class RequestTraffic {
  private readonly counts: RequestCounts = { total: 0, rate_limited: 0, by_route: {}, by_status: {} }
  private limiter: RateLimiter | undefined

  constructor(private readonly counter: Counter, limit: number | RateLimit | null | undefined) {
    this.limiter = toRateLimiter(limit)
  }

  count(route: string, status: number): void {
    const counts = this.counts
    counts.total++
    // bounded: unknown paths all count as one route
    const key = route in counts.by_route || Object.keys(counts.by_route).length < MAX_ROUTES_COUNTED ? route : '(other)'
    counts.by_route[key] = (counts.by_route[key] ?? 0) + 1
    counts.by_status[String(status)] = (counts.by_status[String(status)] ?? 0) + 1
    this.counter.inc({ route: key, status: String(status) })
  }

  /** Takes a token for `client`; a refusal is counted as a rate-limited 429. Undefined without a limit. */
  admit(client: string, nowMs: number): RateDecision | undefined {
    const decision = this.limiter?.take(client, nowMs)
    if (decision && !decision.allowed) {
      this.count('(rate limited)', 429)
      this.counts.rate_limited++
    }
    return decision
  }

  setRateLimit(limit: number | RateLimit | null): void {
    this.limiter = toRateLimiter(limit)
  }

  rateLimit(): RateLimit | null {
    return this.limiter ? { perSecond: this.limiter.perSecond, burst: this.limiter.burst } : null
  }

  snapshot(): RequestCounts {
    const counts = this.counts
    return { total: counts.total, rate_limited: counts.rate_limited, by_route: { ...counts.by_route }, by_status: { ...counts.by_status } }
  }
}

function toRateLimiter(limit: number | RateLimit | null | undefined): RateLimiter | undefined {
  if (limit === null || limit === undefined) return undefined
  return new RateLimiter(typeof limit === 'number' ? { perSecond: limit } : limit)
}

export interface LoopAppDependencies {
  traffic: RequestTraffic
  metrics: MetricsRegistry
  operations: LoopOperations
  store: LoopStore
  sessions: SessionStore
  log: Logger
  maxUploadBytes: number
  version: string
  /** late-bound: the routes are built before the LocalLoop instance exists */
  getAdmin: () => LocalLoopAdmin
}

/** The local loop's HTTP app: body caps, rate limit and request counting around the REST (/api) and admin APIs, /metrics, and the web page at /. */
export function buildLoopApp(deps: LoopAppDependencies): Elysia {
  const { log, traffic } = deps
  const app = new Elysia()
    // body caps and rate limits apply to the REST and admin APIs; socket.io and /metrics pass untouched
    .onRequest(({ request, server }) => {
      const path = new URL(request.url).pathname
      const isApi = path.startsWith('/api/')
      if (!isApi && !path.startsWith('/admin/')) return
      try {
        checkDeclaredLength(request, deps.maxUploadBytes)
      } catch (error) {
        traffic.count('(too large)', 413)
        const refused = asLoopRequestError(error)
        return json(refused.status, { detail: refused.message })
      }
      if (!isApi) return
      const client = server?.requestIP(request)?.address ?? 'unknown'
      const decision = traffic.admit(client, Date.now())
      if (decision && !decision.allowed) {
        return json(429, { detail: `too many requests from ${client}: retry after ${decision.retryAfterSeconds} s` }, { 'retry-after': String(decision.retryAfterSeconds) })
      }
    })
    .onAfterHandle({ as: 'global' }, ({ request, route, response, set }) => {
      const status = response instanceof Response ? response.status : typeof set.status === 'number' ? set.status : 200
      traffic.count(`${request.method} ${route}`, status)
    })
    .onError({ as: 'global' }, ({ request, route, code, error }) => {
      let refused: LoopRequestError
      if (code === 'NOT_FOUND') refused = notFound(`no route ${request.method} ${new URL(request.url).pathname}`)
      else if (code === 'PARSE') refused = new LoopRequestError(400, `malformed request body: ${errorMessage(error)}`)
      else if (code === 'VALIDATION') refused = new LoopRequestError(422, validationMessage(error))
      else refused = asLoopRequestError(error)
      traffic.count(route ? `${request.method} ${route}` : '(no route)', refused.status)
      if (refused.status >= 500) log.error('request failed', { method: request.method, route, error })
      else if (refused.status !== 404 && refused.status !== 401) log.warn('request refused', { method: request.method, route, status: refused.status, detail: refused.message })
      return json(refused.status, { detail: clipText(refused.message, MAX_ERROR_ANSWER_CHARACTERS) }, refused.headers)
    })
    .get('/metrics', () => new Response(deps.metrics.render(), { headers: { 'content-type': 'text/plain; version=0.0.4' } }), {
      detail: routeDocs({ summary: 'Prometheus metrics', tags: ['loop'], responses: { 200: textContent(Type.String(), 'Prometheus text format 0.0.4') } }),
    })
    .use(createApiRoutes({ operations: deps.operations, store: deps.store, sessions: deps.sessions, log, maxUploadBytes: deps.maxUploadBytes, maxJsonBytes: MAX_JSON_BYTES, version: deps.version }))
    .use(createAdminRoutes({ getLoop: deps.getAdmin, sessions: deps.sessions, maxUploadBytes: deps.maxUploadBytes, maxJsonBytes: MAX_JSON_BYTES }))
    .use(createWebRoutes({
      getLoop: deps.getAdmin, store: deps.store, operations: deps.operations, sessions: deps.sessions,
      thumbnails: new ThumbnailCache(deps.store.dataFolder, log.child('thumbnails')),
    }))
    .use(createWebPage())
  registerApiDocs(app, {
    title: 'learning-loop-node local loop',
    description: 'The node-facing REST API of a Learning Loop (/api) and the admin API of the local one (/admin); its socket.io events are described in the README.',
  })
  return app as unknown as Elysia
}
