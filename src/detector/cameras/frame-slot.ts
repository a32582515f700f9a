/**
 * Latest frame wins: a camera's frames wait here for the model one at a time. A frame that arrives while the
 * previous one still waits replaces it and is counted as dropped, so a slow model never queues stale frames and
 * memory stays at one frame per camera. Pure.
 */
export class FrameSlot<F> {
  private frame: F | undefined
  private waiter: ((frame: F | undefined) => void) | undefined
  private closed = false
  dropped = 0

  /** Offers a frame; returns the one it displaced (nobody took it), if any; once closed, the frame itself. */
  offer(frame: F): F | undefined {
    if (this.closed) return frame
    if (this.waiter) {
      const waiter = this.waiter
      this.waiter = undefined
      waiter(frame)
      return undefined
    }
    const displaced = this.frame
    if (displaced !== undefined) this.dropped++
    this.frame = frame
    return displaced
  }

  /** The next frame: the waiting one at once, else the next offered; undefined once closed. */
  take(): Promise<F | undefined> {
    if (this.frame !== undefined) {
      const frame = this.frame
      this.frame = undefined
      return Promise.resolve(frame)
    }
    if (this.closed) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      this.waiter = resolve
    })
  }

  /** Ends every wait; the frame waiting is let go. */
  close(): void {
    this.closed = true
    this.frame = undefined
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.(undefined)
  }
}

/**
 * Frame buffers of one size used again: at 4 cameras × 15 fps of 640×480 a new buffer per frame is 55 MB/s of
 * garbage, and collecting it stalls the event loop. The buffers are shared memory, so the inference worker reads
 * them without a copy. A frame goes back with `release` once nothing reads it any more. Pure.
 */
export class FramePool {
  private readonly free: Uint8Array[] = []

  constructor(readonly frameBytes: number, private readonly keep = 4) {}

  acquire(): Uint8Array {
    return this.free.pop() ?? new Uint8Array(new SharedArrayBuffer(this.frameBytes))
  }

  release(frame: Uint8Array): void {
    if (frame.length === this.frameBytes && this.free.length < this.keep && !this.free.includes(frame)) this.free.push(frame)
  }
}

/**
 * Cuts a byte stream into frames of a fixed size (raw video from a pipe arrives in chunks of any length), each
 * in a buffer of its own from `allocate`, so a frame kept for the model or the status page pins no pipe chunk. Pure.
 */
export class FrameAssembler {
  private partial: Uint8Array
  private filled = 0

  constructor(readonly frameBytes: number, private readonly allocate: () => Uint8Array = () => new Uint8Array(frameBytes)) {
    this.partial = allocate()
  }

  /** Takes a chunk; calls `onFrame` for every frame completed by it. */
  push(chunk: Uint8Array, onFrame: (frame: Uint8Array) => void): void {
    let offset = 0
    while (offset < chunk.length) {
      const take = Math.min(this.frameBytes - this.filled, chunk.length - offset)
      this.partial.set(chunk.subarray(offset, offset + take), this.filled)
      this.filled += take
      offset += take
      if (this.filled === this.frameBytes) {
        onFrame(this.partial)
        this.partial = this.allocate()
        this.filled = 0
      }
    }
  }
}
