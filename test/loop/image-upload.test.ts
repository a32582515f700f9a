import { afterEach, expect, test } from 'bun:test'
import { createFetchUpload, imageUploadForm } from '../../src/loop/image-upload.ts'
import { LoopRestClient } from '../../src/loop/loop-rest-client.ts'
import { makeTempDir } from '../support/temp.ts'
import { makeTestCertificates, startScriptedLoop, type ScriptedLoop } from './scripted-loop.ts'

const peers: ScriptedLoop[] = []
afterEach(async () => {
  for (const peer of peers.splice(0)) await peer.stop()
})

interface ReceivedUpload {
  path: string
  loggedIn: boolean
  parts: { name: string; type: string; text: string }[]
}

/** A scripted Loop that answers the image upload and keeps what arrived, part by part. */
function imageLoop(tls?: { cert: string; key: string }): { peer: ScriptedLoop; received: ReceivedUpload[] } {
  const peer = startScriptedLoop(tls ? { tls } : {})
  peers.push(peer)
  const received: ReceivedUpload[] = []
  peer.route = async (req, { loggedIn }) => {
    const form = await req.formData()
    const parts = await Promise.all(form.getAll('files').map(async (file) => {
      const blob = file as File
      return { name: blob.name, type: blob.type, text: await blob.text() }
    }))
    received.push({ path: new URL(req.url).pathname, loggedIn, parts })
    return new Response('ok')
  }
  return { peer, received }
}

const encoder = new TextEncoder()
const image = (id: string) => ({ id, json: encoder.encode(`{"source":"${id}"}`), jpeg: encoder.encode(`jpeg of ${id}`) })

test('a batch is one POST to the project images with a json and a jpg part per image, in order, without a cookie by default', async () => {
  const { peer, received } = imageLoop()
  const upload = createFetchUpload({ baseUrl: `${peer.url}/`, organization: 'zauber zeug', project: 'demo' })
  const response = await upload(imageUploadForm([image('a'), image('b')]), AbortSignal.timeout(5_000))
  expect(response.status).toBe(200)
  expect(received).toHaveLength(1)
  expect(received[0]!.path).toBe('/api/zauber%20zeug/projects/demo/images')
  expect(received[0]!.parts).toEqual([
    { name: 'image_a.json', type: expect.stringMatching(/^application\/json/), text: '{"source":"a"}' },
    { name: 'image_a.jpg', type: 'image/jpeg', text: 'jpeg of a' },
    { name: 'image_b.json', type: expect.stringMatching(/^application\/json/), text: '{"source":"b"}' },
    { name: 'image_b.jpg', type: 'image/jpeg', text: 'jpeg of b' },
  ])
  expect(peer.requests[0]!.cookie).toBeNull()
})

test('the session cookie is read at each upload: a login after the upload was made is carried by the next batch', async () => {
  const { peer, received } = imageLoop()
  const rest = new LoopRestClient({ baseUrl: peer.url, username: 'alice', password: 'secret' })
  const upload = createFetchUpload({ baseUrl: rest.baseUrl, organization: 'o', project: 'p', cookie: () => rest.cookieHeader() })
  await upload(imageUploadForm([image('before')]), AbortSignal.timeout(5_000))
  await rest.ensureLogin()
  await upload(imageUploadForm([image('after')]), AbortSignal.timeout(5_000))
  expect(received.map((r) => r.loggedIn)).toEqual([false, true])
})

test.skipIf(!Bun.which('openssl'))('over https the CA bundle is trusted; without it the upload fails', async () => {
  const temp = await makeTempDir()
  try {
    const certs = await makeTestCertificates(temp.path)
    const { peer, received } = imageLoop({ cert: certs.cert, key: certs.key })
    const target = { baseUrl: peer.url, organization: 'o', project: 'p' }
    expect((await createFetchUpload({ ...target, ca: certs.ca })(imageUploadForm([image('a')]), AbortSignal.timeout(5_000))).status).toBe(200)
    expect(received).toHaveLength(1)
    await expect(createFetchUpload(target)(imageUploadForm([image('b')]), AbortSignal.timeout(5_000))).rejects.toThrow(/certificate/i)
  } finally {
    await temp.cleanup()
  }
})
