import { Type, type TObject, type TSchema } from '@sinclair/typebox'
import type { DocumentDecoration } from 'elysia'

/**
 * What a route says about itself for `/openapi.json`: its request and answer shapes as the TypeBox schemas
 * its handler decodes with (or builds its answer from). `routeDocs` turns them into the route's Elysia
 * `detail`; `openapi-document.ts` collects the details of the app's route table into the document.
 */

/** A body or an answer: a media type and the schema of what it carries. */
export interface Content {
  mediaType: string
  schema: TSchema
  description?: string
}

/** The answer every failing route gives (§7.3, the local loop's API): a message in `detail`. */
export const ErrorAnswer = Type.Object({ detail: Type.String() }, { $id: 'ErrorAnswer', description: 'what went wrong' })

export const jsonContent = (schema: TSchema, description?: string): Content => ({ mediaType: 'application/json', schema, description })
export const textContent = (schema: TSchema, description?: string): Content => ({ mediaType: 'text/plain', schema, description })
export const htmlContent = (description: string): Content => ({ mediaType: 'text/html', schema: Type.String(), description })
/** A multipart form; file fields are `binaryString()` (or arrays of them). */
export const multipartContent = (schema: TObject, description?: string): Content => ({ mediaType: 'multipart/form-data', schema, description })
/** Raw bytes of `mediaType` (an image, a zip). */
export const bytesContent = (mediaType: string, description?: string): Content => ({ mediaType, schema: binaryString(), description })
/** A file in a multipart form or raw bytes, as OpenAPI names them. */
export const binaryString = (description?: string) => Type.String({ format: 'binary', description })

export interface RouteDocsInput {
  summary: string
  tags: string[]
  description?: string
  /** query parameters by name; optional properties are optional parameters */
  query?: TObject
  /** header parameters by name (a detector's /detect takes its options as headers or query) */
  headers?: TObject
  /** the request body; several contents are alternatives the route accepts */
  body?: Content | Content[]
  /** answers by status; at least one 2xx. Any status not listed answers `ErrorAnswer`. */
  responses: Record<number, Content | Content[]>
}

export function routeDocs(input: RouteDocsInput): DocumentDecoration {
  const parameters = [
    ...parametersOf(input.query, 'query'),
    ...parametersOf(input.headers, 'header'),
  ]
  const responses: Record<string, unknown> = {}
  for (const [status, content] of Object.entries(input.responses)) responses[status] = responseOf(contents(content), Number(status))
  responses.default = responseOf([jsonContent(ErrorAnswer)], 0)
  const detail: Record<string, unknown> = { summary: input.summary, tags: input.tags, responses }
  if (input.description) detail.description = input.description
  if (parameters.length > 0) detail.parameters = parameters
  if (input.body) detail.requestBody = { required: true, content: contentMap(contents(input.body)) }
  return detail as DocumentDecoration
}

/** The route option `{ detail }` of a group of routes under one tag: `const docs = docsTagged('cameras')`. */
export function docsTagged(tag: string): (input: Omit<RouteDocsInput, 'tags'>) => { detail: DocumentDecoration } {
  return (input) => ({ detail: routeDocs({ ...input, tags: [tag] }) })
}

const contents = (content: Content | Content[]) => (Array.isArray(content) ? content : [content])

function contentMap(list: Content[]): Record<string, { schema: TSchema }> {
  return Object.fromEntries(list.map((c) => [c.mediaType, { schema: c.schema }]))
}

function responseOf(list: Content[], status: number): { description: string; content: Record<string, { schema: TSchema }> } {
  const described = list.map((c) => c.description).filter((d) => d !== undefined)
  const fallback = status === 0 ? 'an error; the message is in `detail`' : status < 300 ? 'success' : 'refused'
  return { description: described.join('; ') || fallback, content: contentMap(list) }
}

function parametersOf(schema: TObject | undefined, where: 'query' | 'header'): Record<string, unknown>[] {
  if (!schema) return []
  const required = new Set(schema.required ?? [])
  return Object.entries(schema.properties).map(([name, property]) => ({
    name, in: where, required: required.has(name), schema: property,
    ...(property.description ? { description: property.description } : {}),
  }))
}
