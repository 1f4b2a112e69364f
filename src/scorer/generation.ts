// One process of one scorer slot (a generation): its state, its load, the pool that reaches it.
import {Pool} from 'undici'

import type {Endpoint} from './backend.js'
import type {ScorerProcess} from './process.js'
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

  constructor(
    readonly slot: number,
    readonly generation: number,
    readonly process: ScorerProcess,
    readonly dispatcher: Pool,
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

/** One GET; true on 200. Connection errors (not listening yet) and timeouts are false. */
export async function ping(dispatcher: Pool, path: string, timeoutMs: number): Promise<boolean> {
  try {
    const {statusCode, body} = await dispatcher.request({path, method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs})
    await body.dump()
    return statusCode === 200
  } catch {
    return false
  }
}

/** MLflow's error envelope in one line: its message and the exception that ended its stack trace. */
export function summarizeError(body: string): string {
  try {
    const {message, stack_trace: trace} = JSON.parse(body) as {message?: unknown; stack_trace?: unknown} // eslint-disable-line camelcase
    if (typeof message === 'string') {
      const last = typeof trace === 'string' ? trace.trim().split('\n').at(-1)!.trim() : ''
      return last ? `${message} (${last})` : message
    }
  } catch {}

  return body.length > 500 ? `${body.slice(0, 500)}...` : body
}
