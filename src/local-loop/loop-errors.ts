import { ContractError } from '../contract/index.ts'
import { quoteInput } from '../foundation/log.ts'
import { RequestTooLargeError } from '../node/request-limits.ts'

/**
 * A request the local Loop refuses, with the HTTP status that says why. Socket handlers turn it into a
 * failure ack with the same message; the REST layer into `{detail}` with the status.
 */
export class LoopRequestError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message)
    this.name = 'LoopRequestError'
  }
}

export const notFound = (message: string) => new LoopRequestError(404, message)
export const unprocessable = (message: string) => new LoopRequestError(422, message)
export const badRequest = (message: string) => new LoopRequestError(400, message)
export const conflict = (message: string) => new LoopRequestError(409, message)

/** Any thrown value as a LoopRequestError: contract violations are 422 naming the fields; the rest 500. */
export function asLoopRequestError(error: unknown): LoopRequestError {
  if (error instanceof LoopRequestError) return error
  if (error instanceof ContractError) return unprocessable(error.message)
  if (error instanceof RequestTooLargeError) return new LoopRequestError(error.status, error.message)
  return new LoopRequestError(500, `internal error: ${error instanceof Error ? error.message : String(error)}`)
}

/** Organization and project names become folder names; keep them to one safe path segment. */
export function nameProblem(what: string, name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(name)) {
    return `${what} ${quoteInput(name)} must start with a letter or digit and contain only letters, digits, '_', '.', '-' (at most 100)`
  }
  return undefined
}

/**
 * The message of a request Elysia refused against a route's schema: where (query, body, params) and each
 * offending field, e.g. `invalid query: /per_page: Expected string to match '^[0-9]{1,9}$'`.
 */
interface ValidationIssue { path?: string; summary?: string; message?: string; errors?: Iterable<ValidationIssue>[] }

/**
 * A value that matches no variant of a union (a box or a point annotation) says only "should be one of …"; the
 * issues of the variant it came closest to (the fewest) name the field instead.
 */
function closestVariantIssues(issue: ValidationIssue): ValidationIssue[] {
  if (!Array.isArray(issue.errors) || issue.errors.length === 0) return [issue]
  const variants = issue.errors.map((variant) => [...variant])
  const closest = variants.reduce((best, variant) => (variant.length < best.length ? variant : best))
  return closest.length > 0 ? closest : [issue]
}

export function validationMessage(error: unknown): string {
  const refused = error as { type?: unknown; all?: ValidationIssue[] }
  const issues = (Array.isArray(refused.all) ? refused.all : []).flatMap(closestVariantIssues).slice(0, 5)
    .map((issue) => `${issue.path || '(root)'}: ${issue.summary ?? issue.message ?? 'invalid'}`)
  const where = typeof refused.type === 'string' && refused.type !== 'validation' ? refused.type : 'request'
  return issues.length ? `invalid ${where}: ${[...new Set(issues)].join('; ')}` : `invalid ${where}: ${error instanceof Error ? error.message : String(error)}`
}
