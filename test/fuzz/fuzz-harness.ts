/**
 * How the fuzz suite runs its tables: one `test` per row (entry point × bad input → status or ack, and a pattern
 * the message must match), and after every table a check that the node still answers and that the state a refused
 * input must not touch (outbox, data folder, stored rows) is what it was before the table.
 */
import { afterAll, describe, beforeAll, expect, test } from 'bun:test'
import { readdir, stat } from 'node:fs/promises'
import { connect as connectTcp } from 'node:net'
import { join, relative } from 'node:path'
import type { Socket } from 'socket.io-client'
import { connectDetectorClient } from '../support/test-detector.ts'

export interface Answer {
  status: number
  text: string
}

export interface HttpRow {
  /** the entry point as the table at the top of each suite names it, e.g. `PUT /model_version` */
  route: string
  /** what is wrong with the input */
  input: string
  /** sends the request (built when the row runs, so large bodies exist only then) */
  send: (baseUrl: string) => Promise<Answer>
  status: number
  /** the answer must match: it names the problem */
  says?: RegExp
  /** why the answer cannot name the problem (Bun answers before any JavaScript runs) */
  limitation?: string
}

export interface EventRow {
  event: string
  input: string
  args: () => unknown[]
  /** the refusal message (`error` / `error_msg`) must match */
  says: RegExp
}

/** An answer read to the end, for rows built with `fetch`. */
export async function answerOf(response: Promise<Response>): Promise<Answer> {
  const r = await response
  return { status: r.status, text: await r.text() }
}

/** A row's request through `fetch`. */
export function request(method: string, path: string, init: RequestInit = {}): (baseUrl: string) => Promise<Answer> {
  return (baseUrl) => answerOf(fetch(baseUrl + path, { method, ...init }))
}

/**
 * A request written byte for byte on a TCP socket, for what `fetch` will not send: header values that are not
 * ASCII, 200 header lines, a Content-Length the body never reaches. The server's answer is read until it closes.
 */
export async function rawHttp(baseUrl: string, head: string | Uint8Array, body: Uint8Array = new Uint8Array(0)): Promise<Answer> {
  const { hostname, port } = new URL(baseUrl)
  const bytes = Buffer.concat([typeof head === 'string' ? Buffer.from(head, 'latin1') : head, body])
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    // written, not ended: Bun answers a half-closed connection with nothing
    const socket = connectTcp(Number(port), hostname, () => socket.write(bytes))
    const timer = setTimeout(() => socket.destroy(), 20_000)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      // a complete answer with a length: stop reading (a keep-alive server would hold the socket open)
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end))
      if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) socket.destroy()
    })
    socket.on('error', (error) => (chunks.length ? resolve(Buffer.concat(chunks)) : reject(error)))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    })
  })
  const text = answer.toString('utf8')
  const end = text.indexOf('\r\n\r\n')
  const headers = text.slice(0, end)
  let answerBody = text.slice(end + 4)
  if (/\r\ntransfer-encoding:\s*chunked/i.test(headers)) answerBody = answerBody.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '').replace(/\r\n$/, '')
  return { status: Number(text.slice(9, 12)), text: answerBody }
}

/** A request with these raw header lines (latin-1 string or bytes), answered through `rawHttp`. */
export function rawRequest(method: string, path: string, headerLines: (string | Uint8Array)[], body: Uint8Array = new Uint8Array(0), declaredLength = body.length): (baseUrl: string) => Promise<Answer> {
  return (baseUrl) => {
    const start = `${method} ${path} HTTP/1.1\r\nHost: ${new URL(baseUrl).host}\r\nConnection: close\r\nContent-Length: ${declaredLength}\r\n`
    const lines = headerLines.map((line) => Buffer.concat([typeof line === 'string' ? Buffer.from(line, 'latin1') : line, Buffer.from('\r\n')]))
    return rawHttp(baseUrl, Buffer.concat([Buffer.from(start, 'latin1'), ...lines, Buffer.from('\r\n')]), body)
  }
}

/** A multipart body with one field per entry (a string value is a text field; bytes are a file named `fileName`). */
export function formOf(fields: [name: string, value: string | Uint8Array, fileName?: string][]): FormData {
  const form = new FormData()
  for (const [name, value, fileName] of fields) {
    if (typeof value === 'string') form.append(name, value)
    else form.append(name, new File([value as Uint8Array<ArrayBuffer>], fileName ?? 'image.jpg', { type: 'image/jpeg' }))
  }
  return form
}

/** What an answer says: the `detail` (or `error`) of a JSON answer, else the text itself. */
export function messageOf(text: string): string {
  try {
    const body = JSON.parse(text) as { detail?: unknown; error?: unknown }
    if (typeof body?.detail === 'string') return body.detail
    if (typeof body?.error === 'string') return body.error
  } catch {
    // not JSON: the text is the message
  }
  return text
}

/** Checks one answer against its row: status, the message naming the problem, and a short answer. */
export function expectAnswer(answer: Answer, row: Pick<HttpRow, 'status' | 'says' | 'limitation'>): void {
  const message = messageOf(answer.text)
  const shown = message.length > 600 ? `${message.slice(0, 600)}…` : message
  if (row.says) {
    expect({ status: answer.status, answer: shown }).toEqual({ status: row.status, answer: expect.stringMatching(row.says) })
  } else {
    expect(row.limitation).toBeString()
    expect({ status: answer.status }).toEqual({ status: row.status })
  }
  // an error answer repeats at most a short piece of the input
  if (answer.status >= 400) expect(answer.text.length).toBeLessThan(2_000)
}

/** The refusal message of an ack: `{error}` (detector) or a failed SocketResponse `{success:false, error_msg}`. */
export function refusalOf(ack: unknown): string | undefined {
  if (!ack || typeof ack !== 'object') return undefined
  const { error, success, error_msg } = ack as { error?: unknown; success?: unknown; error_msg?: unknown }
  if (typeof error === 'string') return error
  if (success === false && typeof error_msg === 'string') return error_msg
  return undefined
}

/** Checks one ack against its row: a refusal whose message matches, and short. */
export function expectRefusal(ack: unknown, row: Pick<EventRow, 'says'>): void {
  const message = refusalOf(ack)
  const shown = JSON.stringify(ack)?.slice(0, 600)
  expect({ refused: message !== undefined, message: message ?? shown }).toEqual({ refused: true, message: expect.stringMatching(row.says) })
  expect(message!.length).toBeLessThan(2_000)
}

/** Every file under `root` (relative path → size), minus those `skip` names. */
export async function folderSnapshot(root: string, skip: (path: string) => boolean = () => false): Promise<Record<string, number>> {
  const files: Record<string, number> = {}
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])
  for (const entry of entries) {
    if (!entry.isFile() && !entry.isSymbolicLink()) continue
    const path = relative(root, join(entry.parentPath, entry.name))
    if (skip(path)) continue
    files[path] = (await stat(join(root, path)).catch(() => ({ size: -1 }))).size
  }
  return files
}

export interface TableChecks {
  /** throws unless the node answers (GET /health 200, or the local loop's /api/status) */
  alive(): Promise<void>
  /** what a refused input must not change: compared before the first row and after the last */
  state?(): Promise<unknown>
}

/**
 * A `describe` with one test per row and, after the last row, one that checks the node still answers and that
 * `state` did not change. Rows run in order.
 */
export function describeTable<Row>(title: string, rows: Row[], nameOf: (row: Row) => string, run: (row: Row) => Promise<void>, checks: () => TableChecks): void {
  describe(title, () => {
    let before: unknown
    beforeAll(async () => {
      before = await checks().state?.()
    })
    for (const row of rows) test(nameOf(row), () => run(row))
    test(`after the ${rows.length} rows: the node answers and ${checks().state ? 'nothing it keeps changed' : 'keeps serving'}`, async () => {
      await checks().alive()
      const { state } = checks()
      if (state) expect(await state()).toEqual(before)
    })
  })
}

/** A row name: `<entry point> ← <bad input>`. */
export const rowName = (row: { route?: string; event?: string; input: string }) => `${row.route ?? row.event} ← ${row.input}`

/** GET /health answers 200 `{status: 'ok'}`. */
export async function expectHealthy(baseUrl: string): Promise<void> {
  const response = await fetch(`${baseUrl}/health`)
  expect({ status: response.status, body: await response.json() }).toMatchObject({ status: 200, body: { status: 'ok' } })
}

/** Elysia's route list as `METHOD path` lines, sorted. */
export const routeList = (app: { routes: { method: string; path: string }[] }) => app.routes.map((r) => `${r.method} ${r.path}`).sort()

/** The event names an "unknown event" answer lists (`…; this node handles a, b, c`). */
export function handledEventsOf(message: string): string[] {
  const match = /handles (.+)$/.exec(message)
  if (!match) throw new Error(`no list of handled events in ${JSON.stringify(message)}`)
  return match[1]!.split(', ').sort()
}

/** The API docs every node serves (`GET /openapi.json`, `GET /docs`): read-only, and no file is served by a path below /docs. */
export const API_DOCS_ENTRY_POINTS = ['GET /openapi.json', 'GET /docs']
export function apiDocsRows(prototypeNames: readonly string[]): HttpRow[] {
  return [
    { route: 'GET /openapi.json', input: 'prototype names as query parameters', send: request('GET', `/openapi.json?${prototypeNames.map((n) => `${n}=1`).join('&')}`), status: 200, says: /"openapi":"3\.1\.0"/ },
    { route: 'GET /openapi.json', input: 'POST instead of GET', send: request('POST', '/openapi.json', { body: '{}' }), status: 404, says: /no route POST "\/openapi.json"/ },
    { route: 'GET /docs', input: 'a traversal below /docs', send: request('GET', '/docs/..%2F..%2Fpackage.json'), status: 404, says: /no route GET/ },
    { route: 'GET /docs', input: 'headers of 17 KiB', send: request('GET', '/docs', { headers: { 'x-padding': 'p'.repeat(17 * 1024) } }), status: 431, says: /request headers larger than 16384 bytes/ },
  ]
}

/**
 * A socket.io client of a detector for the enclosing `describe`: connected before its tests, closed after. Returns
 * `call(event, args)`, the event's ack (30 s at most).
 */
export function detectorSocketCalls(url: () => string): (event: string, args: unknown[]) => Promise<unknown> {
  let client: Socket | undefined
  beforeAll(async () => {
    client = await connectDetectorClient(url())
  })
  afterAll(() => {
    client?.close()
  })
  return (event, args) => client!.timeout(30_000).emitWithAck(event, ...args)
}
