// What the proxy and the scorers share: a lease on a scorer, a refusal, how an exchange ended, and a
// fixed response (the routes a scorer kind lacks, answered by the proxy).
import type {Dispatcher} from 'undici'

/** One scorer, lent to one request by acquire() and given back by release(). */
export interface Lease {
  readonly dispatcher: Dispatcher
  /** The scorer's slot, for access logs. */
  readonly slot: number
  /** The model version the scorer serves, for the X-MLServe-Model-Version header (undefined: not known). */
  readonly modelVersion?: string
}

/** Why no scorer was lent: none is ready (restarting, given up, stopping), or the queue is full. */
export type RefusalReason = 'unavailable' | 'queue_full'

/** acquire()'s "no": the proxy alone turns it into a response. */
export interface Refusal {
  readonly refused: RefusalReason
  /** For the message: why none is available, or how many requests already wait. */
  readonly detail: string
}

/**
 * A queued request that may take compatible requests queued behind it along when it gets a scorer
 * (--batch): the scheduler asks the one it lends a scorer to about each other queued one, in order.
 */
export interface Joinable {
  /** Whether `other` rides along in this request's scorer call (it then leaves the queue). */
  join(other: Joinable): boolean
}

/** acquire()'s answer to a request that joined another's scorer call: that call answers it. */
export interface Joined {
  readonly joined: true
}

export const JOINED: Joined = {joined: true}

export type Acquired = Lease | Refusal | Joined

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
  /** `joinable` is called only when the request has to wait: what it may take along or join (--batch). */
  acquire(joinable?: () => Joinable | undefined): Acquired | Promise<Acquired>
  release(lease: Lease, outcome: ExchangeOutcome): void
  /** One more lease on a scorer already lent (a merged call's members sent alone after all). */
  share?(lease: Lease): Lease
  /** Withdraws a pending acquire() whose request went away or timed out (a no-op once it resolved). */
  cancel?(pending: Promise<Acquired>): void
}

/** Says which model version answered: the registry version, else the run id. */
export const MODEL_VERSION_HEADER = 'x-mlserve-model-version'

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
