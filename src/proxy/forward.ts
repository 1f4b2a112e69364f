// The fast path: sends a raw Node request, its body read whole first, to a leased scorer through an
// undici pool, and streams the answer back.
import type {IncomingHttpHeaders, IncomingMessage, ServerResponse} from 'node:http'

import type {Dispatcher} from 'undici'

import {MODEL_VERSION_HEADER, isLease, type Acquired, type ExchangeOutcome, type Joinable, type Lease, type Upstreams} from '../upstream.js'
import {MAX_BATCHABLE_BYTES, type BatchMember, type Batcher, type MemberSink, type MergedRequest} from './batch.js'
import {BodyTooLarge, readBody, type MemoryBudget, type RequestBody} from './body.js'
import {asksForStream, tooManyStreamsResponse, type StreamGate} from './streams.js'
import {TIMEOUT_RESPONSE, bodyTooLargeResponse, refusalResponse, sendPlain, upstreamFailedResponse, type PlainResponse} from './responses.js'
import type {RequestRecord} from './server.js'

/**
 * Headers that describe one connection, not the message: never forwarded in either direction. `expect`
 * is answered by the proxy itself (100 Continue once it wants the body), and undici refuses to send it.
 * `host` is forwarded: the scorer builds its redirects from it, as it does behind mlflow.
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

/**
 * A connection the scorer closed before answering: uvicorn closes a kept-alive connection after its own
 * 500 without saying so, and one left idle too long; a fresh connection gets an answer.
 */
const STALE_CONNECTION = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
const isStaleConnection = (error: Error): boolean => STALE_CONNECTION.has((error as NodeJS.ErrnoException).code ?? '')

/** Upstreams that is one dispatcher (or none: every request refused as unavailable). */
export function singleUpstream(dispatcher: Dispatcher | undefined): Upstreams {
  const lease: Lease | undefined = dispatcher && {dispatcher, slot: 0}
  return {
    acquire: () => lease ?? {refused: 'unavailable', detail: 'no scorer is running.'},
    release() {},
  }
}

export interface ForwardOptions {
  /**
   * The deadline from the whole request body having arrived to the end of the answer, queueing
   * included: without a response head by then the client gets MLflow's 504, with one its connection is
   * destroyed. 0 disables. (The client's own slowness is bounded by the server's body timeout.)
   */
  readonly timeoutMs: number
  /** Request bodies above this many bytes get a 413 envelope. */
  readonly maxBodyBytes?: number
  /** Paths sent to another path of the scorer (e.g. /health to /ping for a scorer without /health). */
  readonly rewrites?: ReadonlyMap<string, string>
  /** Shared by every request: request bodies held in memory stay within it, the rest go to files. */
  readonly bodyBudget?: MemoryBudget
  /** Where bodies that do not fit in memory are kept until they are sent (default: the temp directory). */
  readonly spillDir?: string
  /** --batch: merges queued /invocations requests (undefined: every request goes alone). */
  readonly batcher?: Batcher
  /** --max-streams: requests asking for a stream beyond it get 503 (undefined: no bound). */
  readonly streams?: StreamGate
}

/**
 * Forwards one request, filling `record` (outcome, scorer, refusal) for the access log and metrics.
 * Never rejects: every failure becomes a response (504, 502, 413, 503) or, when the response has
 * already started, a destroyed connection. Resolves when the exchange is over.
 */
export function forward(
  upstreams: Upstreams,
  req: IncomingMessage,
  res: ServerResponse,
  record: RequestRecord,
  options: ForwardOptions,
): Promise<ExchangeOutcome> {
  return new Promise((resolve) => {
    new Exchange(upstreams, req, res, record, options, resolve).start()
  })
}

/** A server-sent events answer (a stream from predict_stream): its -t is per chunk. */
const isEventStream = (type: string | string[] | undefined): boolean =>
  typeof type === 'string' && type.trimStart().toLowerCase().startsWith('text/event-stream')

/** How a stream cut by -t ends: MLflow's timeout message as an error event, then the end marker. */
const STREAM_TIMEOUT_EVENTS = `data: {"error": {"error_code": "DEADLINE_EXCEEDED", "message": "${TIMEOUT_RESPONSE.body}"}}\n\ndata: [DONE]\n\n`

/** Why the proxy cancels an upstream request itself; seen only by undici. */
const CANCELLED = new Error('The proxy cancelled the request to the scorer.')

/**
 * One forwarded request, from the client's request to the end of the scorer's answer. The body is read
 * whole before a scorer is leased, so a slow client never holds one. It is the undici dispatch handler,
 * so the client going away and the timeout cancel the upstream request through the controller undici
 * hands it, with no AbortSignal. The lease goes back as soon as the scorer's answer has ended.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private settled = false
  private timer: NodeJS.Timeout | undefined
  private request: Dispatcher.DispatchOptions | undefined
  private body: RequestBody | undefined
  /** The current attempt's controller: undefined until the request is on a connection. */
  private controller: Dispatcher.DispatchController | undefined
  private replaysLeft = 1
  private lease: Lease | undefined
  private pending: Promise<Acquired> | undefined
  private scorerTimedOut = false
  /** The scorer's answer has ended: what remains is the client's to read. */
  private upstreamDone = false
  /** The client is not reading fast enough: the scorer's answer waits on it. */
  private waitingOnClient = false
  /** The answer is server-sent events: -t bounds the wait for each chunk, not the whole answer. */
  private streaming = false
  /** The request asked for a stream and holds a place under --max-streams. */
  private inStreamGate = false
  /** --batch: this request waited for a scorer and may merge with others. */
  private member: BatchMember | undefined
  private parsed = false

  constructor(
    private readonly upstreams: Upstreams,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly record: RequestRecord,
    private readonly options: ForwardOptions,
    private readonly resolve: (outcome: ExchangeOutcome) => void,
  ) {}

  start(): void {
    // 'close' also comes after a complete response: that is when the exchange is over.
    this.res.on('close', this.onClose)
    const {maxBodyBytes} = this.options
    const declared = this.req.headers['content-length']
    if (maxBodyBytes !== undefined && declared !== undefined && Number(declared) > maxBodyBytes) {
      this.refuseBody(maxBodyBytes)
      return
    }

    // The client waits for this before it sends the body (the server does not send it on its own).
    if (this.record.expectsContinue) this.res.writeContinue()
    readBody(this.req, {maxBytes: maxBodyBytes, budget: this.options.bodyBudget, spillDir: this.options.spillDir}).then(
      (body) => {
        if (this.settled) {
          body.discard()
          return
        }

        this.body = body
        const {streams} = this.options
        if (streams && this.req.method === 'POST' && asksForStream(this.req.headers['content-type'], body.memory)) {
          if (!streams.enter()) {
            this.refuse(tooManyStreamsResponse(streams.max))
            return
          }

          this.inStreamGate = true
        }

        this.prepare(body)
        if (this.options.timeoutMs > 0) this.timer = setTimeout(this.onTimeout, this.options.timeoutMs)
        this.acquire()
      },
      (error: unknown) => {
        if (error instanceof BodyTooLarge) this.refuseBody(error.limit)
        else this.finish('client-closed')
      },
    )
  }

  private prepare(body: RequestBody): void {
    const url = this.req.url ?? '/'
    const headers = forwardedRequestHeaders(this.req.rawHeaders)
    setHeader(headers, 'x-request-id', this.record.id)
    withForwardedFor(headers, this.req)
    // A chunked body was read whole: it goes on with its length.
    if (body.size > 0 && this.req.headers['content-length'] === undefined) headers.push('content-length', String(body.size))
    this.request = {
      path: this.options.rewrites?.get(url) ?? url,
      method: this.req.method as Dispatcher.HttpMethod,
      headers,
      body: null,
      // Our own deadline decides, not the pool's (300 s by default, less than a long --timeout).
      headersTimeout: this.options.timeoutMs > 0 ? 0 : undefined,
    }
  }

  private acquire(): void {
    const batchable = this.batchable()
    // --batch-wait: a call held open for compatible requests takes this one along.
    if (batchable && this.options.batcher!.waitMs > 0 && this.joinable() && this.options.batcher!.joinOpen(this.member!)) return
    const got = this.upstreams.acquire(batchable ? this.joinable : undefined)
    if (!(got instanceof Promise)) {
      if (batchable && isLease(got) && this.options.batcher!.waitMs > 0 && this.member) {
        // --batch-wait: a free scorer, held for compatible requests to join before the call goes.
        this.record.scorer = got.slot
        this.options.batcher!.hold(this.upstreams, got, this.member, this.template())
        return
      }

      this.onAcquired(got)
      return
    }

    this.pending = got
    void got.then((value) => {
      this.pending = undefined
      if (this.settled) {
        // The requests it took along still need their merged call.
        if (isLease(value) && this.member && this.member.followers.length > 0) this.runBatch(value)
        else if (isLease(value)) this.upstreams.release(value, this.record.outcome ?? 'client-closed')
        return
      }

      this.onAcquired(value)
    })
  }

  private onAcquired(value: Acquired): void {
    // It rides along in another request's merged call, which answers it.
    if ('joined' in value) return
    if (!isLease(value)) {
      this.refuse(refusalResponse(value))
      return
    }

    this.record.scorer = value.slot
    this.sayVersion(value)
    const {member} = this
    if (member && member.followers.length > 0) {
      this.runBatch(value)
      return
    }

    this.lease = value
    this.send()
  }

  /** The merged call holds the lease; this exchange is one of its members now. */
  private runBatch(lease: Lease): void {
    this.options.batcher!.run(this.upstreams, lease, this.member!, this.template())
  }

  private template(): MergedRequest {
    return {path: this.request!.path, headers: this.request!.headers as string[]}
  }

  /** Only with --batch: POST /invocations with a JSON body held in memory. Parsed only if it waits. */
  private batchable(): boolean {
    const {batcher} = this.options
    if (!batcher?.enabled || this.req.method !== 'POST' || this.req.url !== '/invocations') return false
    // A merged call goes with its first member's headers; mlflow reads Content-Type as sent (case and
    // parameters count: `APPLICATION/JSON` gets 415), so only the exact one, sent once, merges.
    const types = this.req.rawHeaders.filter((value, i) => i % 2 === 0 && value.toLowerCase() === 'content-type')
    return (
      types.length === 1 && this.req.headers['content-type'] === 'application/json' && (this.body?.memory?.length ?? 0) <= MAX_BATCHABLE_BYTES
    )
  }

  /** Parses the body once, the first time the request may merge. */
  private readonly joinable = (): Joinable | undefined => {
    if (this.parsed) return this.member
    this.parsed = true
    const memory = this.body?.memory
    this.member = memory && this.options.batcher!.member(memory, this.sink)
    return this.member
  }

  /** How a merged call this request is a member of reaches it. */
  private readonly sink: MemberSink & {settled: boolean; outcome: ExchangeOutcome | undefined} = {
    settled: false,
    outcome: undefined,
    answer: (status, headers, body, slot) => {
      this.record.scorer = slot
      this.upstreamDone = true
      this.res.writeHead(status, {...headers, 'content-length': String(body.length)})
      this.res.end(body)
    },
    alone: (lease) => {
      this.lease = lease
      this.record.scorer = lease.slot
      this.sayVersion(lease)
      this.send()
    },
    fail: (message) => {
      sendPlain(this.res, upstreamFailedResponse(message))
      this.finish('upstream-error')
    },
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

  /**
   * 413. The rest of the body is read and dropped, so the client can finish sending and then read the
   * answer (closing on it makes most clients fail with a reset instead); --body-timeout bounds that.
   */
  private refuseBody(limit: number): void {
    this.req.resume()
    this.refuse(bodyTooLargeResponse(limit))
  }

  /** One attempt: each gets a fresh view of the body (a file is read again). */
  private send(): void {
    if (!this.settled) this.lease!.dispatcher.dispatch({...this.request!, body: this.body!.open()}, this)
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
    if (this.member) {
      this.sink.settled = true
      this.sink.outcome = outcome
      this.member.onLeave?.()
    }

    this.releaseLease(outcome)
    if (this.inStreamGate) this.options.streams!.leave()
    if (this.pending) this.upstreams.cancel?.(this.pending)
    this.body?.discard()
    this.resolve(outcome)
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
