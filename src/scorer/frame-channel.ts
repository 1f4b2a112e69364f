// One connection to a scorer's frame socket, carrying all of its requests at once: each frame has an id, and
// each answer frame goes to the request with its id. A connection that closes (the worker died) or breaks
// fails every request on it.
import {createConnection, type Socket} from 'node:net'

import {errors} from 'undici'

import {FRAME_DROPPED, FrameReader, encodeCancel, type ResponseFrame} from './frame-codec.js'

const SMALL_FRAME = 64 * 1024

/** What the request on a channel hears: its answer, or why there will be none. */
export interface FrameWaiter {
  answered(frame: ResponseFrame): void
  failed(error: Error): void
}

export class FrameChannel {
  private readonly reader = new FrameReader()
  private readonly waiters = new Map<number, FrameWaiter>()
  /** Requests given up on and not yet heard of again: each gets one frame back, its late answer (dropped
   * here) or word that it never ran, and leaves the set with it. */
  private readonly cancelled = new Set<number>()
  /** Closed or broken: it takes no more requests. */
  dead = false

  private constructor(
    private readonly socket: Socket,
    /** Told once when the channel dies, to take it out of its pool. */
    private readonly onDead: (channel: FrameChannel) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', () => {})
    socket.on('close', () => this.die(new errors.SocketError('other side closed')))
  }

  /** Connects to `path`; rejects with the connection's error (ECONNREFUSED, ENOENT: the worker is gone). */
  static async open(path: string, onDead: (channel: FrameChannel) => void): Promise<FrameChannel> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path)
      const fail = (error: Error) => reject(error)
      socket.once('error', fail)
      socket.once('connect', () => {
        socket.off('error', fail)
        resolve(new FrameChannel(socket, onDead))
      })
    })
  }

  /** Requests sent and not yet answered. */
  get busy(): boolean {
    return this.waiters.size > 0
  }

  /** Sends one request frame (its parts in one write); `waiter` hears its answer or its failure. */
  send(id: number, parts: readonly Buffer[], waiter: FrameWaiter): void {
    this.waiters.set(id, waiter)
    let size = 0
    for (const part of parts) size += part.length
    // A small frame is copied into one buffer (one write(2)); a large body is not copied (one writev(2)).
    if (size <= SMALL_FRAME) {
      this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts as Buffer[], size))
      return
    }

    this.socket.cork()
    for (const part of parts) if (part.length > 0) this.socket.write(part)
    this.socket.uncork()
  }

  /** Gives up on request `id`: the worker does not start it if it has not, and its answer is dropped. */
  cancel(id: number): void {
    if (this.dead || !this.waiters.delete(id)) return
    this.cancelled.add(id)
    this.socket.write(encodeCancel(id))
  }

  /** Drops the connection (the dispatcher closed). */
  destroy(): void {
    this.waiters.clear()
    this.socket.destroy()
  }

  /** Drops the connection, failing the request on it with `error` (the scorer is gone). */
  kill(error: Error): void {
    this.die(error)
  }

  private onData(chunk: Buffer): void {
    let frames: ResponseFrame[]
    try {
      frames = this.reader.push(chunk)
    } catch (error) {
      this.die(new errors.SocketError(`the scorer's frame stream broke: ${(error as Error).message}`))
      return
    }

    for (const frame of frames) {
      if (this.cancelled.delete(frame.id)) continue
      const waiter = this.waiters.get(frame.id)
      if (!waiter || frame.kind === FRAME_DROPPED) {
        this.die(
          new errors.SocketError(
            waiter ? 'the scorer dropped a request that was not cancelled' : 'the scorer answered a request it was not sent',
          ),
        )
        return
      }

      this.waiters.delete(frame.id)
      waiter.answered(frame)
    }
  }

  private die(error: Error): void {
    if (this.dead) return
    this.dead = true
    this.socket.destroy()
    const waiters = [...this.waiters.values()]
    this.waiters.clear()
    this.onDead(this)
    for (const waiter of waiters) waiter.failed(error)
  }
}
