// One process of one scorer slot (the slot's n-th start): its state, its load, the pool that reaches it.
import {Pool, type Dispatcher} from 'undici'

import type {Endpoint} from './backend.js'
import {FramedDispatcher} from './frame-dispatcher.js'
import type {ScorerHandle} from './process.js'
import type {Schedulable} from './scheduler.js'

export type RestartReason = 'exited' | 'unresponsive' | 'stuck' | 'warmup-failed' | 'load-timeout'

export type ScorerState = 'starting' | 'ready' | 'retiring' | 'gone'

/** Lent to requests as their Lease. */
export class Scorer implements Schedulable {
  state: ScorerState = 'starting'
  outstanding = 0
  /** Timed-out requests whose work may still run in the process: they hold capacity until it is replaced. */
  stuck = 0
  pingFailures = 0
  pinging = false
  readyAt = 0
  /** Why mlserve itself ended this process, when it did. */
  endedBy: RestartReason | 'stop' | undefined
  stuckTimer: NodeJS.Timeout | undefined
  /** A fresh scorer for this slot is starting because this one's timed-out work runs on. */
  replacing = false
  /** The model version it serves (X-MLServe-Model-Version), when known. */
  modelVersion: string | undefined

  constructor(
    readonly slot: number,
    /** The how-many-th start of its slot (1, 2, ...). */
    readonly start: number,
    readonly process: ScorerHandle,
    readonly dispatcher: Dispatcher,
    /** "scorer" (-w 1) or "scorer <slot>", as its output lines are prefixed. */
    private readonly name: string,
  ) {}

  get ready(): boolean {
    return this.state === 'ready'
  }

  get load(): number {
    return this.outstanding + this.stuck
  }

  get label(): string {
    return `${this.name} (pid ${this.process.pid})`
  }
}

export function poolFor(endpoint: Endpoint): Pool {
  // uvicorn closes idle keep-alive connections after 5 s: let ours go first.
  const keepAlive = {keepAliveTimeout: 4000, keepAliveMaxTimeout: 4000}
  return endpoint.kind === 'unix'
    ? new Pool('http://localhost', {socketPath: endpoint.socketPath, ...keepAlive})
    : new Pool(`http://127.0.0.1:${endpoint.port}`, keepAlive)
}

/** The pool that reaches `endpoint`; with a frame socket, POST /invocations goes as frames (the lean protocol). */
export function dispatcherFor(endpoint: Endpoint): Dispatcher {
  const pool = poolFor(endpoint)
  return endpoint.kind === 'unix' && endpoint.frameSocket ? new FramedDispatcher(pool, endpoint.frameSocket) : pool
}
