// The page to try the model (GET /ui): templates/ui's HTML with its script and style inlined, and a
// Content-Security-Policy that allows exactly those two and requests to the server itself.
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {TEMPLATES_DIR} from '../paths.js'
import type {PlainResponse} from './responses.js'

/** mlserve's route for the page (mlflow's scoring server has no /ui); public, see docs/front-door.md. */
export const PAGE_ROUTE = '/ui'
/** `/ui/` redirects to `/ui`, query kept (under the prefix: the front door rewrites the Location), where the page's relative URLs work. */
export const PAGE_SLASH_ROUTE = `${PAGE_ROUTE}/`

const digest = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`

/** The page as served: the same bytes on every server (it holds nothing of the model; it reads it with the key typed in it). */
export function assemblePage(html: string, script: string, style: string): PlainResponse {
  // The hashes cover exactly the elements' text, so the template's placeholders and their whitespace go.
  const body = html
    .replace(/<script>[\s\S]*?<\/script>/, () => `<script>${script}</script>`)
    .replace(/<style>[\s\S]*?<\/style>/, () => `<style>${style}</style>`)
  const csp = [
    "default-src 'none'",
    `script-src ${digest(script)}`,
    `style-src ${digest(style)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')
  return {
    status: 200,
    contentType: 'text/html; charset=utf-8',
    body,
    headers: {
      'content-security-policy': csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    },
  }
}

let page: Promise<PlainResponse> | undefined

/** Reads templates/ui once per process. */
export async function readPage(): Promise<PlainResponse> {
  page ??= (async () => {
    const dir = path.join(TEMPLATES_DIR, 'ui')
    const [html, script, style] = await Promise.all(
      ['page.html', 'page.js', 'page.css'].map(async (name) => readFile(path.join(dir, name), 'utf8')),
    )
    return assemblePage(html!, script!, style!)
  })()
  return page
}

/** The page's routes, for the operational routes (answered in every state: it shows "not ready yet" itself). */
export async function pageRoutes(): Promise<Record<string, (search: string) => PlainResponse>> {
  const answer = await readPage()
  const toPage = (search: string): PlainResponse => ({
    status: 308,
    contentType: 'text/plain; charset=utf-8',
    body: '',
    headers: {location: `${PAGE_ROUTE}${search}`},
  })
  return {[PAGE_ROUTE]: () => answer, [PAGE_SLASH_ROUTE]: toPage}
}
