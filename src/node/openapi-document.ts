/**
 * The OpenAPI 3.1 document of an Elysia app, built from its route table: each route's `detail` (see
 * route-docs.ts) gives its summary, parameters, request body and answers; path parameters come from the
 * path. Schemas with a TypeBox `$id` become `components.schemas` and are referenced, so a shape used by
 * many routes is written once. Pure: the caller passes `app.routes`.
 */

export interface RouteEntry {
  method: string
  path: string
  hooks?: { detail?: unknown }
}

export interface DocumentInfo {
  title: string
  version: string
  description?: string
}

export interface OpenApiDocument {
  openapi: string
  info: DocumentInfo
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, unknown> }
}

export interface Operation {
  operationId: string
  summary?: string
  parameters?: Record<string, unknown>[]
  requestBody?: unknown
  responses: Record<string, unknown>
  [key: string]: unknown
}

/** Elysia's `all` (the socket.io engine: long polling, and the WebSocket upgrade) is documented as GET and POST. */
const METHODS_OF_ALL = ['get', 'post']

export function openApiDocument(routes: readonly RouteEntry[], info: DocumentInfo): OpenApiDocument {
  const schemas = new SchemaCollector()
  const paths: OpenApiDocument['paths'] = {}
  for (const route of routes) {
    const { path, parameterNames } = openApiPath(route.path)
    const methods = route.method === 'ALL' ? METHODS_OF_ALL : [route.method.toLowerCase()]
    for (const method of methods) {
      const detail = (route.hooks?.detail ?? {}) as Record<string, unknown>
      const { hide: _hide, ...described } = detail
      const operation = schemas.hoist(described) as Operation
      operation.operationId = operationId(method, route.path)
      operation.responses ??= { default: { description: 'not documented' } }
      const pathParameters = parameterNames.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }))
      const parameters = [...pathParameters, ...((operation.parameters as Record<string, unknown>[] | undefined) ?? [])]
      if (parameters.length > 0) operation.parameters = parameters
      ;(paths[path] ??= {})[method] = operation
    }
  }
  return { openapi: '3.1.0', info, paths, components: { schemas: schemas.components } }
}

/** `/api/:org/projects/:project` → `/api/{org}/projects/{project}`; a trailing `*` becomes `{path}`. */
export function openApiPath(elysiaPath: string): { path: string; parameterNames: string[] } {
  const parameterNames: string[] = []
  const segments = elysiaPath.split('/').map((segment) => {
    if (segment.startsWith(':')) {
      const name = segment.slice(1).replace(/\?$/, '')
      parameterNames.push(name)
      return `{${name}}`
    }
    if (segment === '*') {
      parameterNames.push('path')
      return '{path}'
    }
    return segment
  })
  return { path: segments.join('/'), parameterNames }
}

function operationId(method: string, path: string): string {
  const words = path.split(/[^A-Za-z0-9]+/).filter((w) => w !== '')
  return [method, ...words].join('_')
}

/**
 * Copies a route's detail as plain JSON (TypeBox's symbol keys dropped) and moves every schema with an
 * `$id` into `components`; a second, different schema under the same `$id` stays inline (without the `$id`).
 */
class SchemaCollector {
  readonly components: Record<string, unknown> = {}
  private readonly texts = new Map<string, string>()

  hoist(value: unknown): unknown {
    return this.walk(JSON.parse(JSON.stringify(value ?? {})))
  }

  private walk(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.walk(item))
    if (value === null || typeof value !== 'object') return value
    const { $id, ...rest } = value as Record<string, unknown>
    const walked = Object.fromEntries(Object.entries(rest).map(([key, item]) => [key, this.walk(item)]))
    // TypeBox writes a tuple the draft-07 way (`items: [...]`); OpenAPI 3.1's JSON Schema 2020-12 says `prefixItems`
    if (Array.isArray(walked.items)) {
      walked.prefixItems = walked.items
      walked.items = walked.additionalItems ?? true
      delete walked.additionalItems
    }
    if (typeof $id !== 'string') return walked
    const name = $id.replace(/[^A-Za-z0-9._-]/g, '_')
    const text = JSON.stringify(walked)
    const known = this.texts.get(name)
    if (known === undefined) {
      this.texts.set(name, text)
      this.components[name] = walked
    } else if (known !== text) {
      return walked
    }
    return { $ref: `#/components/schemas/${name}` }
  }
}
