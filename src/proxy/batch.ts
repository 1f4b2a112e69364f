// Opportunistic batching (--batch), a lending policy composed onto forwarding: /invocations requests with
// the same row format, columns, params and value kinds, waiting behind a call of theirs or queued, go as one call.
import type {Logger} from '../log.js'
import {isLease, type Acquired, type Lease, type Refusal, type Upstreams} from '../upstream.js'
import {runMergedCall} from './batch-call.js'
import {Flights, type Launchable} from './batch-flights.js'
import {BatchMember, batchable, type MemberSink} from './batch-member.js'
import {readRows} from './batch-rows.js'
import {deliver, type ExchangePort, type ForwardedRequest, type Lending, type LendingPolicy} from './lending.js'

export interface BatchOptions {
  /** Most rows in one merged call (--batch-max-rows). */
  readonly maxRows: number
  /**
   * --batch-wait: how long a batchable request that found a free scorer waits for compatible ones to
   * join it before its call goes (0: it goes at once; only queued requests merge).
   */
  readonly waitMs?: number
  readonly log?: Logger
  /** Each merged call: its rows and requests (the mlserve_batch_size histogram). */
  readonly onBatch?: (rows: number, requests: number) => void
  /** Requests waiting behind a call of their kind went up or down by `delta` (added to mlserve_queue_depth). */
  readonly onWaiting?: (delta: number) => void
}

/** A call held open for --batch-wait: its scorer is lent already, compatible requests may still join. */
interface OpenCall {
  readonly upstreams: Upstreams
  readonly lease: Lease
  readonly leader: BatchMember
  readonly template: ForwardedRequest
  readonly timer: NodeJS.Timeout
}

/** Merges queued requests into scorer calls; stops for good once the model's output is not row-aligned. */
export class Batcher {
  /** Batching is on (until the model's output turns out not row-aligned). */
  enabled = true
  /** --batch-wait: the calls waiting for more requests, by merge key (one per key). */
  private readonly open = new Map<string, OpenCall>()
  /** Without --batch-wait: per scorer set, the calls in flight per kind and the next call gathering behind them. */
  private readonly flights = new WeakMap<Upstreams, Flights>()

  constructor(private readonly options: BatchOptions) {}

  get waitMs(): number {
    return this.options.waitMs ?? 0
  }

  /** --batch-wait: joins a call held open for compatible requests, if there is one with room. */
  joinOpen(member: BatchMember): boolean {
    const call = this.open.get(member.rows.key)
    if (!call || !call.leader.join(member)) return false
    if (call.leader.full) this.flush(call)
    return true
  }

  /** --batch-wait: holds `leader`'s call (its scorer lent already) open for --batch-wait ms, then sends it. */
  hold(upstreams: Upstreams, lease: Lease, leader: BatchMember, template: ForwardedRequest): void {
    const {key} = leader.rows
    const previous = this.open.get(key)
    if (previous) this.flush(previous)
    const call: OpenCall = {upstreams, lease, leader, template, timer: setTimeout(() => this.flush(call), this.waitMs)}
    this.open.set(key, call)
  }

  private flush(call: OpenCall): void {
    clearTimeout(call.timer)
    if (this.open.get(call.leader.rows.key) === call) this.open.delete(call.leader.rows.key)
    const {upstreams, lease, leader} = call
    if (leader.followers.length > 0) this.run(upstreams, lease, leader, call.template)
    else if (leader.sink.settled) upstreams.release(lease, leader.sink.outcome ?? 'client-closed')
    else leader.sink.send(lease)
  }

  /** The flights of the calls sent to `upstreams` (requests for other scorers never join them). */
  flightsOf(upstreams: Upstreams): Flights {
    let flights = this.flights.get(upstreams)
    if (!flights) this.flights.set(upstreams, (flights = new Flights()))
    return flights
  }

  /** A member for a request that has to wait, when its body can merge. */
  member(body: Buffer, sink: MemberSink): BatchMember | undefined {
    if (!this.enabled) return undefined
    const rows = readRows(body)
    return rows && rows.rows <= this.options.maxRows ? new BatchMember(rows, sink, this.options.maxRows) : undefined
  }

  /** `member` waits behind a call of its kind in flight (true), or not any more. */
  readonly waits = (member: BatchMember | undefined, waiting: boolean): void => member?.wait(waiting, this.options.onWaiting)

  /** Sends `leader` and its followers as one call on `lease`, which it gives back when the call ends. */
  run(upstreams: Upstreams, lease: Lease, leader: BatchMember, template: ForwardedRequest): void {
    const {key} = leader.rows
    const {slot} = lease
    const flights = this.flightsOf(upstreams)
    for (const m of [leader, ...leader.followers]) this.waits(m, false)
    flights.took(key, slot)
    // The call is in flight until its lease goes back; then the next call of its kind may go.
    const tracked: Upstreams = {
      acquire: (joinable) => upstreams.acquire(joinable),
      release: (given, outcome) => {
        upstreams.release(given, outcome)
        flights.landed(key, slot)
      },
      share: upstreams.share && ((given) => upstreams.share!(given)),
    }
    runMergedCall(tracked, lease, leader, template, {onBatch: this.options.onBatch, onNotRowAligned: () => this.stop()})
  }

  private stop(): void {
    if (!this.enabled) return
    this.enabled = false
    this.options.log?.warn(
      "--batch: the model's output is not one prediction per input row (a list as long as the rows), so it cannot be split: batching is off for this model from now on",
    )
  }
}

/** --batch as a lending policy: batchable requests go through `batcher`, the rest to the lending it wraps. */
export function batching(batcher: Batcher): LendingPolicy {
  return (next) => (upstreams, port) =>
    batcher.enabled && batchable(port.req, port.body) ? new BatchLending(batcher, upstreams, port) : next(upstreams, port)
}

/** A batchable exchange's lending: it may join a held call, take queued requests along, or be taken along. */
class BatchLending implements Lending, Launchable {
  /** This request as a member, once its body was parsed (undefined: its rows cannot merge). */
  private own: BatchMember | undefined
  private parsed = false
  /** The scorer it was sent to alone, as a call of its kind (until it ends). */
  private flyingOn: number | undefined
  private pending: Promise<Acquired> | undefined

  constructor(
    private readonly batcher: Batcher,
    private readonly upstreams: Upstreams,
    private readonly port: ExchangePort,
  ) {}

  get member(): BatchMember {
    return this.joinable()!
  }

  start(): void {
    const {batcher, upstreams, port} = this
    if (batcher.waitMs > 0) {
      // --batch-wait: a call held open for compatible requests takes this one along.
      if (this.joinable() && batcher.joinOpen(this.joinable()!)) return
      const got = upstreams.acquire(this.joinable)
      if (!(got instanceof Promise) && isLease(got) && this.joinable()) {
        // A free scorer, held for compatible requests to join before the call goes.
        port.record.scorer = got.slot
        batcher.hold(upstreams, got, this.joinable()!, port.target)
        return
      }

      this.acquired(got)
      return
    }

    const own = this.joinable()
    const flights = batcher.flightsOf(upstreams)
    const got = upstreams.acquire(this.joinable)
    if (own && !own.full && !(got instanceof Promise) && isLease(got) && flights.flyingOn(own.rows.key, got.slot)) {
      // The scorer it would get runs a call of its kind already: it waits to go with the next one
      // rather than take another of that scorer's slots (a scorer without one takes it at once).
      upstreams.release(got, 'ok')
      batcher.waits(own, true) // before it joins: a call it fills goes at once
      flights.wait(this)
      return
    }

    this.acquired(got)
  }

  /** Asks for a scorer: now, or queued (where compatible queued requests may join it). */
  launch(): void {
    this.acquired(this.upstreams.acquire(this.joinable))
  }

  private acquired(got: Acquired | Promise<Acquired>): void {
    const {batcher, upstreams, port} = this
    if (!(got instanceof Promise)) {
      this.onAcquired(got)
      return
    }

    batcher.waits(this.own, false) // the call it leads is in the scheduler's queue now
    this.pending = got
    void got.then((value) => {
      this.pending = undefined
      if (!port.settled) this.onAcquired(value)
      // The requests it took along still need their merged call.
      else if (isLease(value) && this.own && this.own.followers.length > 0) batcher.run(upstreams, value, this.own, port.target)
      else if (isLease(value)) upstreams.release(value, port.outcome ?? 'client-closed')
      else if (!isLease(value) && 'refused' in value) this.refuseFollowers(value)
    })
  }

  end(): void {
    this.batcher.waits(this.own, false)
    this.own?.onLeave?.()
    if (this.pending) this.upstreams.cancel?.(this.pending)
    // Sent alone as a call of its kind: the next call of that kind may go.
    if (this.flyingOn !== undefined) {
      const slot = this.flyingOn
      this.flyingOn = undefined
      this.batcher.flightsOf(this.upstreams).landed(this.own!.rows.key, slot)
    }
  }

  /** With requests to take along, the merged call holds the lease; this exchange is one of its members. */
  private onAcquired(value: Acquired): void {
    const {own, port} = this
    this.batcher.waits(own, false)
    if (isLease(value) && own && own.followers.length > 0) {
      port.record.scorer = value.slot
      port.sayVersion(value)
      this.batcher.run(this.upstreams, value, own, port.target)
      return
    }

    if (isLease(value) && own && !port.settled && this.batcher.waitMs === 0) {
      this.flyingOn = value.slot
      this.batcher.flightsOf(this.upstreams).took(own.rows.key, value.slot)
    }

    if (!isLease(value) && 'refused' in value) this.refuseFollowers(value)
    if (!port.settled) deliver(port, value)
    else if (isLease(value)) this.upstreams.release(value, port.outcome ?? 'client-closed')
  }

  /** No scorer for the call this request leads: the requests that joined it are refused too. */
  private refuseFollowers(refusal: Refusal): void {
    for (const m of this.own?.followers ?? []) if (!m.sink.settled) m.sink.refuse(refusal)
  }

  /** Parses the body once. */
  private readonly joinable = (): BatchMember | undefined => {
    if (this.parsed) return this.own
    this.parsed = true
    const {memory} = this.port.body
    this.own = memory && this.batcher.member(memory, this.port)
    return this.own
  }
}
