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

  /** Offers a frame; returns true when it displaced one nobody took. */
  offer(frame: F): boolean {
    if (this.closed) return false
    if (this.waiter) {
      const waiter = this.waiter
      this.waiter = undefined
      waiter(frame)
      return false
    }
    const displaced = this.frame !== undefined
    if (displaced) this.dropped++
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
 * Cuts a byte stream into frames of a fixed size (raw video from a pipe arrives in chunks of any length).
 * A frame is a copy of its own, so a frame kept by the status page does not pin a pipe chunk. Pure.
 */
export class FrameAssembler {
  private partial: Uint8Array
  private filled = 0

  constructor(readonly frameBytes: number) {
    this.partial = new Uint8Array(frameBytes)
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
        this.partial = new Uint8Array(this.frameBytes)
        this.filled = 0
      }
    }
  }
}
