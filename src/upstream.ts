// What the proxy and the scorers share: a lease on a scorer, a refusal, how an exchange ended, and a
// fixed response (the routes a scorer kind lacks, answered by the proxy).
import type {Dispatcher} from 'undici'

/** One scorer, lent to one request by acquire() and given back by release(). */
export interface Lease {
  readonly dispatcher: Dispatcher
  /** The scorer's slot, for access logs. */
  readonly slot: number
}

/** Why no scorer was lent: none is ready (restarting, given up, stopping), or the queue is full. */
export type RefusalReason = 'unavailable' | 'queue_full'

/** acquire()'s "no": the proxy alone turns it into a response. */
export interface Refusal {
  readonly refused: RefusalReason
  /** For the message: why none is available, or how many requests already wait. */
  readonly detail: string
}

export type Acquired = Lease | Refusal

/**
 * How an exchange ended. 'timeout' also covers the scorer's own 504: either way its work goes on past
 * the deadline. 'refused' is a request the proxy answered itself (413, 503 queue full or no scorer).
 * 'client-timeout' is a deadline that passed while the proxy waited for the client, not the scorer.
 */
export type ExchangeOutcome = 'ok' | 'timeout' | 'client-timeout' | 'upstream-error' | 'client-closed' | 'refused'

/**
 * Where requests go: acquire() lends a scorer now, later (queued), or refuses. Every lease comes back
 * through release() exactly once; a pending acquire() that is no longer wanted is withdrawn with cancel().
 */
export interface Upstreams {
  acquire(): Acquired | Promise<Acquired>
  release(lease: Lease, outcome: ExchangeOutcome): void
  /** Withdraws a pending acquire() whose request went away or timed out (a no-op once it resolved). */
  cancel?(pending: Promise<Acquired>): void
}

export const isLease = (value: Acquired): value is Lease => 'dispatcher' in value

/** A whole response the proxy writes itself. */
export interface PlainResponse {
  readonly status: number
  readonly contentType: string
  readonly body: string
  readonly headers?: Readonly<Record<string, string>>
  /** Why the proxy refused the request itself, for metrics (e.g. "queue_full"). */
  readonly refusal?: string
}
