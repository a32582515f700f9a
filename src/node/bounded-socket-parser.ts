import { Decoder, Encoder, PacketType, type Packet } from 'socket.io-parser'

/**
 * socket.io's packet parser with limits that answer instead of hanging up. Every binary value of an event
 * (an image in `batch_detect`) travels as one attachment, a frame of its own. The stock parser allows 10 and
 * throws on more, which closes the connection without an ack or a log line. This one allows `maxAttachments`
 * and `maxEventBytes` in all; over either it drops the attachments as they arrive (holding none of them) and
 * then delivers the event with a RefusedEvent as its only argument, so the event's handler acks an error.
 */

/** Most binary attachments (images of a batch) one event may carry. */
export const DEFAULT_MAX_ATTACHMENTS = 256
/** Most bytes the attachments of one event may carry together (each frame is also capped on its own). */
export const DEFAULT_MAX_EVENT_BYTES = 256 * 1024 * 1024

/** Stands in for the arguments of an event the server would not take; its handler answers with `message`. */
export class RefusedEvent {
  constructor(readonly message: string) {}
}

export interface PacketLimits {
  maxAttachments: number
  maxEventBytes: number
  /** an event was refused over a limit; `reason` names which */
  onRefused(event: string, reason: 'too_many_attachments' | 'attachments_too_large', message: string): void
  /** the parser could not read a packet; the connection is closed after this */
  onMalformed(error: Error): void
}

/** socket.io's reserved names, which a client may not use as events (the stock parser refuses them too). */
const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'])

/** What the header of a binary event says: attachment count, namespace, ack id and event name. */
function binaryEventHeader(text: string): { attachments: number; nsp: string; id: number | undefined; event: string } | undefined {
  const match = /^5(\d+)-(\/[^,]*,)?(\d*)/.exec(text)
  if (!match) return undefined
  let payload: unknown
  try {
    payload = JSON.parse(text.slice(match[0].length))
  } catch {
    return undefined
  }
  const event = Array.isArray(payload) ? payload[0] : undefined
  if (typeof event !== 'string' || RESERVED_EVENTS.has(event)) return undefined
  return { attachments: Number(match[1]), nsp: match[2] ? match[2].slice(0, -1) : '/', id: match[3] ? Number(match[3]) : undefined, event }
}

function byteLengthOf(data: unknown): number {
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength
  return 0
}

/** The `parser` option of a socket.io Server: the stock encoder and a decoder with these limits. */
export function boundedSocketParser(limits: PacketLimits): { Encoder: typeof Encoder; Decoder: new () => Decoder } {
  class BoundedDecoder extends Decoder {
    /** the binary event being received: its header and what has arrived of it */
    private receiving: { header: string; attachments: number; received: number; bytes: number } | undefined
    /** a refused event whose remaining attachments are dropped as they arrive */
    private dropping: { packet: Packet; left: number } | undefined

    constructor() {
      super({ maxAttachments: limits.maxAttachments })
    }

    override add(data: any): void {
      try {
        this.take(data)
      } catch (error) {
        limits.onMalformed(error instanceof Error ? error : new Error(String(error)))
        throw error
      }
    }

    override destroy(): void {
      this.receiving = undefined
      this.dropping = undefined
      super.destroy()
    }

    private take(data: unknown): void {
      if (typeof data === 'string') {
        if (this.dropping) throw new Error('got plaintext data when reconstructing a packet')
        const attachments = /^5(\d+)-/.exec(data)
        if (attachments) {
          const count = Number(attachments[1])
          if (count > limits.maxAttachments && this.refuse(data, count, 'too_many_attachments', `${count} binary attachments; at most ${limits.maxAttachments} per event`)) return
          this.receiving = { header: data, attachments: count, received: 0, bytes: 0 }
        }
        super.add(data)
        return
      }
      if (this.dropping) {
        if (--this.dropping.left === 0) this.deliverRefusal()
        return
      }
      const receiving = this.receiving
      if (receiving) {
        receiving.received++
        receiving.bytes += byteLengthOf(data)
        if (receiving.bytes > limits.maxEventBytes) {
          const left = receiving.attachments - receiving.received
          const message = `binary attachments of more than ${limits.maxEventBytes} bytes in all`
          // frees what was held of this event before dropping the rest
          super.destroy()
          this.receiving = undefined
          if (this.refuse(receiving.header, left, 'attachments_too_large', message)) return
          throw new Error(message)
        }
        if (receiving.received === receiving.attachments) this.receiving = undefined
      }
      super.add(data)
    }

    /** Starts dropping `left` attachments of the event in `header`; false when the header cannot be read. */
    private refuse(header: string, left: number, reason: 'too_many_attachments' | 'attachments_too_large', detail: string): boolean {
      const parsed = binaryEventHeader(header)
      if (!parsed) return false
      const message = `${parsed.event}: ${detail}`
      limits.onRefused(parsed.event, reason, message)
      const packet: Packet = { type: PacketType.EVENT, nsp: parsed.nsp, data: [parsed.event, new RefusedEvent(message)], ...(parsed.id === undefined ? {} : { id: parsed.id }) }
      this.dropping = { packet, left }
      if (left === 0) this.deliverRefusal()
      return true
    }

    private deliverRefusal(): void {
      const { packet } = this.dropping!
      this.dropping = undefined
      this.emitReserved('decoded', packet)
    }
  }
  return { Encoder, Decoder: BoundedDecoder }
}
