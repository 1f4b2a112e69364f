// Lends scorers to requests: the ready one with the fewest requests under the limit (ties rotate),
// else a bounded FIFO queue, else a refusal. Knows nothing about processes.
import {JOINED, type Acquired, type Joinable, type Joined, type Lease, type Refusal} from '../upstream.js'

/** What the scheduler needs to know of a scorer. */
export interface Schedulable extends Lease {
  readonly ready: boolean
  /** Requests lent and not yet given back. */
  outstanding: number
  /** What counts against the limit: outstanding, plus timed-out work that may still run. */
  readonly load: number
}

export interface SchedulerOptions<S extends Schedulable> {
  /** The scorers, in a stable order (read on every pick). */
  readonly members: () => readonly S[]
  /** Requests one scorer works on at once. */
  readonly limit: number
  /** Requests that may wait for a scorer; beyond that, a queue_full refusal. */
  readonly maxQueue: number
  /** Why no scorer is available, for the refusal. */
  readonly unavailable: () => string
}

interface Waiter<S> {
  readonly resolve: (value: S | Refusal | Joined) => void
  readonly promise: Promise<S | Refusal | Joined>
  readonly joinable: Joinable | undefined
}

export class Scheduler<S extends Schedulable> {
  private readonly queue: Array<Waiter<S>> = []
  private next = 0

  constructor(private readonly options: SchedulerOptions<S>) {}

  get queueDepth(): number {
    return this.queue.length
  }

  /** A scorer now, a promise of one (queued), or a refusal. */
  acquire(joinable?: () => Joinable | undefined): S | Refusal | Promise<S | Refusal | Joined> {
    const scorer = this.pick()
    if (scorer) {
      scorer.outstanding++
      return scorer
    }

    if (!this.options.members().some((s) => s.ready)) return {refused: 'unavailable', detail: this.options.unavailable()}
    if (this.queue.length >= this.options.maxQueue) {
      return {refused: 'queue_full', detail: `${this.queue.length} requests are already queued`}
    }

    let resolve!: Waiter<S>['resolve']
    const promise = new Promise<S | Refusal | Joined>((r) => {
      resolve = r
    })
    this.queue.push({resolve, promise, joinable: joinable?.()})
    return promise
  }

  /** A lease came back: its capacity goes to the queue. */
  release(scorer: S): void {
    scorer.outstanding--
    this.drain()
  }

  /** Withdraws a queued acquire() (a no-op once it resolved). */
  cancel(pending: Promise<Acquired>): void {
    const at = this.queue.findIndex((w) => w.promise === pending)
    if (at >= 0) this.queue.splice(at, 1)
  }

  /** Hands free capacity to queued requests; refuses them all when no scorer is ready any more. */
  drain(): void {
    while (this.queue.length > 0) {
      const scorer = this.pick()
      if (!scorer) break
      scorer.outstanding++
      const waiter = this.queue.shift()!
      if (waiter.joinable) this.gather(waiter.joinable)
      waiter.resolve(scorer)
    }

    if (this.queue.length > 0 && !this.options.members().some((s) => s.ready)) {
      const refusal: Refusal = {refused: 'unavailable', detail: this.options.unavailable()}
      for (const waiter of this.queue.splice(0)) waiter.resolve(refusal)
    }
  }

  /** One more request on a scorer already lent, over the limit: a merged call's members sent alone. */
  share(scorer: S): S {
    scorer.outstanding++
    return scorer
  }

  /** Queued requests that `head` takes along (in queue order) leave the queue, answered by its call. */
  private gather(head: Joinable): void {
    for (let i = 0; i < this.queue.length;) {
      const other = this.queue[i]!
      if (other.joinable && head.join(other.joinable)) {
        this.queue.splice(i, 1)
        other.resolve(JOINED)
      } else i++
    }
  }

  /** The ready scorer with the lowest load under the limit; ties rotate. */
  private pick(): S | undefined {
    const scorers = this.options.members()
    const count = scorers.length
    const {limit} = this.options
    let best: S | undefined
    for (let i = 0; i < count; i++) {
      const scorer = scorers[(this.next + i) % count]!
      if (scorer.ready && scorer.load < limit && (!best || scorer.load < best.load)) best = scorer
    }

    this.next = count > 0 ? (this.next + 1) % count : 0
    return best
  }
}
