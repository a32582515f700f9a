import type { Server, Socket } from 'socket.io'
import { ALL_CAMERAS, type CameraManager } from './camera-manager.ts'
import { CameraConfigError } from './camera-config.ts'

/** The socket.io room of a camera's detections; `cameras:*` gets every camera's. */
export const cameraRoom = (id: string) => `camera:${id}`

function cameraIdOf(data: unknown, event: string): string {
  const id = typeof data === 'string' ? data : data && typeof data === 'object' ? (data as { camera_id?: unknown }).camera_id : undefined
  if (typeof id !== 'string' || id === '') throw new CameraConfigError(`${event}: expected {"camera_id": "<id>"} or the id as a string`)
  return id
}

/**
 * The camera events of the detector's socket.io API: `cameras` (list), `get_camera`, `put_camera` ({camera_id,
 * config}), `delete_camera`, `join_camera` / `leave_camera` ({camera_id}, `*` for all; the socket then gets the
 * `detections` event of that camera). Handlers for socket-events.ts; errors become `{error}`.
 */
export function cameraSocketHandlers(cameras: CameraManager): Record<string, (data: unknown, socket: Socket) => unknown> {
  return {
    cameras: () => ({ cameras: cameras.list() }),
    get_camera: (data) => cameras.get(cameraIdOf(data, 'get_camera')),
    put_camera: async (data) => {
      const id = cameraIdOf(data, 'put_camera')
      const { status } = await cameras.put(id, (data as { config?: unknown }).config)
      return status
    },
    delete_camera: async (data) => {
      await cameras.remove(cameraIdOf(data, 'delete_camera'))
      return { status: 'OK' }
    },
    join_camera: async (data, socket) => {
      const id = cameraIdOf(data, 'join_camera')
      if (id !== ALL_CAMERAS) cameras.get(id)
      await socket.join(cameraRoom(id))
      return { status: 'OK' }
    },
    leave_camera: async (data, socket) => {
      await socket.leave(cameraRoom(cameraIdOf(data, 'leave_camera')))
      return { status: 'OK' }
    },
  }
}

/** Sends every camera's detections to the sockets that joined that camera or all cameras. */
export function publishDetectionsTo(io: Server, cameras: CameraManager): () => void {
  return cameras.subscribe(ALL_CAMERAS, (detections) => {
    io.to(cameraRoom(detections.camera_id)).to(cameraRoom(ALL_CAMERAS)).emit('detections', detections)
  })
}
