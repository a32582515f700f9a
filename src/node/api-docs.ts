import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Type } from '@sinclair/typebox'
import type { Elysia } from 'elysia'
import packageJson from '../../package.json' with { type: 'json' }
import { EMBEDDED_ASSETS } from '../foundation/embedded-assets.ts'
import { openApiDocument, type DocumentInfo, type OpenApiDocument } from './openapi-document.ts'
import { htmlContent, jsonContent, routeDocs } from './route-docs.ts'

const docsPagePath = EMBEDDED_ASSETS?.apiDocsPage.path ?? fileURLToPath(new URL('./api-docs-page/index.html', import.meta.url))

/** The shape of `/openapi.json` as far as a client relies on it. */
const OpenApiDocumentSchema = Type.Object({
  openapi: Type.String(),
  info: Type.Object({ title: Type.String(), version: Type.String(), description: Type.Optional(Type.String()) }),
  paths: Type.Record(Type.String(), Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown()))),
  components: Type.Object({ schemas: Type.Record(Type.String(), Type.Unknown()) }),
}, { $id: 'OpenApiDocument', description: 'OpenAPI 3.1' })

/**
 * `/openapi.json`, built from the app's route table when asked (so routes added later are in it), and
 * `/docs`, a page that renders it: one HTML file from the package (embedded in the binary), no CDN.
 */
export function registerApiDocs(app: Elysia<any, any, any, any, any, any, any>, about: Omit<DocumentInfo, 'version'>): void {
  const info: DocumentInfo = { ...about, version: packageJson.version }
  // built on the first request after a route was added (a few ms for the local loop's 40 routes), then reused
  let built: { routes: number; document: OpenApiDocument } | undefined
  const document = () => {
    if (built?.routes !== app.routes.length) built = { routes: app.routes.length, document: openApiDocument(app.routes, info) }
    return built.document
  }
  app
    .get('/openapi.json', document, {
      detail: routeDocs({ summary: 'This API as an OpenAPI 3.1 document', tags: ['docs'], responses: { 200: jsonContent(OpenApiDocumentSchema) } }),
    })
    .get('/docs', async () => new Response(await readFile(docsPagePath), { headers: { 'content-type': 'text/html; charset=utf-8' } }), {
      detail: routeDocs({ summary: 'This API, readable: a page rendering /openapi.json (works offline)', tags: ['docs'], responses: { 200: htmlContent('the API documentation page') } }),
    })
}
