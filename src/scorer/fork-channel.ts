// A loader's control channel (both loaders, preload.py and env_loader.py, run templates/python/fork_server.py):
// JSON lines on a Unix socket asking for forks, the forks it reports (forked, exited) and their end with it.
import {createServer, type Server, type Socket} from 'node:net'
import {createInterface} from 'node:readline'

import {createDeferred, type Deferred} from '../util/deferred.js'
import {ForkedScorer, LOADER_REPLY_MS, type ForkParent} from './forked-scorer.js'

/** What the fork server reports of each fork. */
type ForkReport =
  | {readonly event: 'forked'; readonly id: number; readonly pid: number}
  | {
      readonly event: 'exited'
      readonly pid: number
      readonly code: number | null
      readonly signal: string | null
      /** The exception that ended the fork, when the loader reports it (its output is mixed with its siblings'). */
      readonly error?: string | null
    }

/** The listening control socket of one loader, then its connection: its forks, pending and running. */
export class ForkChannel {
  /** Its running forks by pid. */
  private readonly forks = new Map<number, ForkedScorer>()
  private readonly pending = new Map<number, Deferred<ForkedScorer>>()
  private nextId = 0
  private socket: Socket | undefined
  private parent: ForkParent | undefined
  /** The loader is gone: no more forks. */
  gone = false

  private constructor(
    private readonly server: Server,
    /** Resolves when the loader connects. */
    readonly connected: Promise<Socket>,
  ) {}

  /** Listens on `controlPath` for the loader's connection. */
  static async listen(controlPath: string): Promise<ForkChannel> {
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(controlPath, resolve)
    })
    return new ForkChannel(server, new Promise<Socket>((resolve) => server.once('connection', resolve)))
  }

  /**
   * The loader (`parent` of its forks) connected on `socket`: its fork reports are read here, its other
   * messages (loaded, ready, unsafe) go to `onEvent`.
   */
  attach<E extends {readonly event: string}>(socket: Socket, parent: ForkParent, onEvent: (message: E) => void): void {
    this.socket = socket
    this.parent = parent
    socket.on('error', () => {})
    const lines = createInterface({input: socket, crlfDelay: Number.POSITIVE_INFINITY})
    // A reset channel (the loader killed mid-write) ends the loader, which its exit reports: not a crash.
    lines.on('error', () => {})
    lines.on('line', (line) => {
      let message: E | ForkReport
      try {
        message = JSON.parse(line) as E | ForkReport
      } catch {
        return
      }

      if (message.event === 'forked' || message.event === 'exited') this.onReport(message as ForkReport, parent)
      else onEvent(message as E)
    })
  }

  /**
   * Sends the request `message(id)` makes; resolves with the fork once reported. A loader that does not
   * report it within LOADER_REPLY_MS is unresponsive (`what`: what it did not do); `who` names the loader.
   */
  async fork(message: (id: number) => object, who: string, what: string): Promise<ForkedScorer> {
    if (this.gone || !this.socket || !this.parent) throw new Error(`${who} is gone`)
    const parent = this.parent
    const id = ++this.nextId
    const forked = createDeferred<ForkedScorer>()
    this.pending.set(id, forked)
    this.socket.write(JSON.stringify(message(id)) + '\n')
    const timer = setTimeout(() => {
      if (this.pending.has(id)) parent.unresponsive(what)
    }, LOADER_REPLY_MS)
    timer.unref()
    void forked.promise.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    )
    return forked.promise
  }

  private onReport(message: ForkReport, parent: ForkParent): void {
    if (message.event === 'forked') {
      const scorer = new ForkedScorer(message.pid, parent)
      this.forks.set(message.pid, scorer)
      this.pending.get(message.id)?.resolve(scorer)
      this.pending.delete(message.id)
    } else {
      this.forks.get(message.pid)?.settle({exitCode: message.code, signal: message.signal}, message.error ?? undefined)
      this.forks.delete(message.pid)
    }
  }

  /** Stops listening for the loader's connection (it did not start, or it exited before connecting). */
  stopListening(): void {
    this.server.close()
  }

  /** Tells the loader to finish: the end of its control socket. */
  end(): void {
    this.socket?.end()
  }

  /**
   * The loader is gone: the channel closes, each fork not yet reported (SIGKILLed by the kernel, and by
   * mlserve first with `killForks`) ends killed, and each pending request fails with `reason`.
   */
  close(reason: Error, killForks = false): void {
    this.gone = true
    this.server.close()
    this.socket?.destroy()
    for (const fork of this.forks.values()) {
      if (killForks) fork.killNow()
      fork.settle({exitCode: null, signal: 'SIGKILL'})
    }

    this.forks.clear()
    for (const pending of this.pending.values()) pending.reject(reason)
    this.pending.clear()
  }
}
