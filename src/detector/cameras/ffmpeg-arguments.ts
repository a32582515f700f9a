import type { CameraConfig } from '../../contract/index.ts'
import { cameraSourceOf } from './camera-config.ts'

/**
 * ffmpeg's command line for one camera, and what its log tells: pure. The frames come out of stdout as raw
 * RGB (`rgb24`, width × height × 3 bytes each) at the camera's fps and size, so they go to the model without
 * another encode or decode; `info` logging is kept because it names the output size before the first frame.
 */
export function ffmpegArguments(config: CameraConfig): string[] {
  const source = cameraSourceOf(config.url)
  const input: string[] = []
  if (source.kind === 'rtsp') input.push('-i', source.url)
  else if (source.kind === 'http') input.push('-i', source.url)
  else if (source.kind === 'v4l2') input.push('-f', 'v4l2', '-i', source.device)
  // a file is read at its own pace, as a camera would send it, and from the start again when looped
  else input.push('-re', ...(config.loop ? ['-stream_loop', '-1'] : []), '-i', source.path)
  const filters = [`fps=${config.fps}`]
  if (config.width !== undefined || config.height !== undefined) filters.push(`scale=${config.width ?? -2}:${config.height ?? -2}`)
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info',
    // slice threads, not frame threads: a frame-threaded decoder holds frames back and lets them out in bursts,
    // which costs latency and, with latest frame wins, drops the burst but its last frame
    '-thread_type', 'slice',
    ...input,
    '-an', '-sn', '-dn', '-vf', filters.join(','), '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1',
  ]
}

/** Reads ffmpeg's log line by line: the size of the frames it writes, and the last line that says why it stopped. */
export class FfmpegLog {
  private inOutput = false
  frameSize: { width: number; height: number } | undefined
  lastProblem: string | undefined

  /** Takes one line of stderr; returns the frame size when this line announced it. */
  read(line: string): { width: number; height: number } | undefined {
    if (/^Output #0\b/.test(line)) this.inOutput = true
    if (this.inOutput && this.frameSize === undefined) {
      const size = /Video: rawvideo\b.*?, (\d{2,5})x(\d{2,5})\b/.exec(line)
      if (size) {
        this.frameSize = { width: Number(size[1]), height: Number(size[2]) }
        return this.frameSize
      }
    }
    // indented lines describe streams and metadata; a problem is said unindented (`rtsp://…: Connection refused`)
    const text = line.trim()
    // …and the closing statistics (`video:13500kB audio:0kB …`) say nothing of why
    if (text && !/^\s/.test(line) && !/^(Input|Output|Stream mapping|Press \[q\]|video:\d+kB|frame=)/.test(text)) this.lastProblem = withoutCredentials(text).slice(0, 300)
    return undefined
  }
}

/** A text with the user:password of every URL in it replaced: ffmpeg names the URL it failed on, and that goes to logs. */
export function withoutCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@')
}
