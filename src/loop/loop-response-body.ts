import { toLoopError, type RequestContext } from './loop-error.ts'

/**
 * The attempt's timeout keeps running while the body is read; wrap the body so that such a timeout
 * surfaces as LoopError `timeout` rather than a bare DOMException.
 */
export function attachAbortMapping(response: Response, ctx: RequestContext, callerSignal?: AbortSignal): Response {
  const body = response.body
  if (!body) return response
  const reader = body.getReader()
  const mapped = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) controller.close()
        else controller.enqueue(value)
      } catch (error) {
        controller.error(toLoopError(error, ctx, callerSignal))
      }
    },
    cancel(reason) {
      return reader.cancel(reason)
    },
  })
  return new Response(mapped, { status: response.status, statusText: response.statusText, headers: response.headers })
}

/** The whole body as text; a timeout or network failure while reading it is a LoopError. */
export async function readText(response: Response, ctx: RequestContext): Promise<string> {
  try {
    return await response.text()
  } catch (error) {
    throw toLoopError(error, ctx)
  }
}
