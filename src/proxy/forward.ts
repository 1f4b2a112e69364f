// The fast path: streams a raw Node request to the scorer through an undici pool and the answer back.
import type {IncomingHttpHeaders, IncomingMessage, ServerResponse} from 'node:http'

import type {Dispatcher} from 'undici'

import {TIMEOUT_RESPONSE, sendPlain, upstreamFailedResponse} from './responses.js'

/**
 * Headers that describe one connection, not the message: never forwarded in either direction. `expect`
 * is answered by Node's server itself (100 Continue), and undici refuses to send it.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'expect',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
])

/** Request headers in Node's flat rawHeaders form, without hop-by-hop ones (original case kept). */
export function forwardedRequestHeaders(rawHeaders: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1]!)
  }

  return out
}

/** Response headers from undici, without hop-by-hop ones. */
export function forwardedResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
  }

  return out
}

const hasBody = (req: IncomingMessage): boolean =>
  req.headers['transfer-encoding'] !== undefined ||
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')

export interface ForwardOptions {
  /** After this long without a response head, the client gets MLflow's 504. 0 disables. */
  readonly timeoutMs: number
}

export type ForwardOutcome = 'ok' | 'timeout' | 'upstream-error' | 'client-closed'

/**
 * Forwards one request. Never rejects: every failure becomes a response (504, 502) or, when the
 * response has already started, a destroyed connection. Resolves when the exchange is over.
 */
export function forward(
  upstream: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  options: ForwardOptions,
): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    const abort = new AbortController()
    let settled = false
    const finish = (outcome: ForwardOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      res.off('close', onClientClose)
      resolve(outcome)
    }

    const onClientClose = () => {
      if (!res.writableFinished) {
        abort.abort()
        finish('client-closed')
      }
    }

    res.on('close', onClientClose)
    const timer =
      options.timeoutMs > 0
        ? setTimeout(() => {
            abort.abort()
            if (res.headersSent) res.destroy()
            else sendPlain(res, TIMEOUT_RESPONSE)
            finish('timeout')
          }, options.timeoutMs)
        : undefined

    upstream.stream(
      {
        path: req.url ?? '/',
        method: req.method as Dispatcher.HttpMethod,
        headers: forwardedRequestHeaders(req.rawHeaders),
        body: hasBody(req) ? req : null,
        signal: abort.signal,
      },
      ({statusCode, headers}) => {
        res.writeHead(statusCode, forwardedResponseHeaders(headers))
        return res
      },
      (error) => {
        if (settled) return
        if (error) {
          if (res.headersSent) res.destroy()
          else sendPlain(res, upstreamFailedResponse(error.message))
          finish('upstream-error')
        } else {
          finish('ok')
        }
      },
    )
  })
}
