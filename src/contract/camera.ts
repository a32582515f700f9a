import { Type, type Static } from '@sinclair/typebox'
import { AutouploadModeSchema } from './enums.ts'
import type { ImageMetadata } from './image-metadata.ts'

/** The states a camera goes through (detector cameras): see detector/cameras/camera-state.ts. */
export const CAMERA_PHASES = ['connecting', 'streaming', 'stalled', 'disabled'] as const
export type CameraPhase = (typeof CAMERA_PHASES)[number]

/**
 * One camera the detector reads itself (`cameras.json`, `PUT /cameras/<id>`, socket `put_camera`): where the
 * frames come from, how often to detect, and what the detections go to the Loop with.
 */
export const CameraConfig = Type.Object({
  /** letters, digits, `_`, `-`, `.`; names the camera in URLs, rooms, metrics and the images' `camera_id` */
  id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
  /** rtsp://, rtsps://, http(s):// (MJPEG), /dev/videoN (V4L2) or a video file */
  url: Type.String({ minLength: 1, maxLength: 2048 }),
  /** detections per second */
  fps: Type.Number({ exclusiveMinimum: 0, maximum: 60, default: 5 }),
  /** scale frames to this size before detection (one given: the other keeps the aspect ratio) */
  width: Type.Optional(Type.Integer({ minimum: 16, maximum: 8192 })),
  height: Type.Optional(Type.Integer({ minimum: 16, maximum: 8192 })),
  tags: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 50, default: [] }),
  autoupload: Type.Optional(AutouploadModeSchema),
  enabled: Type.Boolean({ default: true }),
  /** a video file starts again at its end */
  loop: Type.Boolean({ default: false }),
}, { $id: 'CameraConfig', additionalProperties: false })
export type CameraConfig = Static<typeof CameraConfig>

/** `cameras.json` (`--cameras`, `CAMERAS_FILE`) and `<data>/cameras/cameras.json`. */
export const CamerasFile = Type.Object({
  cameras: Type.Array(CameraConfig, { maxItems: 64 }),
}, { $id: 'CamerasFile' })
export type CamerasFile = Static<typeof CamerasFile>

/** What `GET /cameras[/<id>]`, `/status.json` and the socket event `cameras` report of one camera. */
export interface CameraStatus {
  id: string
  config: CameraConfig
  state: CameraPhase
  /** why the last connection ended or failed (ffmpeg's last words, a watchdog timeout) */
  error: string | null
  /** why the last frame could not be detected (no model yet, over MAX_IMAGE_PIXELS …); null once one is detected */
  detection_error: string | null
  /** the size frames arrive in, once known */
  frame_size: { width: number; height: number } | null
  frames_received: number
  frames_detected: number
  frames_dropped: number
  reconnects: number
  /** when the next connection attempt starts (stalled), epoch ms */
  retry_at: number | null
  last_frame_at: number | null
}

/** The socket.io event `detections` and each SSE `detections` event of `GET /cameras/<id>/events`. */
export interface CameraDetections {
  camera_id: string
  /** frame counter of this connection's stream */
  frame: number
  at: number
  width: number
  height: number
  detections: ImageMetadata
}
