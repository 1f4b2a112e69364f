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

/** Bodies with a Content-Length up to this size are read whole first, so a failed attempt can be replayed. */
export const REPLAYABLE_BODY_LIMIT = 16 * 1024 * 1024

/** The body to send upstream: none, a whole Buffer (replayable), or the request stream itself (not). */
export type UpstreamBody = null | Buffer | IncomingMessage

export function readBody(req: IncomingMessage, limit = REPLAYABLE_BODY_LIMIT): Promise<UpstreamBody> {
  const length = req.headers['content-length']
  if (length === undefined) return Promise.resolve(req.headers['transfer-encoding'] === undefined ? null : req)
  if (length === '0') return Promise.resolve(null)
  if (Number(length) > limit) return Promise.resolve(req)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    req.once('error', reject)
  })
}

/**
 * A connection the scorer closed before answering: uvicorn closes a kept-alive connection after its own
 * 500 without saying so, and one left idle too long; a fresh connection gets an answer.
 */
const STALE_CONNECTION = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
const isStaleConnection = (error: Error): boolean => STALE_CONNECTION.has((error as NodeJS.ErrnoException).code ?? '')

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

    const send = (body: UpstreamBody, replays: number) => {
      upstream.stream(
        {
          path: req.url ?? '/',
          method: req.method as Dispatcher.HttpMethod,
          headers: forwardedRequestHeaders(req.rawHeaders),
          body,
          signal: abort.signal,
        },
        ({statusCode, headers}) => {
          res.writeHead(statusCode, forwardedResponseHeaders(headers))
          return res
        },
        (error) => {
          if (settled) return
          if (!error) return finish('ok')
          const replayable = body === null || Buffer.isBuffer(body)
          if (replays > 0 && replayable && !res.headersSent && isStaleConnection(error)) return send(body, replays - 1)
          if (res.headersSent) res.destroy()
          else sendPlain(res, upstreamFailedResponse(error.message))
          finish('upstream-error')
        },
      )
    }

    readBody(req).then(
      (body) => {
        if (!settled) send(body, 1)
      },
      () => finish('client-closed'),
    )
  })
}
