import { Type, type Static } from '@sinclair/typebox'

/** The ack of every Loop → node event (§5.1). */
export const SocketResponse = Type.Object({
  success: Type.Boolean(),
  error_msg: Type.Union([Type.String(), Type.Null()], { default: null }),
  payload: Type.Optional(Type.Unknown({ default: null })),
}, { $id: 'SocketResponse' })
export type SocketResponse = Static<typeof SocketResponse>

export function socketSuccess(payload: unknown = null): SocketResponse {
  return { success: true, error_msg: null, payload }
}
export function socketFailure(message: string): SocketResponse {
  return { success: false, error_msg: message, payload: null }
}

/**
 * Turns whatever an event handler returned into the ack of §5.1:
 * string → success with it as payload; boolean → success flag; SocketResponse-shaped → itself;
 * undefined/null → success without payload; anything else → failure naming the type.
 */
export function toSocketResponse(result: unknown): SocketResponse {
  if (typeof result === 'string') return socketSuccess(result)
  if (typeof result === 'boolean') return { success: result, error_msg: null, payload: null }
  if (result === undefined || result === null) return socketSuccess(null)
  if (typeof result === 'object' && 'success' in result && typeof (result as { success: unknown }).success === 'boolean') {
    const r = result as { success: boolean; error_msg?: unknown; payload?: unknown }
    return { success: r.success, error_msg: typeof r.error_msg === 'string' ? r.error_msg : null, payload: r.payload ?? null }
  }
  return socketFailure(`handler returned an unsupported value of type ${Array.isArray(result) ? 'array' : typeof result}`)
}
