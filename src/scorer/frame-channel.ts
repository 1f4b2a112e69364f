// One connection to a scorer's frame socket: one request in flight at a time, its answer frame handed back;
// a connection that closes (the worker died) or breaks fails the request on it.
import {createConnection, type Socket} from 'node:net'

import {errors} from 'undici'

import {FrameReader, type ResponseFrame} from './frame-codec.js'

const SMALL_FRAME = 64 * 1024

/** What the request on a channel hears: its answer, or why there will be none. */
export interface FrameWaiter {
  answered(frame: ResponseFrame): void
  failed(error: Error): void
}

export class FrameChannel {
  private readonly reader = new FrameReader()
  private waiter: FrameWaiter | undefined
  private expected = 0
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

  get busy(): boolean {
    return this.waiter !== undefined
  }

  /** Sends one request frame (its parts in one write); `waiter` hears its answer or its failure. */
  send(id: number, parts: readonly Buffer[], waiter: FrameWaiter): void {
    this.waiter = waiter
    this.expected = id
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

  /** Drops the connection (a request on it was abandoned: its answer must not reach the next one). */
  destroy(): void {
    this.waiter = undefined
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
      const {waiter} = this
      if (!waiter || frame.id !== this.expected) {
        this.die(new errors.SocketError('the scorer answered a request it was not sent'))
        return
      }

      this.waiter = undefined
      waiter.answered(frame)
    }
  }

  private die(error: Error): void {
    if (this.dead) return
    this.dead = true
    this.socket.destroy()
    const {waiter} = this
    this.waiter = undefined
    this.onDead(this)
    waiter?.failed(error)
  }
}
