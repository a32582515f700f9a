import { CameraConfig, CamerasFile, ContractError, decode } from '../../contract/index.ts'
import { ConfigError } from '../../config/read-settings.ts'

/**
 * A camera entry that cannot be used; the message names the field. Answered with 422 or `{error}`; in the cameras
 * file at start, a configuration error (the command exits 2 with the message).
 */
export class CameraConfigError extends ConfigError {
  constructor(message: string) {
    super(message)
    this.name = 'CameraConfigError'
  }
}

/** Where a camera's frames come from, as ffmpeg must be told. */
export type CameraSource =
  | { kind: 'rtsp'; url: string }
  | { kind: 'http'; url: string }
  | { kind: 'v4l2'; device: string }
  | { kind: 'file'; path: string }

const SCHEME = /^([a-z][a-z0-9+.-]*):/i

/** The kind of source a camera URL names; throws CameraConfigError naming `url` for anything else. */
export function cameraSourceOf(url: string): CameraSource {
  // a control character has no place in a URL or path, and a NUL would make spawning ffmpeg throw
  if (/[\u0000-\u001f\u007f]/.test(url)) throw new CameraConfigError('url: must not contain control characters')
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase()
  if (scheme === 'rtsp' || scheme === 'rtsps') return { kind: 'rtsp', url }
  if (scheme === 'http' || scheme === 'https') return { kind: 'http', url }
  if (scheme === 'file') return { kind: 'file', path: decodeURIComponent(new URL(url).pathname) }
  if (scheme !== undefined && scheme.length > 1) {
    throw new CameraConfigError(`url: scheme ${JSON.stringify(scheme)} is not supported; use rtsp://, rtsps://, http(s):// (MJPEG), /dev/videoN or a video file path`)
  }
  if (/^\/dev\/video\d+$/.test(url)) return { kind: 'v4l2', device: url }
  if (url.startsWith('/dev/')) throw new CameraConfigError(`url: ${JSON.stringify(url)} is not a V4L2 device (/dev/videoN)`)
  if (!url.startsWith('/')) throw new CameraConfigError(`url: a video file must be an absolute path, got ${JSON.stringify(url)}`)
  return { kind: 'file', path: url }
}

/**
 * A camera entry as a client or a file gives it, checked: the shape (TypeBox names the bad field, an unknown
 * field too), then the source; defaults filled in (fps 5, enabled, no loop, no tags).
 */
export function parseCameraConfig(raw: unknown, where?: string): CameraConfig {
  const id = raw && typeof raw === 'object' ? (raw as { id?: unknown }).id : undefined
  const label = where ?? (typeof id === 'string' ? `camera ${JSON.stringify(id)}` : 'camera')
  let config: CameraConfig
  try {
    config = decode(CameraConfig, raw)
  } catch (error) {
    if (error instanceof ContractError) {
      throw new CameraConfigError(`${label}: ${error.issues.map((i) => `${fieldName(i.path)}: ${i.message}`).join('; ')}`)
    }
    throw error
  }
  let kind: CameraSource['kind']
  try {
    kind = cameraSourceOf(config.url).kind
  } catch (error) {
    throw new CameraConfigError(`${label}: ${(error as Error).message}`)
  }
  if (config.loop && kind !== 'file') throw new CameraConfigError(`${label}: loop: only a video file can be looped`)
  return config
}

/** `/fps` → `fps`, `` → `(the entry)` */
function fieldName(path: string): string {
  return path.replace(/^\//, '').replace(/\//g, '.') || '(the entry)'
}

/** A cameras file's text: `{"cameras": [...]}`; ids must be unique. `source` names the file in errors. */
export function parseCamerasFile(text: string, source: string): CameraConfig[] {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new CameraConfigError(`${source}: not JSON (${(error as Error).message})`)
  }
  if (!json || typeof json !== 'object' || !Array.isArray((json as { cameras?: unknown }).cameras)) {
    throw new CameraConfigError(`${source}: expected {"cameras": [ … ]}`)
  }
  const entries = (json as { cameras: unknown[] }).cameras
  const max = CamerasFile.properties.cameras.maxItems ?? Infinity
  if (entries.length > max) throw new CameraConfigError(`${source}: cameras: at most ${max} cameras, got ${entries.length}`)
  const cameras = entries.map((entry, index) => parseCameraConfig(entry, `${source}: cameras[${index}]`))
  const seen = new Set<string>()
  for (const [index, camera] of cameras.entries()) {
    if (seen.has(camera.id)) throw new CameraConfigError(`${source}: cameras[${index}].id: ${JSON.stringify(camera.id)} is used twice`)
    seen.add(camera.id)
  }
  return cameras
}
