import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { listZipEntries } from '../../src/foundation/zip-archive.ts'
import { setLogSink } from '../../src/foundation/log.ts'
import { startTestLoop, type TestLoop } from '../support/test-loop.ts'
import { login, multipart } from './loop-test-peer.ts'

// Issue 11 (5, 6, 8) against a real local loop: request limits answered with a detail, echoes of client input
// cut short in answers and logs, and names from clients never reaching JavaScript object members.

const logLines: string[] = []
let restoreSink: ((line: string) => void) | undefined
let fixture: TestLoop
let url: string
let cookie: string

beforeAll(async () => {
  restoreSink = setLogSink((line) => {
    logLines.push(line)
  })
  fixture = await startTestLoop({ maxUploadBytes: 1024 * 1024 })
  url = fixture.loop.url
  cookie = await login(url)
})
afterAll(async () => {
  await fixture?.cleanup()
  if (restoreSink) setLogSink(restoreSink)
})

const send = (path: string, init: RequestInit = {}) => fetch(url + path, { ...init, headers: { cookie, ...(init.headers as Record<string, string> | undefined) } })

describe('413 and 431 carry a detail (8)', () => {
  test('a body over the server limit to a path outside /api is a 413 naming the limit', async () => {
    // the server takes the larger of the upload limit (plus multipart framing) and the socket.io message cap
    const response = await fetch(`${url}/ws/socket.io/?EIO=4&transport=polling`, { method: 'POST', body: new Uint8Array(65 * 1024 * 1024) })
    expect(response.status).toBe(413)
    expect(await response.json()).toEqual({ detail: `request body larger than ${64 * 1024 * 1024} bytes` })
  })

  test('a chunked upload over the upload limit of /admin is a 413 once it passes the limit', async () => {
    let left = 4 * 1024 * 1024
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (left <= 0) return controller.close()
        left -= 64 * 1024
        controller.enqueue(new Uint8Array(64 * 1024).fill(32))
      },
    })
    const response = await fetch(`${url}/admin/projects/local/demo/models?format=onnx`, { method: 'POST', body, duplex: 'half' } as RequestInit)
    expect(response.status).toBe(413)
    expect(await response.json()).toEqual({ detail: `request body larger than ${1024 * 1024} bytes` })
  })

  test('a header block over 16 KiB is a 431 naming the limit', async () => {
    const response = await fetch(`${url}/api/status`, { headers: { 'x-padding': 'p'.repeat(20_000) } })
    expect(response.status).toBe(431)
    expect(((await response.json()) as { detail: string }).detail).toContain('request headers larger than 16384 bytes')
    expect(fixture.loop.stats().requests.by_route['(headers too large)']).toBe(1)
    expect(logLines.some((line) => line.includes('request refused') && line.includes('431'))).toBe(true)
  })
})

describe('echoes of client input stay short (5)', () => {
  test('long query values, path names and JSON values come back cut, and so do the log lines', async () => {
    const long = 'q'.repeat(10_000)
    const from = logLines.length
    const answers = [
      await send(`/api/local/projects/demo/data?state=${long}`),
      await send(`/admin/projects/local/demo/images?state=${long}`),
      await send(`/api/local/projects/demo/trainings/${long}/models/latest/onnx/file`, { method: 'PUT', body: multipart([{ name: 'w.bin', content: 'x' }]) }),
      await send(`/api/local/projects/demo/models/m/${long}/file`),
      await send('/admin/nodes/x/emit', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event: long }) }),
      await send(`/admin/nodes/${long}/stop-training`, { method: 'POST' }),
      await send(`/api/${long}/projects/demo/data`),
      await send('/admin/projects', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ organization: long, project_name: 'p' }) }),
      await send('/api/local/projects/demo/images', { method: 'POST', headers: { 'content-type': long }, body: 'x' }),
    ]
    for (const answer of answers) {
      const text = await answer.text()
      expect({ status: answer.status, text: text.length < 1_200 ? 'short' : text.slice(0, 300) }).toEqual({ status: answer.status, text: 'short' })
      expect(answer.status).toBeGreaterThanOrEqual(400)
      expect(answer.status).toBeLessThan(500)
    }
    for (const line of logLines.slice(from)) expect(line.length).toBeLessThan(3_000)
  })
})

describe('names from clients are not JavaScript object members (6)', () => {
  test('model files named like Object.prototype members survive upload and download; "__proto__" is refused, not lost', async () => {
    const training = fixture.loop.store.createTraining('local', 'demo')
    const refused = await send(`/api/local/projects/demo/trainings/${training.number}/models/latest/onnx/file`, {
      method: 'PUT', body: multipart([{ name: '__proto__', content: 'x' }, { name: 'model.json', content: '{}' }]),
    })
    expect(refused.status).toBe(422)
    expect(((await refused.json()) as { detail: string }).detail).toContain('file name "__proto__" is reserved')
    const names = ['constructor', 'toString', 'hasOwnProperty', 'valueOf']
    const form = multipart([...names.map((name) => ({ name, content: `content of ${name}` })), { name: 'model.json', content: '{}' }])
    const upload = await send(`/api/local/projects/demo/trainings/${training.number}/models/latest/onnx/file`, { method: 'PUT', body: form })
    expect(upload.status).toBe(200)
    const { id } = (await upload.json()) as { id: string }
    const download = await fetch(`${url}/api/local/projects/demo/models/${id}/onnx/file`)
    expect(download.status).toBe(200)
    const entries = listZipEntries(new Uint8Array(await download.arrayBuffer())).map((entry) => entry.name).sort()
    expect(entries).toEqual([...names, 'model.json'].sort())
  })
})
