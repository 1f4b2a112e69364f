// How a forwarded exchange gets its scorer. Plain lending asks the Upstreams; policies are composed onto
// it, as undici composes interceptors onto a dispatcher: each gets the lending it wraps and decides per
// request whether to take the exchange over (--batch merges it into another request's call) or pass it on.
import type {IncomingMessage} from 'node:http'

import {isLease, type Acquired, type ExchangeOutcome, type Lease, type Refusal, type Upstreams} from '../upstream.js'
import type {RequestBody} from './body.js'
import type {RequestRecord} from './server.js'

/** The request as it goes to a scorer: the (rewritten) path and the forwarded headers. */
export interface ForwardedRequest {
  readonly path: string
  readonly headers: readonly string[]
}

/** What a lending sees of one exchange, its body read whole, and how it hands the exchange on. */
export interface ExchangePort {
  readonly req: IncomingMessage
  readonly body: RequestBody
  readonly target: ForwardedRequest
  readonly record: RequestRecord
  /** The exchange is over (answered, timed out, client gone): it takes nothing more. */
  readonly settled: boolean
  /** How it ended, once settled. */
  readonly outcome: ExchangeOutcome | undefined
  /** Sends the request alone on `lease`, the exchange's own from now on: it gives it back. */
  send(lease: Lease): void
  /** Answers with a whole response the lending got some other way (cut from a merged call's answer). */
  answer(status: number, headers: Readonly<Record<string, string | string[]>>, body: Buffer, slot: number): void
  /** The scorer failed: a 502. */
  fail(message: string): void
  /** No scorer: a 503 (queue full, none available). */
  refuse(refusal: Refusal): void
  /** The answer will come from `lease`'s scorer: its model version goes on the response. */
  sayVersion(lease: Lease): void
}

/** One exchange's way to a scorer: started once its body is read, ended once the exchange is over. */
export interface Lending {
  start(): void
  /** The exchange settled: a pending acquire is withdrawn, a merged call told. */
  end(): void
}

/** Makes the lending of one exchange. */
export type Lend = (upstreams: Upstreams, port: ExchangePort) => Lending

/** A policy composed onto lending: it gets the lending it wraps (plain lending at the bottom). */
export type LendingPolicy = (next: Lend) => Lend

/** Hands what acquire() gave to the exchange: a lease to send on, a refusal; a joined request waits. */
export function deliver(port: ExchangePort, value: Acquired): void {
  if ('joined' in value) return
  if (isLease(value)) port.send(value)
  else port.refuse(value)
}

/** Every request goes alone: acquire() now or once queued; a lease that comes too late goes back. */
export const plainLending: Lend = (upstreams, port) => {
  let pending: Promise<Acquired> | undefined
  return {
    start() {
      const got = upstreams.acquire()
      if (!(got instanceof Promise)) {
        deliver(port, got)
        return
      }

      pending = got
      void got.then((value) => {
        pending = undefined
        if (!port.settled) deliver(port, value)
        else if (isLease(value)) upstreams.release(value, port.outcome ?? 'client-closed')
      })
    },
    end() {
      if (pending) upstreams.cancel?.(pending)
    },
  }
}

/** Plain lending with `policies` composed onto it, the first outermost. */
export function composeLending(policies: readonly LendingPolicy[]): Lend {
  return policies.reduceRight<Lend>((next, policy) => policy(next), plainLending)
}
