// One forwarded request once its body is read whole: a scorer from the lending, the request sent (replayed
// once on a stale connection), the answer streamed back under the deadline, the lease given back.
import type {IncomingHttpHeaders, IncomingMessage, ServerResponse} from 'node:http'

import type {Dispatcher} from 'undici'

import {MODEL_VERSION_HEADER, type ExchangeOutcome, type Lease, type Upstreams} from '../upstream.js'
import type {RequestBody} from './body.js'
import {ReplayOnce, forwardedResponseHeaders} from './connection-policy.js'
import {plainLending, type ExchangePort, type Lend, type Lending} from './lending.js'
import {scorerRequest} from './scorer-request.js'
import {STREAM_TIMEOUT_EVENTS, isEventStream, type StreamGate} from './streams.js'
import {TIMEOUT_RESPONSE, refusalResponse, sendPlain, upstreamFailedResponse, type PlainResponse} from './responses.js'
import type {RequestRecord} from './server.js'

export interface ExchangeOptions {
  /**
   * The deadline from the whole request body having arrived to the end of the answer, queueing
   * included: without a response head by then the client gets MLflow's 504, with one its connection is
   * destroyed. 0 disables. (The client's own slowness is bounded by the server's body timeout.)
   */
  readonly timeoutMs: number
  /** Paths sent to another path of the scorer (e.g. /health to /ping for a scorer without /health). */
  readonly rewrites?: ReadonlyMap<string, string>
  /**
   * How an exchange gets its scorer, with the policies composed onto it (composeLending; --batch merges
   * queued /invocations requests). Default: plainLending, every request alone.
   */
  readonly lend?: Lend
  /** --max-streams: requests asking for a stream beyond it get 503 (undefined: no bound). */
  readonly streams?: StreamGate
}

/** Why the proxy cancels an upstream request itself; seen only by undici. */
const CANCELLED = new Error('The proxy cancelled the request to the scorer.')

/**
 * One forwarded request, from the client's request to the end of the scorer's answer. The body is read
 * whole before a scorer is leased, so a slow client never holds one. It is the undici dispatch handler,
 * so the client going away and the timeout cancel the upstream request through the controller undici
 * hands it, with no AbortSignal. The lease goes back as soon as the scorer's answer has ended.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  private settled = false
  private timer: NodeJS.Timeout | undefined
  private readonly request: Dispatcher.DispatchOptions
  /** The current attempt's controller: undefined until the request is on a connection. */
  private controller: Dispatcher.DispatchController | undefined
  private readonly replay = new ReplayOnce()
  private lease: Lease | undefined
  private lending: Lending | undefined
  private scorerTimedOut = false
  /** The scorer's answer has ended: what remains is the client's to read. */
  private upstreamDone = false
  /** The client is not reading fast enough: the scorer's answer waits on it. */
  private waitingOnClient = false
  /** The answer is server-sent events: -t bounds the wait for each chunk, not the whole answer. */
  private streaming = false

  constructor(
    private readonly upstreams: Upstreams,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly record: RequestRecord,
    /** Read whole; freed when the exchange is over. */
    private readonly body: RequestBody,
    /** The request asked for a stream and holds a place under --max-streams. */
    private readonly inStreamGate: boolean,
    private readonly options: ExchangeOptions,
    private readonly resolve: (outcome: ExchangeOutcome) => void,
  ) {
    this.request = scorerRequest(req, record.id, body, options)
    this.port = this.portOf()
  }

  /** Starts the deadline and asks for a scorer. */
  start(): void {
    if (this.options.timeoutMs > 0) this.timer = setTimeout(this.onTimeout, this.options.timeoutMs)
    this.lending = (this.options.lend ?? plainLending)(this.upstreams, this.port)
    this.lending.start()
  }

  /** What the lending sees of this exchange, and how it hands the exchange a scorer or an answer. */
  private readonly port: ExchangePort

  private portOf(): ExchangePort {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the port's getters read this exchange
    const exchange = this
    return {
      req: this.req,
      record: this.record,
      body: this.body,
      target: {path: this.request.path, headers: this.request.headers as string[]},
      get settled() {
        return exchange.settled
      },
      get outcome() {
        return exchange.record.outcome
      },
      send: (lease) => {
        this.lease = lease
        this.record.scorer = lease.slot
        this.sayVersion(lease)
        this.send()
      },
      answer: (status, headers, body, slot) => {
        this.record.scorer = slot
        this.upstreamDone = true
        this.res.writeHead(status, {...headers, 'content-length': String(body.length)})
        this.res.end(body)
      },
      fail: (message) => {
        sendPlain(this.res, upstreamFailedResponse(message))
        this.finish('upstream-error')
      },
      refuse: (refusal) => this.refuse(refusalResponse(refusal)),
      sayVersion: (lease) => this.sayVersion(lease),
    }
  }

  /** The answer comes from `lease`'s scorer: its model version (a switch may be under way). */
  private sayVersion(lease: Lease): void {
    if (lease.modelVersion !== undefined && !this.res.headersSent) this.res.setHeader(MODEL_VERSION_HEADER, lease.modelVersion)
  }

  private refuse(response: PlainResponse): void {
    if (this.settled) return
    this.record.refusal = response.refusal
    sendPlain(this.res, response)
    this.finish('refused')
  }

  /** One attempt: each gets a fresh view of the body (a file is read again). */
  private send(): void {
    if (!this.settled) this.lease!.dispatcher.dispatch({...this.request, body: this.body.open()}, this)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.settled) controller.abort(CANCELLED)
    else this.controller = controller
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return
    // MLflow's own timeout middleware answered: its prediction thread runs on regardless.
    if (statusCode === 504) this.scorerTimedOut = true
    this.streaming = isEventStream(headers['content-type'])
    if (this.streaming) {
      this.timer?.refresh()
      this.record.stream = {bytes: 0}
    }

    this.res.writeHead(statusCode, forwardedResponseHeaders(headers))
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.record.stream) {
      this.timer?.refresh()
      this.record.stream.firstByteAt ??= performance.now()
      this.record.stream.bytes += chunk.length
    }

    if (this.res.write(chunk) || controller.paused) return
    controller.pause()
    this.waitingOnClient = true
    this.res.once('drain', () => {
      this.waitingOnClient = false
      controller.resume()
    })
  }

  onResponseEnd(): void {
    this.upstreamDone = true
    this.releaseLease(this.scorerTimedOut ? 'timeout' : 'ok')
    this.res.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.settled) return
    if (this.replay.allows(error, this.res.headersSent)) {
      // Once undici is done tearing down the connection that failed.
      queueMicrotask(() => this.send())
      return
    }

    if (this.res.headersSent) this.res.destroy()
    else sendPlain(this.res, upstreamFailedResponse(error.message))
    this.finish('upstream-error')
  }

  /** The client's response closed: after the whole answer went out, or because the client went away. */
  readonly onClose = () => {
    if (this.res.writableFinished) this.finish(this.scorerTimedOut ? 'timeout' : 'ok')
    else this.cancel('client-closed')
  }

  /** The deadline passed: the scorer's fault unless its answer was done or waiting for the client to read. */
  private readonly onTimeout = () => {
    const clientsFault = this.upstreamDone || this.waitingOnClient
    this.cancel(clientsFault ? 'client-timeout' : 'timeout')
    // A stream the scorer stopped feeding ends as a stream does: an error event, then [DONE].
    if (this.streaming && !clientsFault) this.res.end(STREAM_TIMEOUT_EVENTS)
    else if (this.res.headersSent) this.res.destroy()
    else sendPlain(this.res, TIMEOUT_RESPONSE)
  }

  /**
   * Settles first, so the error undici reports for the cancelled request is ignored. A request still
   * queued in the pool has no controller yet: onRequestStart cancels it.
   */
  private cancel(outcome: ExchangeOutcome): void {
    this.finish(outcome)
    this.controller?.abort(CANCELLED)
  }

  /** Gives the lease back, once: when the scorer's answer ended, else when the exchange does. */
  private releaseLease(outcome: ExchangeOutcome): void {
    const {lease} = this
    if (!lease) return
    this.lease = undefined
    this.upstreams.release(lease, outcome)
  }

  /** The first outcome wins; the lease goes back (a pending acquire is withdrawn), the body is freed. */
  private finish(outcome: ExchangeOutcome): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.timer)
    this.record.outcome = outcome
    this.lending?.end()
    this.releaseLease(outcome)
    if (this.inStreamGate) this.options.streams!.leave()
    this.body.discard()
    this.resolve(outcome)
  }
}
