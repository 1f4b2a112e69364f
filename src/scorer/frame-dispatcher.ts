// A scorer reached through the lean protocol: POST /invocations goes as a frame on the worker's frame socket
// (one persistent connection carrying them all), everything else over HTTP through its undici pool.
import {existsSync} from 'node:fs'
import {rm} from 'node:fs/promises'

import {Dispatcher, errors} from 'undici'

import {FrameChannel} from './frame-channel.js'
import {encodeRequest, flatHeaders} from './frame-codec.js'
import {FrameRequest, type FrameOwner} from './frame-request.js'

/** The frame socket beside a scorer's HTTP socket (the same length, so it fits where that one does). */
export function frameSocketFor(socketPath: string): string {
  return socketPath.endsWith('.sock') ? `${socketPath.slice(0, -5)}.lean` : `${socketPath}.lean`
}

export class FramedDispatcher extends Dispatcher implements FrameOwner {
  /** The connection every framed request goes on (a new one once it dies). */
  private channel: FrameChannel | undefined
  /** Requests waiting for the connection to open. */
  private opening: Array<(channel: FrameChannel | Error) => void> | undefined
  private nextId = 0
  /** Whether the worker listens for frames (decided at the first request: the scorer is ready by then). */
  private lean: boolean | undefined
  private closed = false

  constructor(
    /** The scorer's HTTP side (uvicorn): every other route, and requests the worker passes on. */
    readonly http: Dispatcher,
    readonly framePath: string,
  ) {
    super()
  }

  /** Whether the worker listens for frames: its socket exists once its model is loaded, unless it said why not. */
  get framed(): boolean {
    this.lean ??= existsSync(this.framePath)
    return this.lean
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const {body} = options
    const bytes = body === null || body === undefined ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body) : body
    if (
      this.closed ||
      options.method !== 'POST' ||
      !(options.path === '/invocations' || options.path.startsWith('/invocations?')) ||
      !(bytes instanceof Uint8Array) ||
      options.upgrade ||
      !this.framed
    ) {
      return this.http.dispatch(options, handler)
    }

    this.nextId = (this.nextId + 1) >>> 0
    const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const parts = encodeRequest(this.nextId, 'POST', options.path, flatHeaders(options.headers), chunk)
    new FrameRequest(this, this.nextId, options, parts, handler).run()
    return true
  }

  acquire(take: (channel: FrameChannel | Error) => void): void {
    if (this.closed) take(new errors.ClientDestroyedError())
    else if (this.channel) take(this.channel)
    else if (this.opening) this.opening.push(take)
    else this.open(take)
  }

  passOn(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.http.dispatch(options, handler)
  }

  private open(take: (channel: FrameChannel | Error) => void): void {
    const takers = [take]
    this.opening = takers
    FrameChannel.open(this.framePath, (dead) => {
      if (this.channel === dead) this.channel = undefined
    }).then(
      (channel) => {
        this.opening = undefined
        if (this.closed) channel.destroy()
        else this.channel = channel
        for (const one of takers) one(this.closed ? new errors.ClientDestroyedError() : channel)
      },
      (error: Error) => {
        this.opening = undefined
        for (const one of takers) one(error)
      },
    )
  }

  override close(): Promise<void>
  override close(callback: () => void): void
  override close(callback?: () => void): Promise<void> | void {
    this.closed = true
    const done = (async () => {
      while (this.channel?.busy) {
        // eslint-disable-next-line no-await-in-loop -- waits for requests in flight, as a pool's close does
        await new Promise((resolve) => setTimeout(resolve, 10))
      }

      this.channel?.destroy()
      await this.http.close()
    })()
    if (!callback) return done
    void done.then(callback)
  }

  override destroy(): Promise<void>
  override destroy(error: Error | null): Promise<void>
  override destroy(callback: () => void): void
  override destroy(error: Error | null, callback: () => void): void
  override destroy(first?: Error | null | (() => void), second?: () => void): Promise<void> | void {
    const callback = typeof first === 'function' ? first : second
    this.closed = true
    this.channel?.kill(new errors.ClientDestroyedError())
    const done = (async () => {
      await this.http.destroy()
      await rm(this.framePath, {force: true})
    })()
    if (!callback) return done
    void done.then(callback)
  }
}
