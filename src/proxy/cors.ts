// CORS (--cors-origin): the Access-Control-* headers on answers to allowed origins, and preflights answered by mlserve.
import type {IncomingMessage, ServerResponse} from 'node:http'

/** Request headers a browser may send on any route (the API key's included). */
const ALLOWED_HEADERS = 'Authorization, Content-Type, X-API-Key, X-Request-ID'
const ALLOWED_METHODS = 'GET, POST, OPTIONS'
/** Response headers a page may read besides the CORS-safelisted ones. */
const EXPOSED_HEADERS = 'X-Request-ID, X-MLServe-Model-Version, Retry-After, WWW-Authenticate'
/** How long a browser may cache a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE = '600'

/** Whether an origin is allowed: listed exactly, or `*` listed. */
export const allowsOrigin = (origins: ReadonlySet<string>, origin: string): boolean => origins.has('*') || origins.has(origin)

/**
 * Sets the CORS headers for the request's Origin when it is allowed, and answers a preflight (OPTIONS
 * with Access-Control-Request-Method) itself with 204. Returns true when the request is answered.
 * A request without Origin, or from an origin not allowed, gets no CORS header (the browser refuses it).
 */
export function applyCors(origins: ReadonlySet<string>, req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin
  const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined
  if (!origin || !allowsOrigin(origins, origin)) {
    if (!preflight) return false
    // A preflight from an origin not allowed: answered without the headers, so the browser stops there.
    req.resume()
    res.writeHead(204, {vary: 'Origin'}).end()
    return true
  }

  res.setHeader('access-control-allow-origin', origins.has('*') ? '*' : origin)
  if (!origins.has('*')) res.setHeader('vary', 'Origin')
  if (!preflight) {
    res.setHeader('access-control-expose-headers', EXPOSED_HEADERS)
    return false
  }

  req.resume()
  res.writeHead(204, {
    'access-control-allow-methods': ALLOWED_METHODS,
    'access-control-allow-headers': ALLOWED_HEADERS,
    'access-control-max-age': PREFLIGHT_MAX_AGE,
  })
  res.end()
  return true
}
