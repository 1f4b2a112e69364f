// The request a scorer gets for a client's: the client's headers minus hop-by-hop ones, its request ID,
// X-Forwarded-For/-Proto/-Host as a reverse proxy sets them, the body's length, the rewritten path.
import type {IncomingMessage} from 'node:http'

import type {Dispatcher} from 'undici'

import type {RequestBody} from './body.js'
import {forwardedRequestHeaders} from './connection-policy.js'

export interface ScorerRequestOptions {
  /** The deadline of the exchange (0: none): when set, it decides, not the pool's headers timeout. */
  readonly timeoutMs: number
  /** Paths sent to another path of the scorer (e.g. /health to /ping for a scorer without /health). */
  readonly rewrites?: ReadonlyMap<string, string>
}

/** The dispatch options for `req`, its body read whole already (each attempt sets its own view of it). */
export function scorerRequest(
  req: IncomingMessage,
  requestId: string,
  body: RequestBody,
  options: ScorerRequestOptions,
): Dispatcher.DispatchOptions {
  const url = req.url ?? '/'
  const headers = forwardedRequestHeaders(req.rawHeaders)
  setHeader(headers, 'x-request-id', requestId)
  withForwardedFor(headers, req)
  // A chunked body was read whole: it goes on with its length.
  if (body.size > 0 && req.headers['content-length'] === undefined) headers.push('content-length', String(body.size))
  return {
    path: options.rewrites?.get(url) ?? url,
    method: req.method as Dispatcher.HttpMethod,
    headers,
    body: null,
    // Our own deadline decides, not the pool's (300 s by default, less than a long --timeout).
    headersTimeout: options.timeoutMs > 0 ? 0 : undefined,
  }
}

/** Sets a header in a flat header list, replacing any the client sent under that name. */
function setHeader(headers: string[], name: string, value: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === name.length && headers[i]!.toLowerCase() === name) {
      headers[i + 1] = value
      return
    }
  }

  headers.push(name, value)
}

/** X-Forwarded-For (the client's address appended), -Proto and -Host, as a reverse proxy sets them. */
function withForwardedFor(headers: string[], req: IncomingMessage): void {
  const remote = req.socket.remoteAddress
  const before = req.headers['x-forwarded-for']
  if (remote) setHeader(headers, 'x-forwarded-for', before ? `${String(before)}, ${remote}` : remote)
  setHeader(headers, 'x-forwarded-proto', 'http')
  if (req.headers.host !== undefined) setHeader(headers, 'x-forwarded-host', req.headers.host)
}
