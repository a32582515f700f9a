import { Buffer } from 'node:buffer'
import type { Elysia } from 'elysia'
import { Type } from '@sinclair/typebox'
import { CameraConfig, CameraDetections, CameraLastFrame, CameraStatus } from '../../contract/index.ts'
import { clipText, errorMessage, MAX_ERROR_ANSWER_CHARACTERS } from '../../foundation/log.ts'
import { encodeJpeg } from '../../inference/jpeg-encoding.ts'
import { readBodyText, RequestTooLargeError } from '../../node/request-limits.ts'
import { bytesContent, docsTagged, jsonContent, textContent } from '../../node/route-docs.ts'
import type { RouteHost } from '../detector-api.ts'
import { CameraConfigError } from './camera-config.ts'
import { UnknownCameraError, type CameraManager } from './camera-manager.ts'

/** A camera entry is a few fields; a URL may be long. */
const MAX_CAMERA_BODY_BYTES = 16 * 1024
/** SSE events waiting for a slow client; beyond it events are skipped, so a stuck client costs no memory. */
const MAX_QUEUED_EVENTS = 64
const KEEP_ALIVE_MS = 15_000

const docs = docsTagged('cameras')

/** A camera that exists but has not had a frame detected yet. */
class NoFrameYetError extends Error {}

function statusOf(error: unknown): number {
  if (error instanceof UnknownCameraError || error instanceof NoFrameYetError) return 404
  if (error instanceof CameraConfigError || error instanceof SyntaxError) return 422
  if (error instanceof RequestTooLargeError) return error.status
  return 500
}

/** `GET/PUT/DELETE /cameras[/<id>]`, Server-Sent Events of a camera's detections, its last frame as JPEG. */
export function registerCameraRoutes(app: Elysia<any, any, any, any, any, any, any>, cameras: CameraManager, host: RouteHost): void {
  const fail = (error: unknown, set: { status?: number | string }, route: string) => {
    const status = statusOf(error)
    set.status = status
    const detail = clipText(errorMessage(error), MAX_ERROR_ANSWER_CHARACTERS)
    // the status page asks for a camera's last frame every second, also before its first one: not worth a warning
    if (!(error instanceof NoFrameYetError)) (status >= 500 ? host.log.error : host.log.warn)(`${route} failed`, { status, error: detail })
    return { detail }
  }
  const lastFrameOf = (id: string) => {
    const last = cameras.lastFrame(id)
    if (!last) throw new NoFrameYetError(`camera ${JSON.stringify(id)} has no detected frame yet`)
    return last
  }
  app
    .get('/cameras', () => cameras.list(), docs({ summary: 'Every camera with its configuration, state, error and frame counts', responses: { 200: jsonContent(Type.Array(CameraStatus)) } }))
    .get('/cameras/:id', ({ params, set }) => {
      try {
        return cameras.get(params.id)
      } catch (error) {
        return fail(error, set, 'GET /cameras/:id')
      }
    }, docs({ summary: 'One camera: configuration, state (connecting, streaming, stalled, disabled), error, counts', responses: { 200: jsonContent(CameraStatus) } }))
    .put('/cameras/:id', async ({ params, request, set }) => {
      try {
        const text = await readBodyText(request, MAX_CAMERA_BODY_BYTES)
        let body: unknown
        try {
          body = JSON.parse(text)
        } catch (error) {
          throw new CameraConfigError(`the body is not JSON: ${errorMessage(error)}`)
        }
        const { created, status } = await cameras.put(params.id, body)
        set.status = created ? 201 : 200
        return status
      } catch (error) {
        return fail(error, set, 'PUT /cameras/:id')
      }
    }, {
      parse: 'none',
      ...docs({
        summary: 'Add or change a camera (JSON: url, fps, width, height, tags, autoupload, enabled, loop); only this camera restarts',
        body: jsonContent(Type.Omit(CameraConfig, ['id'], { description: '`id` may be left out (it is the path\'s); a body naming another id is refused' })),
        responses: { 200: jsonContent(CameraStatus, 'changed'), 201: jsonContent(CameraStatus, 'added') },
      }),
    })
    .delete('/cameras/:id', async ({ params, set }) => {
      try {
        await cameras.remove(params.id)
        return 'OK'
      } catch (error) {
        return fail(error, set, 'DELETE /cameras/:id')
      }
    }, docs({ summary: 'Remove a camera; its ffmpeg ends', responses: { 200: textContent(Type.Literal('OK')) } }))
    .get('/cameras/:id/frame.jpg', async ({ params, set }) => {
      try {
        const last = lastFrameOf(params.id)
        return new Response(await encodeJpeg(last.image) as Uint8Array<ArrayBuffer>, {
          headers: { 'content-type': 'image/jpeg', 'cache-control': 'no-store', 'x-detected-at': String(last.at) },
        })
      } catch (error) {
        return fail(error, set, 'GET /cameras/:id/frame.jpg')
      }
    }, docs({ summary: 'The last detected frame of a camera as JPEG (encoded on request)', responses: { 200: bytesContent('image/jpeg', 'the frame') } }))
    .get('/cameras/:id/last', async ({ params, set }) => {
      try {
        const last = lastFrameOf(params.id)
        // one answer holds the frame and its detections, so the status page never draws boxes over another frame
        const jpeg = await encodeJpeg(last.image)
        return { at: last.at, detections: last.metadata, jpeg: `data:image/jpeg;base64,${Buffer.from(jpeg).toString('base64')}` }
      } catch (error) {
        return fail(error, set, 'GET /cameras/:id/last')
      }
    }, docs({ summary: 'The last detected frame of a camera (a JPEG data URL) with its detections: what the status page draws', responses: { 200: jsonContent(CameraLastFrame) } }))
    .get('/cameras/:id/events', ({ params, set, request }) => {
      try {
        return detectionEvents(cameras, params.id, request.signal)
      } catch (error) {
        return fail(error, set, 'GET /cameras/:id/events')
      }
    }, docs({
      summary: 'Server-Sent Events: `detections` of the camera (id `*`: of every camera) as they are made',
      responses: { 200: { mediaType: 'text/event-stream', schema: Type.String(), description: '`detections` events, each a CameraDetections as JSON' } },
    }))
}

/** A text/event-stream of a camera's detections until the client goes, the camera is removed or the node stops. */
function detectionEvents(cameras: CameraManager, id: string, aborted: AbortSignal): Response {
  const encoder = new TextEncoder()
  let cleanup = () => {}
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true
      const send = (text: string) => {
        // a client that does not read does not make us queue: its events are skipped until it catches up
        if (open && (controller.desiredSize ?? 0) > 0) controller.enqueue(encoder.encode(text))
      }
      const unsubscribe = cameras.subscribe(id, (detections: CameraDetections) => send(`event: detections\ndata: ${JSON.stringify(detections)}\n\n`), () => {
        cleanup()
        controller.close()
      })
      const keepAlive = setInterval(() => send(': keep-alive\n\n'), KEEP_ALIVE_MS)
      cleanup = () => {
        if (!open) return
        open = false
        clearInterval(keepAlive)
        unsubscribe()
      }
      aborted.addEventListener('abort', () => cleanup(), { once: true })
      send(': connected\n\n')
    },
    cancel() {
      cleanup()
    },
  }, new CountQueuingStrategy({ highWaterMark: MAX_QUEUED_EVENTS }))
  return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' } })
}
