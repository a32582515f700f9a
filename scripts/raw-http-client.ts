/**
 * A lean HTTP/1.1 keep-alive client for benchmarks: one TCP connection, requests written as prebuilt bytes,
 * responses parsed by Content-Length. It measures what a server adds without the client-side cost of Bun's
 * fetch (which hands each request to its HTTP client thread; ~0.45 ms per round trip on 2 cores), the way a
 * robot's client library with a persistent connection talks to the detector.
 */
import { connect, type Socket } from 'node:net'

const encoder = new TextEncoder()
const HEADER_END = encoder.encode('\r\n\r\n')

/** The bytes of a multipart/form-data POST with one file field. */
export function multipartRequest(path: string, field: string, file: Uint8Array, headers: Record<string, string> = {}): Uint8Array {
  const boundary = `bench${crypto.randomUUID().replaceAll('-', '')}`
  const head = encoder.encode(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="frame.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`)
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`)
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  const requestHead = encoder.encode(`POST ${path} HTTP/1.1\r\nHost: bench\r\n${extra}Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + file.length + tail.length}\r\n\r\n`)
  const request = new Uint8Array(requestHead.length + head.length + file.length + tail.length)
  let at = 0
  for (const part of [requestHead, head, file, tail]) {
    request.set(part, at)
    at += part.length
  }
  return request
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}

/** One keep-alive connection; reconnects when the server closed it between requests (idle timeout). */
export class RawHttpClient {
  private buffer = new Uint8Array(0)
  private socket?: Socket
  private waiting?: { resolve(response: { status: number; body: Uint8Array }): void; reject(error: Error): void }

  private constructor(private readonly url: URL) {}

  static async open(url: string): Promise<RawHttpClient> {
    const client = new RawHttpClient(new URL(url))
    await client.connect()
    return client
  }

  /** Sends `request` (complete bytes) and resolves with the status and body of the answer. */
  async send(request: Uint8Array): Promise<{ status: number; body: Uint8Array }> {
    if (this.waiting) throw new Error('one request at a time per connection')
    if (!this.socket || this.socket.readyState !== 'open') await this.connect()
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject }
      this.socket!.write(request)
    })
  }

  close(): void {
    this.socket?.destroy()
  }

  private async connect(): Promise<void> {
    const socket = connect(Number(this.url.port || 80), this.url.hostname)
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.setNoDelay(true)
    this.buffer = new Uint8Array(0)
    socket.on('data', (chunk: Buffer) => this.receive(chunk))
    const lost = (error: Error) => {
      const waiting = this.waiting
      this.waiting = undefined
      waiting?.reject(error)
    }
    socket.on('error', lost)
    socket.on('close', () => lost(new Error('the connection closed')))
    this.socket = socket
  }

  private receive(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.buffer.length + chunk.length)
    joined.set(this.buffer)
    joined.set(chunk, this.buffer.length)
    this.buffer = joined
    const headerEnd = indexOf(this.buffer, HEADER_END)
    if (headerEnd < 0) return
    const head = new TextDecoder().decode(this.buffer.subarray(0, headerEnd))
    const status = Number(head.slice(9, 12))
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 'NaN')
    const waiting = this.waiting
    if (!Number.isFinite(length)) {
      // the rest of that answer would be read as the next one's: start over on a new connection
      this.socket?.destroy()
      this.waiting = undefined
      waiting?.reject(new Error(`the answer has no Content-Length: ${head.split('\r\n')[0]}`))
      return
    }
    const bodyStart = headerEnd + HEADER_END.length
    if (this.buffer.length < bodyStart + length) return
    const body = this.buffer.slice(bodyStart, bodyStart + length)
    this.buffer = this.buffer.slice(bodyStart + length)
    this.waiting = undefined
    waiting?.resolve({ status, body })
  }
}
