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
  /**
   * The deadline for the whole exchange: without a response head by then the client gets MLflow's 504,
   * with one its connection is destroyed. 0 disables (undici's own headersTimeout then applies).
   */
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
    new Exchange(upstream, req, res, resolve).start(options.timeoutMs)
  })
}

/** Why the proxy cancels an upstream request itself; seen only by undici. */
const CANCELLED = new Error('The proxy cancelled the request to the scorer.')

/**
 * One forwarded request, from the client's request to the end of the scorer's answer. It is the undici
 * dispatch handler, so the client going away and the timeout cancel the upstream request through the
 * controller undici hands it, with no AbortSignal. The deadline covers the whole exchange: a 504 when
 * no response head came in time, a destroyed connection when the body was still streaming.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private settled = false
  private timer: NodeJS.Timeout | undefined
  private request: Dispatcher.DispatchOptions | undefined
  /** The current attempt's controller: undefined until the request is on a connection. */
  private controller: Dispatcher.DispatchController | undefined
  private replaysLeft = 0

  constructor(
    private readonly upstream: Dispatcher,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly resolve: (outcome: ForwardOutcome) => void,
  ) {}

  start(timeoutMs: number): void {
    // 'close' also comes after a complete response: that is when the exchange is over.
    this.res.on('close', this.onClose)
    if (timeoutMs > 0) this.timer = setTimeout(this.onTimeout, timeoutMs)
    readBody(this.req).then(
      (body) => {
        this.request = {
          path: this.req.url ?? '/',
          method: this.req.method as Dispatcher.HttpMethod,
          headers: forwardedRequestHeaders(this.req.rawHeaders),
          body,
          // Our own deadline decides, not the pool's (300 s by default, less than a long --timeout).
          headersTimeout: timeoutMs > 0 ? 0 : undefined,
        }
        this.replaysLeft = body === null || Buffer.isBuffer(body) ? 1 : 0
        this.send()
      },
      () => this.finish('client-closed'),
    )
  }

  private send(): void {
    if (!this.settled) this.upstream.dispatch(this.request!, this)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.settled) controller.abort(CANCELLED)
    else this.controller = controller
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return
    this.res.writeHead(statusCode, forwardedResponseHeaders(headers))
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.res.write(chunk) || controller.paused) return
    controller.pause()
    this.res.once('drain', () => controller.resume())
  }

  onResponseEnd(): void {
    this.res.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.settled) return
    if (this.replaysLeft > 0 && !this.res.headersSent && isStaleConnection(error)) {
      this.replaysLeft--
      // Once undici is done tearing down the connection that failed.
      queueMicrotask(() => this.send())
      return
    }

    if (this.res.headersSent) this.res.destroy()
    else sendPlain(this.res, upstreamFailedResponse(error.message))
    this.finish('upstream-error')
  }

  /** The client's response closed: after the whole answer went out, or because the client went away. */
  private readonly onClose = () => {
    if (this.res.writableFinished) this.finish('ok')
    else this.cancel('client-closed')
  }

  private readonly onTimeout = () => {
    this.cancel('timeout')
    if (this.res.headersSent) this.res.destroy()
    else sendPlain(this.res, TIMEOUT_RESPONSE)
  }

  /**
   * Settles first, so the error undici reports for the cancelled request is ignored. A request still
   * queued in the pool has no controller yet: onRequestStart cancels it.
   */
  private cancel(outcome: ForwardOutcome): void {
    this.finish(outcome)
    this.controller?.abort(CANCELLED)
  }

  /** The first outcome wins. */
  private finish(outcome: ForwardOutcome): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.timer)
    this.resolve(outcome)
  }
}
