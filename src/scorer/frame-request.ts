// One request sent as a frame: the undici dispatch handler it came with (current or legacy), the controller
// undici would hand it (abort on a deadline or a gone client), the answer frame turned into handler calls.
import {STATUS_CODES, type IncomingHttpHeaders} from 'node:http'

import {errors, type Dispatcher} from 'undici'

import type {FrameChannel, FrameWaiter} from './frame-channel.js'
import {FRAME_PASS, responseHeaders, type ResponseFrame} from './frame-codec.js'

/** What a FrameRequest needs from its dispatcher. */
export interface FrameOwner {
  /** The channel to send on (now, or once it is open), or why there is none. */
  acquire(take: (channel: FrameChannel | Error) => void): void
  /** Sends the request over HTTP instead (the worker said it is not its to answer). */
  passOn(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void
}

type Handler = Dispatcher.DispatchHandler
const NO_TRAILERS: IncomingHttpHeaders = {}

let dateSecond = -1
let dateText = ''
/** The HTTP date of now, made once a second (uvicorn's date header). */
function httpDate(): string {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateText = new Date(second * 1000).toUTCString()
  }

  return dateText
}

function rawHeaders(headers: IncomingHttpHeaders): Buffer[] {
  const raw: Buffer[] = []
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    for (const one of Array.isArray(value) ? value : [value]) raw.push(Buffer.from(name, 'latin1'), Buffer.from(String(one), 'latin1'))
  }

  return raw
}

export class FrameRequest implements Dispatcher.DispatchController, FrameWaiter {
  aborted = false
  reason: Error | null = null
  private done = false
  private channel: FrameChannel | undefined
  private timer: NodeJS.Timeout | undefined
  /** The HTTP request's controller, once passed on. */
  private inner: Dispatcher.DispatchController | undefined
  private readonly legacy: boolean

  constructor(
    private readonly owner: FrameOwner,
    private readonly id: number,
    private readonly options: Dispatcher.DispatchOptions,
    private readonly parts: readonly Buffer[],
    private readonly handler: Handler,
  ) {
    this.legacy = typeof handler.onRequestStart !== 'function'
  }

  get paused(): boolean {
    return this.inner?.paused ?? false
  }

  run(): void {
    if (this.legacy) this.handler.onConnect?.((reason?: Error) => this.abort(reason ?? new errors.RequestAbortedError()))
    else this.handler.onRequestStart?.(this, {})
    if (this.aborted) return
    this.owner.acquire((got) => {
      if (got instanceof Error) {
        this.fail(got)
        return
      }

      if (this.aborted) return

      this.channel = got
      // undici's bound on the wait for an answer's head (300 s unless the caller says; 0: none).
      const timeoutMs = this.options.headersTimeout ?? 300_000
      if (timeoutMs > 0) this.timer = setTimeout(() => this.abort(new errors.HeadersTimeoutError()), timeoutMs)
      got.send(this.id, this.parts, this)
    })
  }

  answered(frame: ResponseFrame): void {
    clearTimeout(this.timer)
    this.channel = undefined
    if (this.done) return
    if (frame.kind === FRAME_PASS) {
      this.owner.passOn(this.options, this.passing())
      return
    }

    this.done = true
    const headers = responseHeaders(frame.headers, httpDate())
    this.head(frame.status, headers)
    if (this.aborted) return
    if (frame.body.length > 0) this.data(frame.body)
    if (this.aborted) return
    if (this.legacy) this.handler.onComplete?.([])
    else this.handler.onResponseEnd?.(this, NO_TRAILERS)
  }

  failed(error: Error): void {
    clearTimeout(this.timer)
    this.channel = undefined
    this.fail(error)
  }

  abort(reason: Error): void {
    if (this.aborted || this.done) return
    this.aborted = true
    this.reason = reason
    clearTimeout(this.timer)
    if (this.inner) {
      this.inner.abort(reason)
      return
    }

    // The worker does not start it if it has not yet; an answer that comes anyway is dropped.
    this.channel?.cancel(this.id)
    this.channel = undefined
    this.fail(reason)
  }

  pause(): void {
    this.inner?.pause()
  }

  resume(): void {
    this.inner?.resume()
  }

  private fail(error: Error): void {
    if (this.done) return
    this.done = true
    if (this.legacy) this.handler.onError?.(error)
    else this.handler.onResponseError?.(this, error)
  }

  private head(status: number, headers: IncomingHttpHeaders): void {
    const message = STATUS_CODES[status] ?? ''
    if (!this.legacy) this.handler.onResponseStart?.(this, status, headers, message)
    else if (this.handler.onHeaders?.(status, rawHeaders(headers), () => this.resume(), message) === false) this.pause()
  }

  private data(chunk: Buffer): void {
    if (!this.legacy) this.handler.onResponseData?.(this, chunk)
    else if (this.handler.onData?.(chunk) === false) this.pause()
  }

  /** The handler for the HTTP request this one becomes: its events reach the caller's handler as this request's. */
  private passing(): Handler {
    return {
      onRequestStart: (controller) => {
        this.inner = controller
        if (this.aborted) controller.abort(this.reason!)
      },
      onResponseStart: (_controller, status, headers) => this.head(status, headers),
      onResponseData: (_controller, chunk) => this.data(chunk),
      onResponseEnd: () => {
        this.done = true
        if (this.legacy) this.handler.onComplete?.([])
        else this.handler.onResponseEnd?.(this, NO_TRAILERS)
      },
      onResponseError: (_controller, error) => {
        this.inner = undefined
        this.fail(error)
      },
    }
  }
}
