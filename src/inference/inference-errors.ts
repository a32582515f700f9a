/**
 * Typed errors of the inference engine. They cross the worker boundary as `{name, message, details}`
 * and are rebuilt here, so callers can `instanceof` them whichever thread threw.
 */

/** An image the engine cannot read: corrupt or truncated data, unsupported dtype, shape/bytes mismatch. */
export class ImageInputError extends Error {
  /** `imageIndex`: the image's place in a request of several, set where the request was split (the worker, the pool) */
  constructor(message: string, readonly imageIndex?: number) {
    super(message)
    this.name = 'ImageInputError'
  }

  /** The error as the caller of a request of `count` images sees it: the message names the image when there were several. */
  forRequestOf(count: number): ImageInputError {
    return count > 1 && this.imageIndex !== undefined ? new ImageInputError(`image ${this.imageIndex}: ${this.message}`, this.imageIndex) : this
  }
}

/** A model package (zip or folder) that is unsafe, incomplete or inconsistent. */
export class ModelPackageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ModelPackageError'
  }
}

export interface BackendRejection {
  backend: string
  reason: string
}

/** No backend could run the model; `rejected` names every backend tried and why it failed. */
export class NoBackendError extends Error {
  constructor(readonly rejected: BackendRejection[]) {
    super(`no inference backend can run this model: ${rejected.map((r) => `${r.backend}: ${r.reason}`).join('; ') || 'none was tried'}`)
    this.name = 'NoBackendError'
  }
}

/** The engine cannot take more work: its queue is full, it was disposed, or its worker died. */
export class InferenceUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'InferenceUnavailableError'
  }
}

/** A request to an engine (or one of its workers) that was disposed before the request ran. */
export const engineDisposed = (): InferenceUnavailableError => new InferenceUnavailableError('the inference engine was disposed')

/** What a worker posts for a thrown error. */
export interface SerializedError {
  name: string
  message: string
  rejected?: BackendRejection[]
  imageIndex?: number
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof NoBackendError) return { name: error.name, message: error.message, rejected: error.rejected }
  if (error instanceof ImageInputError) return { name: error.name, message: error.message, imageIndex: error.imageIndex }
  if (error instanceof Error) return { name: error.name, message: error.message }
  return { name: 'Error', message: String(error) }
}

export function deserializeError(error: SerializedError): Error {
  switch (error.name) {
    case 'ImageInputError': return new ImageInputError(error.message, error.imageIndex)
    case 'ModelPackageError': return new ModelPackageError(error.message)
    case 'NoBackendError': return new NoBackendError(error.rejected ?? [])
    case 'InferenceUnavailableError': return new InferenceUnavailableError(error.message)
    default: {
      const rebuilt = new Error(error.message)
      rebuilt.name = error.name
      return rebuilt
    }
  }
}
