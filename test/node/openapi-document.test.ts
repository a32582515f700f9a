/** The OpenAPI document built from a route table (pure): paths, parameters, shared schemas, undocumented routes. */
import { describe, expect, test } from 'bun:test'
import { Type } from '@sinclair/typebox'
import { openApiDocument, openApiPath } from '../../src/node/openapi-document.ts'
import { jsonContent, routeDocs } from '../../src/node/route-docs.ts'

const Thing = Type.Object({ name: Type.String() }, { $id: 'Thing' })
const info = { title: 'test', version: '1.0.0' }

describe('openApiDocument', () => {
  test('Elysia paths become OpenAPI paths with their path parameters declared', () => {
    expect(openApiPath('/api/:org/projects/:project')).toEqual({ path: '/api/{org}/projects/{project}', parameterNames: ['org', 'project'] })
    expect(openApiPath('/ws/socket.io/*')).toEqual({ path: '/ws/socket.io/{path}', parameterNames: ['path'] })
    const document = openApiDocument([{ method: 'GET', path: '/things/:id', hooks: { detail: routeDocs({ summary: 's', tags: ['t'], responses: { 200: jsonContent(Thing) } }) } }], info)
    expect(document.paths['/things/{id}']!.get!.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }])
  })

  test('a schema with an $id is written once under components and referenced; a different one with the same $id stays inline', () => {
    const Other = Type.Object({ other: Type.Number() }, { $id: 'Thing' })
    const document = openApiDocument([
      { method: 'GET', path: '/a', hooks: { detail: routeDocs({ summary: 'a', tags: [], responses: { 200: jsonContent(Thing) } }) } },
      { method: 'POST', path: '/b', hooks: { detail: routeDocs({ summary: 'b', tags: [], body: jsonContent(Thing), responses: { 200: jsonContent(Other) } }) } },
    ], info)
    expect(document.components.schemas.Thing).toEqual({ type: 'object', properties: { name: { type: 'string' } }, required: ['name'] })
    const b = document.paths['/b']!.post!
    expect(b.requestBody).toEqual({ required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } })
    expect((b.responses['200'] as { content: Record<string, { schema: unknown }> }).content['application/json']!.schema).toEqual({ type: 'object', properties: { other: { type: 'number' } }, required: ['other'] })
  })

  test('ALL is documented as GET and POST; a route without docs is there, answering only "not documented"', () => {
    const document = openApiDocument([{ method: 'ALL', path: '/engine/*' }, { method: 'GET', path: '/bare' }], info)
    expect(Object.keys(document.paths['/engine/{path}']!)).toEqual(['get', 'post'])
    expect(document.paths['/bare']!.get!.responses).toEqual({ default: { description: 'not documented' } })
    expect(new Set(Object.values(document.paths).flatMap((p) => Object.values(p).map((o) => o.operationId))).size).toBe(3)
  })

  test('a tuple is written as prefixItems (JSON Schema 2020-12)', () => {
    const document = openApiDocument([{ method: 'GET', path: '/pair', hooks: { detail: routeDocs({ summary: 'p', tags: [], responses: { 200: jsonContent(Type.Tuple([Type.Literal(200), Type.Literal('OK')])) } }) } }], info)
    const schema = (document.paths['/pair']!.get!.responses['200'] as { content: Record<string, { schema: Record<string, unknown> }> }).content['application/json']!.schema
    expect(schema.prefixItems).toEqual([{ const: 200, type: 'number' }, { const: 'OK', type: 'string' }])
    expect(schema.items).toBe(false)
  })
})
