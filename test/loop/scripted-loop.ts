import type { Server as SocketIoServer } from 'socket.io'
import { SOCKET_IO_PATH } from '../../src/contract/index.ts'
import { createSocketIo } from '../../src/node/http-server.ts'
import { createLogger } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'

/**
 * A purpose-built HTTP peer for the Loop client tests: real Bun.serve on 127.0.0.1, form login with a
 * session cookie, and a per-test `route` that scripts 401/429/slow answers. Every request is recorded.
 * With `socketIo`, a socket.io server shares the port at /ws/socket.io (as the Loop's does) and every
 * Engine.IO GET (polling handshake/poll, websocket upgrade) is recorded with its headers.
 */
export interface RecordedHandshake {
  transport: string
  sid: string | null
  upgrade: boolean
  organization: string | null
  project: string | null
  nodeType: string | null
  cookie: string | null
}

export interface RecordedRequest {
  method: string
  path: string
  search: string
  cookie: string | null
  contentType: string | null
  body: string
}

export interface ScriptedLoop {
  url: string
  port: number
  requests: RecordedRequest[]
  /** requests to one path, e.g. `count('/api/login')` */
  count(path: string): number
  /** forgets every session, as a restarted Loop does */
  dropSessions(): void
  /**
   * The answer for everything but /api/login and /api/logout; undefined → 404. The body was already read
   * into `recorded.body`, except multipart bodies, which `req.formData()` still reads.
   */
  route: (req: Request, ctx: { loggedIn: boolean; recorded: RecordedRequest }) => Response | undefined | Promise<Response | undefined>
  /** the socket.io server, when started with `socketIo` */
  io: SocketIoServer
  handshakes: RecordedHandshake[]
  /** true when the cookie carries a live session of this peer */
  isSession(cookie: string | null | undefined): boolean
  stop(): Promise<void>
}

export function startScriptedLoop(options: {
  username?: string
  password?: string
  tls?: { cert: string; key: string }
  socketIo?: boolean
  port?: number
} = {}): ScriptedLoop {
  const username = options.username ?? 'alice'
  const password = options.password ?? 'secret'
  const sessions = new Set<string>()
  let sessionCounter = 0
  const peer: ScriptedLoop = {
    url: '',
    port: 0,
    requests: [],
    count: (path) => peer.requests.filter((r) => r.path === path).length,
    dropSessions: () => sessions.clear(),
    route: () => undefined,
    io: undefined as unknown as SocketIoServer,
    handshakes: [],
    isSession: (cookie) => {
      const session = /(?:^|;\s*)session=([^;]+)/.exec(cookie ?? '')?.[1]
      return session !== undefined && sessions.has(session)
    },
    stop: async () => {
      if (socketIo) {
        socketIo.io.disconnectSockets(true)
        socketIo.engine.close()
      }
      await server.stop(true)
    },
  }
  const socketIo = options.socketIo ? createSocketIo({ log: createLogger('scripted-loop'), metrics: new MetricsRegistry() }) : undefined
  const engineHandler = socketIo?.engine.handler()
  if (socketIo) peer.io = socketIo.io
  // the optional websocket handler does not fit Bun.serve's overloads; the shape is checked at run time
  const server = Bun.serve<any>({
    port: options.port ?? 0,
    hostname: '127.0.0.1',
    ...(options.tls ? { tls: options.tls } : {}),
    ...(engineHandler ? { websocket: engineHandler.websocket } : {}),
    async fetch(req: Request, srv: unknown) {
      const url = new URL(req.url)
      if (socketIo && url.pathname.startsWith(`${SOCKET_IO_PATH}/`)) {
        if (req.method === 'GET') {
          const h = req.headers
          peer.handshakes.push({
            transport: url.searchParams.get('transport') ?? '', sid: url.searchParams.get('sid'), upgrade: h.get('upgrade') === 'websocket',
            organization: h.get('organization'), project: h.get('project'), nodeType: h.get('nodetype'), cookie: h.get('cookie'),
          })
        }
        return socketIo.engine.handleRequest(req, srv as any)
      }
      const contentType = req.headers.get('content-type')
      const body = contentType?.startsWith('multipart/') ? '' : await req.text()
      const recorded: RecordedRequest = { method: req.method, path: url.pathname, search: url.search, cookie: req.headers.get('cookie'), contentType, body }
      peer.requests.push(recorded)
      const session = /(?:^|;\s*)session=([^;]+)/.exec(recorded.cookie ?? '')?.[1]
      const loggedIn = peer.isSession(recorded.cookie)
      if (url.pathname === '/api/login' && req.method === 'POST') {
        const form = new URLSearchParams(body)
        if (form.get('username') !== username || form.get('password') !== password) {
          return Response.json({ detail: 'wrong username or password' }, { status: 401 })
        }
        const id = `s${++sessionCounter}`
        sessions.add(id)
        return new Response('{}', { headers: { 'set-cookie': `session=${id}; Path=/; HttpOnly` } })
      }
      if (url.pathname === '/api/logout' && req.method === 'POST') {
        if (session) sessions.delete(session)
        return new Response('{}', { headers: { 'set-cookie': 'session=; Path=/; Max-Age=0' } })
      }
      const answer = await peer.route(req, { loggedIn, recorded })
      return answer ?? new Response('not found', { status: 404 })
    },
  } as any)
  peer.port = server.port!
  peer.url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${peer.port}`
  return peer
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const probe = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('') })
  const port = probe.port!
  await probe.stop(true)
  return port
}

/** A throwaway CA and a server certificate for 127.0.0.1 made with the openssl CLI. */
export async function makeTestCertificates(dir: string): Promise<{ caFile: string; cert: string; key: string; ca: string }> {
  const run = async (args: string[]) => {
    const proc = Bun.spawn(['openssl', ...args], { cwd: dir, stdout: 'ignore', stderr: 'pipe' })
    if ((await proc.exited) !== 0) throw new Error(`openssl ${args[0]} failed: ${await new Response(proc.stderr).text()}`)
  }
  await run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=lln-test-ca'])
  await run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'])
  await Bun.write(`${dir}/ext.cnf`, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  await run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf'])
  return {
    caFile: `${dir}/ca.pem`,
    ca: await Bun.file(`${dir}/ca.pem`).text(),
    cert: await Bun.file(`${dir}/server.pem`).text(),
    key: await Bun.file(`${dir}/server.key`).text(),
  }
}
