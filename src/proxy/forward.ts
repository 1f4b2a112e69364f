// The fast path: streams a raw Node request to the scorer through an undici pool and the answer back.
import type {IncomingHttpHeaders, IncomingMessage, ServerResponse} from 'node:http'

import {Transform, type Readable} from 'node:stream'

import type {Dispatcher} from 'undici'

import {TIMEOUT_RESPONSE, bodyTooLargeResponse, sendPlain, upstreamFailedResponse, type PlainResponse} from './responses.js'

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

/** Bodies up to this size are read whole first, so a failed attempt can be replayed; bigger ones stream. */
export const REPLAYABLE_BODY_LIMIT = 16 * 1024 * 1024

/** The body to send upstream: none, a whole Buffer (replayable), or a stream (not). */
export type UpstreamBody = null | Buffer | Readable

/** Thrown (or streamed) when a request body is bigger than --max-body-size. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`The request body is larger than ${limit} bytes.`)
  }
}

/**
 * Reads the request body as far as needed: a declared length over `maxBytes` is refused before a byte
 * is read; bodies up to REPLAYABLE_BODY_LIMIT are read whole; bigger or undeclared ones stream on, counted,
 * and the stream fails with BodyTooLarge once it passes `maxBytes`.
 */
export function readBody(req: IncomingMessage, maxBytes = Number.POSITIVE_INFINITY, replayable = REPLAYABLE_BODY_LIMIT): Promise<UpstreamBody> {
  const length = req.headers['content-length']
  if (length === undefined && req.headers['transfer-encoding'] === undefined) return Promise.resolve(null)
  if (length === '0') return Promise.resolve(null)
  if (length !== undefined && Number(length) > maxBytes) return Promise.reject(new BodyTooLarge(maxBytes))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        detach()
        reject(new BodyTooLarge(maxBytes))
        return
      }

      chunks.push(chunk)
      if (size > replayable) {
        // Too big to hold: stream the rest, still counted.
        detach()
        req.pause()
        resolve(countedStream(req, chunks, size, maxBytes))
      }
    }

    const onEnd = () => {
      detach()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
    }

    const onError = (error: Error) => {
      detach()
      reject(error)
    }

    const detach = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
    }

    req.on('data', onData)
    req.once('end', onEnd)
    req.once('error', onError)
  })
}

/** The chunks read so far, then the rest of `req`, failing with BodyTooLarge past `maxBytes`. */
function countedStream(req: IncomingMessage, head: Buffer[], size: number, maxBytes: number): Readable {
  let total = size
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length
      callback(total > maxBytes ? new BodyTooLarge(maxBytes) : null, chunk)
    },
  })
  for (const chunk of head) counted.push(chunk)
  req.once('error', (error) => counted.destroy(error))
  req.pipe(counted)
  return counted
}

/**
 * A connection the scorer closed before answering: uvicorn closes a kept-alive connection after its own
 * 500 without saying so, and one left idle too long; a fresh connection gets an answer.
 */
const STALE_CONNECTION = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
const isStaleConnection = (error: Error): boolean => STALE_CONNECTION.has((error as NodeJS.ErrnoException).code ?? '')

/** One scorer, lent to one request by acquire() and given back by release(). */
export interface Lease {
  readonly dispatcher: Dispatcher
  /** The scorer's slot, for access logs. */
  readonly slot: number
}

/**
 * Where requests go: acquire() lends a scorer now, later (queued), or refuses with the response to send
 * (503 when none is ready or the queue is full). Every lease comes back through release() exactly once.
 */
export interface Upstreams {
  acquire(): Lease | PlainResponse | Promise<Lease | PlainResponse>
  /** Gives the lease back; a request that was queued and is no longer wanted is withdrawn with `cancel`. */
  release(lease: Lease, outcome: ForwardOutcome): void
  /** Withdraws a pending acquire() whose request went away or timed out (a no-op once it resolved). */
  cancel?(pending: Promise<Lease | PlainResponse>): void
}

/** Upstreams that is one dispatcher (or none: every request refused with `refusal`). */
export function singleUpstream(dispatcher: Dispatcher | undefined, refusal?: PlainResponse): Upstreams {
  const lease: Lease | undefined = dispatcher && {dispatcher, slot: 0}
  return {
    acquire: () => lease ?? refusal ?? upstreamFailedResponse('no scorer is running'),
    release() {},
  }
}

const isLease = (value: Lease | PlainResponse): value is Lease => 'dispatcher' in value

export interface ForwardOptions {
  /**
   * The deadline for the whole exchange, queueing included: without a response head by then the client
   * gets MLflow's 504, with one its connection is destroyed. 0 disables.
   */
  readonly timeoutMs: number
  /** Request bodies above this many bytes get a 413 envelope. */
  readonly maxBodyBytes?: number
  /** Paths sent to another path of the scorer (e.g. /health to /ping for a scorer without /health). */
  readonly rewrites?: ReadonlyMap<string, string>
}

/**
 * How an exchange ended. 'timeout' also covers the scorer's own 504: either way its work goes on past
 * the deadline. 'refused' is a request the proxy answered itself (413, 503 queue full or no scorer).
 */
export type ForwardOutcome = 'ok' | 'timeout' | 'upstream-error' | 'client-closed' | 'refused'

/** What the exchange learned, for access logs and metrics: read by ProxyServer when the response closes. */
export interface ExchangeRecord {
  outcome?: ForwardOutcome
  slot?: number
  /** For 'refused': why (PlainResponse.refusal). */
  refusal?: string
}

/** The record of each response the fast path handled. */
export const exchangeRecords = new WeakMap<ServerResponse, ExchangeRecord>()

/**
 * Forwards one request. Never rejects: every failure becomes a response (504, 502, 413, 503) or, when
 * the response has already started, a destroyed connection. Resolves when the exchange is over.
 */
export function forward(
  upstreams: Upstreams,
  req: IncomingMessage,
  res: ServerResponse,
  options: ForwardOptions,
): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    new Exchange(upstreams, req, res, options, resolve).start()
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
  private lease: Lease | undefined
  private pending: Promise<Lease | PlainResponse> | undefined
  private scorerTimedOut = false
  private bodyTooLarge = false
  private readonly record: ExchangeRecord = {}

  constructor(
    private readonly upstreams: Upstreams,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly options: ForwardOptions,
    private readonly resolve: (outcome: ForwardOutcome) => void,
  ) {
    exchangeRecords.set(res, this.record)
  }

  start(): void {
    const {timeoutMs} = this.options
    // 'close' also comes after a complete response: that is when the exchange is over.
    this.res.on('close', this.onClose)
    if (timeoutMs > 0) this.timer = setTimeout(this.onTimeout, timeoutMs)
    readBody(this.req, this.options.maxBodyBytes).then(
      (body) => {
        if (this.settled) return
        const url = this.req.url ?? '/'
        const rewritten = this.options.rewrites?.get(url)
        const headers = forwardedRequestHeaders(this.req.rawHeaders)
        const requestId = this.res.getHeader('x-request-id')
        if (typeof requestId === 'string') withRequestId(headers, requestId)
        this.request = {
          path: rewritten ?? url,
          method: this.req.method as Dispatcher.HttpMethod,
          headers,
          body,
          // Our own deadline decides, not the pool's (300 s by default, less than a long --timeout).
          headersTimeout: timeoutMs > 0 ? 0 : undefined,
        }
        if (body !== null && !Buffer.isBuffer(body)) body.once('error', this.onBodyError)
        this.replaysLeft = body === null || Buffer.isBuffer(body) ? 1 : 0
        this.acquire()
      },
      (error: unknown) => {
        if (error instanceof BodyTooLarge) this.refuseBody(error.limit)
        else this.finish('client-closed')
      },
    )
  }

  private acquire(): void {
    const got = this.upstreams.acquire()
    if (!(got instanceof Promise)) {
      this.onAcquired(got)
      return
    }

    this.pending = got
    got.then((value) => {
      this.pending = undefined
      if (this.settled) {
        if (isLease(value)) this.upstreams.release(value, this.record.outcome ?? 'client-closed')
        return
      }

      this.onAcquired(value)
    })
  }

  private onAcquired(value: Lease | PlainResponse): void {
    if (!isLease(value)) {
      this.refuse(value)
      return
    }

    this.lease = value
    this.record.slot = value.slot
    this.send()
  }

  private refuse(response: PlainResponse): void {
    if (this.settled) return
    this.record.refusal = response.refusal
    sendPlain(this.res, response)
    this.finish('refused')
  }

  /**
   * 413. The rest of the body is read and dropped, so the client can finish sending and then read the
   * answer (closing on it makes most clients fail with a reset instead); --body-timeout bounds that.
   */
  private refuseBody(limit: number): void {
    this.req.resume()
    this.refuse(bodyTooLargeResponse(limit))
  }

  private send(): void {
    if (!this.settled) this.lease!.dispatcher.dispatch(this.request!, this)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.settled) controller.abort(CANCELLED)
    else this.controller = controller
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return
    // MLflow's own timeout middleware answered: its prediction thread runs on regardless.
    if (statusCode === 504) this.scorerTimedOut = true
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
    if (this.bodyTooLarge && !this.res.headersSent) {
      this.refuseBody(this.options.maxBodyBytes ?? 0)
      return
    }

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

  private readonly onBodyError = (error: Error) => {
    if (error instanceof BodyTooLarge) this.bodyTooLarge = true
  }

  /** The client's response closed: after the whole answer went out, or because the client went away. */
  private readonly onClose = () => {
    if (this.res.writableFinished) this.finish(this.scorerTimedOut ? 'timeout' : 'ok')
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

  /** The first outcome wins; the lease goes back (a pending acquire is withdrawn). */
  private finish(outcome: ForwardOutcome): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.timer)
    this.record.outcome = outcome
    if (this.lease) this.upstreams.release(this.lease, outcome)
    else if (this.pending) this.upstreams.cancel?.(this.pending)
    this.resolve(outcome)
  }
}

/** Sets x-request-id in a flat header list: the one the client sent is replaced by the validated one. */
function withRequestId(headers: string[], id: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === 12 && headers[i]!.toLowerCase() === 'x-request-id') {
      headers[i + 1] = id
      return
    }
  }

  headers.push('x-request-id', id)
}
