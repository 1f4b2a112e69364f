// A scorer reached through the lean protocol: POST /invocations goes as a frame on the worker's frame socket
// (persistent connections, one request in flight on each), everything else over HTTP through its undici pool.
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

/** Connections to one worker at most; more requests at once wait for one (mlserve sends far fewer). */
const MAX_CHANNELS = 64

export class FramedDispatcher extends Dispatcher implements FrameOwner {
  private readonly channels = new Set<FrameChannel>()
  private idle: FrameChannel[] = []
  private readonly waiting: Array<(channel: FrameChannel | Error) => void> = []
  /** Channels open or opening. */
  private opening = 0
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
    if (this.closed) {
      take(new errors.ClientDestroyedError())
      return
    }

    const idle = this.idle.pop()
    if (idle) take(idle)
    else if (this.opening < MAX_CHANNELS) this.open(take)
    else this.waiting.push(take)
  }

  release(channel: FrameChannel): void {
    if (channel.dead) return
    if (this.closed) {
      channel.destroy()
      return
    }

    const next = this.waiting.shift()
    if (next) next(channel)
    else this.idle.push(channel)
  }

  passOn(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.http.dispatch(options, handler)
  }

  private open(take: (channel: FrameChannel | Error) => void): void {
    this.opening++
    FrameChannel.open(this.framePath, (dead) => this.forget(dead)).then(
      (channel) => {
        this.channels.add(channel)
        if (this.closed) channel.destroy()
        take(channel)
      },
      (error: Error) => {
        this.opening--
        take(error)
      },
    )
  }

  private forget(channel: FrameChannel): void {
    this.opening--
    this.channels.delete(channel)
    this.idle = this.idle.filter((one) => one !== channel)
    const next = this.waiting.shift()
    if (next) this.acquire(next)
  }

  override close(): Promise<void>
  override close(callback: () => void): void
  override close(callback?: () => void): Promise<void> | void {
    this.closed = true
    for (const channel of this.idle) channel.destroy()
    const done = (async () => {
      while ([...this.channels].some((channel) => channel.busy)) {
        // eslint-disable-next-line no-await-in-loop -- waits for requests in flight, as a pool's close does
        await new Promise((resolve) => setTimeout(resolve, 10))
      }

      for (const channel of this.channels) channel.destroy()
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
    for (const take of this.waiting.splice(0)) take(new errors.ClientDestroyedError())
    for (const channel of this.channels) channel.kill(new errors.ClientDestroyedError())
    const done = (async () => {
      await this.http.destroy()
      await rm(this.framePath, {force: true})
    })()
    if (!callback) return done
    void done.then(callback)
  }
}
