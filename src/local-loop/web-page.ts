import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Type } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import { EMBEDDED_ASSETS } from '../foundation/embedded-assets.ts'
import { htmlContent, routeDocs } from '../node/route-docs.ts'
import { notFound } from './loop-errors.ts'

/**
 * The local Loop's web page: plain HTML, CSS and ES modules from src/local-loop/web-page/, served as they are (no
 * build step, no CDN) and embedded in the single binary (scripts/build-binary.ts embeds LOOP_PAGE_FILES).
 */
export const LOOP_PAGE_FILES = [
  'index.html', 'style.css', 'app.js', 'api.js', 'image-canvas.js', 'images-view.js', 'image-view.js', 'models-view.js', 'trainings-view.js',
  'nodes-view.js', 'charts.js',
] as const

/** Only the loop's own files run and load; inline style attributes (bar widths, colour swatches) are allowed. */
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8', css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8',
}

function pagePath(name: string): string {
  return EMBEDDED_ASSETS?.loopPage.files[name]?.path ?? fileURLToPath(new URL(`./web-page/${name}`, import.meta.url))
}

async function pageFile(name: string): Promise<Response> {
  if (!(LOOP_PAGE_FILES as readonly string[]).includes(name)) throw notFound(`the web page has no file ${name.slice(0, 100)}`)
  const bytes = await readFile(pagePath(name))
  return new Response(bytes, {
    headers: { 'content-type': CONTENT_TYPES[name.split('.').pop()!]!, 'cache-control': 'no-cache', 'content-security-policy': CONTENT_SECURITY_POLICY },
  })
}

export function createWebPage() {
  return new Elysia()
    .get('/', () => pageFile('index.html'), { detail: routeDocs({ summary: 'The local Loop\'s web page', tags: ['web page'], responses: { 200: htmlContent('the page') } }) })
    .get('/web/:file', ({ params }) => pageFile(params.file), {
      detail: routeDocs({
        summary: 'A file of the web page (HTML, CSS, JavaScript module)', tags: ['web page'],
        responses: { 200: ['text/html', 'text/css', 'text/javascript'].map((mediaType) => ({ mediaType, schema: Type.String(), description: 'the file' })) },
      }),
    })
}
