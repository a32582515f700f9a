/**
 * The soak benchmark's steady load (scripts/soak.ts): REST clients on keep-alive connections and socket.io
 * cameras, each recording from its own side what it asked the detector to upload (a unique `source` per image)
 * and every request that failed, with times, so failures can be held against the kill windows.
 */
import { io as connect } from 'socket.io-client'
import { multipartRequest, RawHttpClient } from './raw-http-client.ts'
import type { AskedUpload, UploadOutcome, UploadRoute } from './soak-balance.ts'

export interface RequestFailure {
  route: string
  /** ms since the soak began */
  startedAt: number
  endedAt: number
  error: string
}

/** What the clients did, from their side; times are ms since the soak began. */
export class SoakLedger {
  served = 0
  refused = 0
  readonly uploads: AskedUpload[] = []
  readonly failures: RequestFailure[] = []
  /** latencies (ms) of /detect without autoupload, the bulk of the REST load */
  readonly detectLatencies: number[] = []
  private readonly t0 = performance.now()

  now(): number {
    return performance.now() - this.t0
  }

  asked(source: string, route: UploadRoute, outcome: UploadOutcome, startedAt: number): void {
    this.uploads.push({ source, route, outcome, startedAt, endedAt: this.now() })
  }

  failed(route: string, startedAt: number, error: string): void {
    this.failures.push({ route, startedAt, endedAt: this.now(), error: error.slice(0, 200) })
  }
}

export interface LoadImages {
  /** encoded images for REST and JPEG cameras */
  jpegs: Uint8Array[]
  /** one raw RGB frame for raw cameras (as rosys sends numpy arrays) */
  frame: { bytes: Uint8Array; dtype: 'uint8'; shape: [number, number, 3] }
}

export interface LoadPlan {
  /** every n-th request of a client asks for `autoupload: all` (the others: disabled) */
  autouploadEvery: number
  /** every n-th request of a client is an upload (REST /upload, socket `upload`) */
  uploadEvery: number
  requestTimeoutMs: number
}

type Kind = 'plain' | 'autoupload' | 'upload'
const kindOf = (n: number, plan: LoadPlan): Kind => (n % plan.uploadEvery === 0 ? 'upload' : n % plan.autouploadEvery === 0 ? 'autoupload' : 'plain')

/** Waits until `next` (performance.now() ms); returns the time of the request after it, `interval` later. */
async function pace(next: number, interval: number): Promise<number> {
  if (interval <= 0) return 0
  await Bun.sleep(Math.max(0, next - performance.now()))
  return Math.max(next + interval, performance.now())
}

/** One REST client on a keep-alive connection, `perSecond` requests a second (0: back to back), while `running()`. */
export async function runRestClient(options: {
  index: number; url: string; images: LoadImages; plan: LoadPlan; perSecond: number; ledger: SoakLedger; running: () => boolean
}): Promise<void> {
  const { index, url, images, plan, ledger } = options
  const plain = images.jpegs.map((jpeg) => multipartRequest('/detect', 'file', jpeg, { autoupload: 'disabled' }))
  const interval = options.perSecond > 0 ? 1000 / options.perSecond : 0
  let connection: RawHttpClient | undefined
  let next = performance.now() + (interval * index) / 4
  for (let n = 1; options.running(); n++) {
    next = await pace(next, interval)
    const kind = kindOf(n, plan)
    const source = `soak-r${index}-${n}`
    const jpeg = images.jpegs[n % images.jpegs.length]!
    const route: UploadRoute = kind === 'upload' ? 'rest /upload' : 'rest /detect'
    const request = kind === 'upload' ? multipartRequest(`/upload?source=${source}`, 'files', jpeg)
      : kind === 'autoupload' ? multipartRequest('/detect', 'file', jpeg, { autoupload: 'all', source })
      : plain[n % plain.length]!
    const startedAt = ledger.now()
    let timedOut = false
    try {
      connection ??= await RawHttpClient.open(url)
      const open = connection
      const timer = setTimeout(() => {
        timedOut = true
        open.close()
      }, plan.requestTimeoutMs)
      const { status, body } = await open.send(request).finally(() => clearTimeout(timer))
      if (status === 200) {
        ledger.served++
        if (kind === 'plain') ledger.detectLatencies.push(ledger.now() - startedAt)
        else ledger.asked(source, route, 'accepted', startedAt)
      } else if (status === 503 && kind === 'upload') {
        ledger.refused++
        ledger.asked(source, route, 'refused', startedAt)
      } else {
        ledger.failed(route, startedAt, `HTTP ${status}: ${new TextDecoder().decode(body)}`)
        if (kind !== 'plain') ledger.asked(source, route, 'unknown', startedAt)
      }
    } catch (error) {
      connection?.close()
      connection = undefined
      ledger.failed(route, startedAt, timedOut ? `no answer within ${plan.requestTimeoutMs} ms` : (error as Error).message)
      if (kind !== 'plain') ledger.asked(source, route, 'unknown', startedAt)
      await Bun.sleep(100) // the detector may be down: no busy loop of refused connections
    }
  }
  connection?.close()
}

/** One socket.io camera at `fps` frames a second: JPEG bytes, or raw frames when `raw`. */
export async function runCamera(options: {
  index: number; url: string; images: LoadImages; plan: LoadPlan; fps: number; raw: boolean; ledger: SoakLedger; running: () => boolean
}): Promise<void> {
  const { index, url, images, plan, ledger } = options
  const socket = connect(url, { path: '/ws/socket.io', transports: ['websocket'] })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    setTimeout(() => reject(new Error(`camera ${index} could not connect to ${url}`)), 30_000)
  })
  const interval = 1000 / options.fps
  let next = performance.now() + (interval * index) / 2
  for (let n = 1; options.running(); n++) {
    next = await pace(next, interval)
    const kind = kindOf(n, plan)
    const source = `soak-c${index}-${n}`
    const route: UploadRoute = kind === 'upload' ? 'socket upload' : 'socket detect'
    const startedAt = ledger.now()
    // a frame of a camera that is not connected is not sent (socket.io would buffer it and send it late)
    if (!socket.connected) {
      ledger.failed(route, startedAt, 'not connected')
      continue
    }
    const image = options.raw ? images.frame : images.jpegs[n % images.jpegs.length]!
    const [event, payload] = kind === 'upload'
      ? ['upload', { image, metadata: { source } }] as const
      : ['detect', { image, autoupload: kind === 'autoupload' ? 'all' : 'disabled', ...(kind === 'autoupload' ? { source } : {}) }] as const
    try {
      const answer = await socket.timeout(plan.requestTimeoutMs).emitWithAck(event, payload) as { error?: string } | null
      if (answer && typeof answer.error === 'string') {
        const refused = kind === 'upload' && answer.error.startsWith('the image could not be queued for upload')
        if (refused) ledger.refused++
        else ledger.failed(route, startedAt, answer.error)
        if (kind !== 'plain') ledger.asked(source, route, refused ? 'refused' : 'unknown', startedAt)
      } else {
        ledger.served++
        if (kind !== 'plain') ledger.asked(source, route, 'accepted', startedAt)
      }
    } catch (error) {
      ledger.failed(route, startedAt, (error as Error).message)
      if (kind !== 'plain') ledger.asked(source, route, 'unknown', startedAt)
    }
  }
  socket.close()
}
