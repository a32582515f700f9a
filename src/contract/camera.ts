import { Type, type Static } from '@sinclair/typebox'
import { AutouploadModeSchema } from './enums.ts'
import { ImageMetadata } from './image-metadata.ts'
import { OrNull, StringEnum } from './schema-helpers.ts'

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
export const CameraStatus = Type.Object({
  id: Type.String(),
  config: CameraConfig,
  state: StringEnum(CAMERA_PHASES),
  error: OrNull(Type.String({ description: 'why the last connection ended or failed (ffmpeg\'s last words, a watchdog timeout)' })),
  detection_error: OrNull(Type.String({ description: 'why the last frame could not be detected (no model yet, over MAX_IMAGE_PIXELS …); null once one is detected' })),
  frame_size: OrNull(Type.Object({ width: Type.Integer(), height: Type.Integer() }, { description: 'the size frames arrive in, once known' })),
  frames_received: Type.Integer(),
  frames_detected: Type.Integer(),
  frames_dropped: Type.Integer(),
  reconnects: Type.Integer(),
  retry_at: OrNull(Type.Number({ description: 'when the next connection attempt starts (stalled), epoch ms' })),
  last_frame_at: OrNull(Type.Number()),
}, { $id: 'CameraStatus' })
export type CameraStatus = Static<typeof CameraStatus>

/** The socket.io event `detections` and each SSE `detections` event of `GET /cameras/<id>/events`. */
export const CameraDetections = Type.Object({
  camera_id: Type.String(),
  frame: Type.Integer({ description: 'frame counter of this connection\'s stream' }),
  at: Type.Number(),
  width: Type.Integer(),
  height: Type.Integer(),
  detections: ImageMetadata,
}, { $id: 'CameraDetections' })
export type CameraDetections = Static<typeof CameraDetections>

/** `GET /cameras/<id>/last`: the last detected frame as a JPEG data URL, with its detections. */
export const CameraLastFrame = Type.Object({
  at: Type.Number(),
  detections: ImageMetadata,
  jpeg: Type.String({ description: 'data:image/jpeg;base64,…' }),
}, { $id: 'CameraLastFrame' })
export type CameraLastFrame = Static<typeof CameraLastFrame>
