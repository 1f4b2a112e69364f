// The front door: a path prefix, CORS and API keys around the proxy's handler, TLS for its server; all off by default.
import type {IncomingMessage, ServerResponse} from 'node:http'
import type {SecureContextOptions} from 'node:tls'

import type {FrontDoorOptions} from '../config.js'
import {MlserveError, messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import {Keyring, PUBLIC_ROUTES, presentedToken, readTokenFile, unauthenticatedResponse} from './auth.js'
import {applyCors} from './cors.js'
import {sendPlain} from './responses.js'
import type {RequestHandler} from './server.js'
import {readTls, tlsFilesOf, type TlsFiles} from './tls.js'
import {PAGE_ROUTE, PAGE_SLASH_ROUTE} from './try-page.js'

/** A server whose certificates can be swapped while it runs (an https.Server). */
export interface SecureServer {
  setSecureContext(options: SecureContextOptions): void
}

/** The checked front door: what wraps the handler, the TLS options of the server, and what SIGHUP re-reads. */
export interface FrontDoor {
  /** For https.createServer (undefined: plain HTTP). */
  readonly tls?: SecureContextOptions & {requestCert?: boolean; rejectUnauthorized?: boolean}
  /** The handler behind the prefix, CORS and the key check. */
  guard(handler: RequestHandler): RequestHandler
  /** The path prefix every route is under ('' for none). */
  readonly prefix: string
  /** Reads the token file and the TLS files again (SIGHUP); bad ones are logged and the old ones kept. */
  reload(server: SecureServer, log: Logger): Promise<void>
}

/** FastAPI's answer for a path it has no route for: what mlflow's server says outside the prefix. */
const NOT_FOUND = {status: 404, contentType: 'application/json', body: '{"detail":"Not Found"}'}

/** --static-prefix as a path without a trailing slash ('' for none, or for `/`). */
export function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined) return ''
  if (!/^\/[\w\-./~]*$/.test(prefix) || /(^|\/)\.\.?(\/|$)/.test(prefix)) {
    throw new MlserveError('INVALID_ARGUMENT', `--static-prefix ${JSON.stringify(prefix)} is not a path prefix.`, {
      suggestions: ['Give a path starting with "/" of letters, digits, "-", "_", "." and "/", e.g. --static-prefix /models/iris.'],
    })
  }

  return prefix.replace(/\/+$/, '')
}

/** The request target without the prefix, or undefined when it is outside it. */
export function stripPrefix(url: string, prefix: string): string | undefined {
  if (!url.startsWith(prefix)) return undefined
  const rest = url.slice(prefix.length)
  if (rest === '') return '/'
  if (rest.startsWith('/')) return rest
  return rest.startsWith('?') ? `/${rest}` : undefined
}

/** Removes the key's headers from what is forwarded: the scorer never sees a token. */
function dropKeyHeaders(req: IncomingMessage): void {
  const raw = req.rawHeaders
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    const name = raw[i]!.toLowerCase()
    if (name === 'authorization' || name === 'x-api-key') raw.splice(i, 2)
  }
}

/**
 * The scorer's redirects (POST /invocations/ gets 307 to /invocations) name the URL it saw: plain http and
 * no prefix. Rewrites a Location on the client's own host to https (over TLS) and under the prefix.
 */
function fixRedirects(req: IncomingMessage, res: ServerResponse, https: boolean, prefix: string): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse
  res.writeHead = ((status: number, ...rest: unknown[]) => {
    const headers = rest.find((arg): arg is Record<string, unknown> => typeof arg === 'object' && arg !== null && !Array.isArray(arg))
    const location = headers?.location
    if (status >= 300 && status < 400 && typeof location === 'string') {
      try {
        const url = new URL(location, `http://${req.headers.host ?? 'localhost'}`)
        if (url.host === req.headers.host) {
          if (https) url.protocol = 'https:'
          if (prefix && stripPrefix(url.pathname, prefix) === undefined) url.pathname = `${prefix}${url.pathname}`
          headers!.location = location.startsWith('/') ? `${url.pathname}${url.search}` : url.href
        }
      } catch {}
    }

    return writeHead(status, ...rest)
  }) as typeof res.writeHead
}

/** Checks every front-door option (files read, keys parsed, certificates matched) before anything else starts. */
export async function prepareFrontDoor(options: FrontDoorOptions | undefined): Promise<FrontDoor | undefined> {
  if (!options) return undefined
  const prefix = normalizePrefix(options.staticPrefix)
  const origins = new Set(options.corsOrigins ?? [])
  const tlsFiles: TlsFiles | undefined = tlsFilesOf(options)
  const readKeys = async () => [...(options.authTokens ?? []), ...(options.authTokenFile ? await readTokenFile(options.authTokenFile) : [])]
  const keys = options.authTokenFile || options.authTokens ? new Keyring(await readKeys()) : undefined
  const tls = tlsFiles && (await readTls(tlsFiles))
  if (!prefix && origins.size === 0 && !keys && !tls) return undefined
  // The page to try the model is public: its bytes are the same on every server, and it reads the model with the key typed in it.
  const exempt = new Set([...PUBLIC_ROUTES, PAGE_ROUTE, PAGE_SLASH_ROUTE, ...(options.metricsPublic ? ['/metrics'] : [])])

  const mtls = tlsFiles?.clientCa ? {requestCert: true, rejectUnauthorized: true} : {}
  return {
    tls: tls && {...tls, ...mtls},
    prefix,
    guard: (handler) => (req: IncomingMessage, res: ServerResponse, record) => {
      if (prefix) {
        const inner = stripPrefix(req.url ?? '/', prefix)
        if (inner === undefined) {
          req.resume()
          sendPlain(res, NOT_FOUND)
          return
        }

        req.url = inner
      }

      if (tls || prefix) fixRedirects(req, res, Boolean(tls), prefix)
      if (origins.size > 0 && applyCors(origins, req, res)) return
      if (keys) {
        const token = presentedToken(req)
        const {accepted, id} = keys.check(token)
        if (id !== undefined) record.key = id
        const path = (req.url ?? '/').split('?', 1)[0]!
        if (!exempt.has(path) && !accepted) {
          req.resume()
          const response = unauthenticatedResponse(token !== undefined)
          record.refusal = response.refusal
          sendPlain(res, response)
          return
        }

        dropKeyHeaders(req)
      }

      handler(req, res, record)
    },
    async reload(server, log) {
      try {
        if (keys && options.authTokenFile) {
          keys.replace(await readKeys())
          log.info(`SIGHUP: re-read --auth-token-file (${keys.size} key(s))`)
        }

        if (tlsFiles) {
          server.setSecureContext({...(await readTls(tlsFiles)), ...mtls})
          log.info('SIGHUP: re-read the TLS certificate and key (open connections keep theirs)')
        }
      } catch (error) {
        log.warn(`SIGHUP: kept the previous keys and certificate: ${messageOf(error)}`)
      }
    },
  }
}
