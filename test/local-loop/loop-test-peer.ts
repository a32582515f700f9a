/** Requests and socket.io connections shaped like a node's, for tests against a local loop. */
import jpeg from 'jpeg-js'
import { io, type Socket } from 'socket.io-client'

/** Logs in and returns the `Cookie` header value. */
export async function login(url: string, username = 'any', password = 'any'): Promise<string> {
  const response = await fetch(`${url}/api/login`, { method: 'POST', body: new URLSearchParams({ username, password }) })
  if (response.status !== 200) throw new Error(`login failed with ${response.status}: ${await response.text()}`)
  const setCookie = response.headers.get('set-cookie')
  if (!setCookie) throw new Error('login answered without Set-Cookie')
  return setCookie.split(';')[0]!
}

/** A small real JPEG of one colour. */
export function makeJpeg(width = 32, height = 24, rgb: [number, number, number] = [200, 40, 40]): Uint8Array {
  const pixels = new Uint8Array(width * height * 4)
  for (let i = 0; i < width * height; i++) pixels.set([rgb[0], rgb[1], rgb[2], 255], i * 4)
  return new Uint8Array(jpeg.encode({ width, height, data: pixels }, 90).data)
}

export type UploadFile = { name: string; content: Uint8Array | string }

/** An outbox-style upload item: `image_<id>.json` + `image_<id>.jpg`. */
export function uploadItem(id: string, metadata: unknown = {}, image: Uint8Array = makeJpeg()): UploadFile[] {
  return [
    { name: `image_${id}.json`, content: typeof metadata === 'string' ? metadata : JSON.stringify(metadata) },
    { name: `image_${id}.jpg`, content: image },
  ]
}

export function multipart(files: UploadFile[]): FormData {
  const form = new FormData()
  for (const file of files) form.append('files', new File([file.content as BlobPart], file.name))
  return form
}

export async function postImages(url: string, organization: string, project: string, files: UploadFile[]): Promise<Response> {
  return fetch(`${url}/api/${organization}/projects/${project}/images`, { method: 'POST', body: multipart(files) })
}

/** A socket.io client shaped like a node's: headers and the login cookie on the handshake. */
export async function connectNode(url: string, options: { cookie?: string; nodeType?: string; organization?: string; project?: string } = {}): Promise<Socket> {
  const headers: Record<string, string> = {
    organization: options.organization ?? 'local', project: options.project ?? 'demo', nodeType: options.nodeType ?? 'trainer',
  }
  if (options.cookie) headers.cookie = options.cookie
  const socket = io(url, { path: '/ws/socket.io', transports: ['websocket'], extraHeaders: headers, reconnection: false, timeout: 5_000 })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', (error) => {
      socket.close()
      reject(error)
    })
  })
  return socket
}

export const sampleCategory = (id: string, name: string, type = 'box') => ({ id, name, type, description: null, hotkey: null, color: '#ff0000', point_size: null })
