// Where requests go across generations: new ones to the serving generation, each lease back to the
// generation it came from; a switch is one assignment, and the generation it replaces drains and stops.
import type {ScorerStatus} from '../proxy/observe.js'
import type {ExitInfo} from '../scorer/process.js'
import type {Acquired, ExchangeOutcome, Joinable, Lease, Upstreams} from '../upstream.js'
import type {ServedModel, ServingSet} from './generation.js'

export class Switchboard implements Upstreams, ScorerStatus {
  /** Generations that were replaced and still finish their requests. */
  private readonly retiring = new Set<ServingSet>()
  /** A generation being started for a reload: counted as starting, stopped with the rest, never lent. */
  private preparing: ServingSet | undefined
  private stopped = false

  constructor(private serving: ServingSet) {}

  get current(): ServingSet {
    return this.serving
  }

  get served(): ServedModel {
    return this.serving.served
  }

  // ---- Upstreams: new requests to the serving generation, leases back to their own ----

  acquire(joinable?: () => Joinable | undefined): Acquired | Promise<Acquired> {
    return this.serving.supervisor.acquire(joinable)
  }

  share(lease: Lease): Lease {
    return this.ownerOf(lease).share(lease)
  }

  release(lease: Lease, outcome: ExchangeOutcome): void {
    this.ownerOf(lease).release(lease, outcome)
  }

  cancel(pending: Promise<Acquired>): void {
    // A no-op in every generation whose queue does not hold it.
    for (const set of this.sets()) set.supervisor.cancel(pending)
  }

  private ownerOf(lease: Lease) {
    return (this.sets().find((set) => set.supervisor.owns(lease)) ?? this.serving).supervisor
  }

  private sets(): ServingSet[] {
    return [this.serving, ...this.retiring]
  }

  // ---- switching ----

  /** `next` is starting beside the serving generation (until switchTo or abandon). */
  prepare(next: ServingSet): void {
    this.preparing = next
  }

  /** The generation being prepared failed: it is no longer counted. */
  abandon(next: ServingSet): void {
    if (this.preparing === next) this.preparing = undefined
  }

  /**
   * Makes `next` (started: every scorer ready) the serving generation at once. The one it replaces takes
   * no new request; its requests in flight and queued finish (up to `drainMs`), then its scorers stop
   * and its environment is released. Resolves with the replaced generation's exits once that is done.
   */
  async switchTo(next: ServingSet, drainMs: number, stopGraceMs: number, force?: AbortSignal): Promise<ExitInfo[]> {
    const previous = this.serving
    this.abandon(next)
    if (this.stopped) {
      // Stopping already: the new generation never serves.
      await next.supervisor.stop(0, force)
      await next.release()
      return []
    }

    this.serving = next
    this.retiring.add(previous)
    try {
      return await previous.supervisor.retireAll(drainMs, stopGraceMs, force)
    } finally {
      this.retiring.delete(previous)
      await previous.release()
    }
  }

  /** Stops every generation's scorers (serve's own stop), the one being prepared too. */
  async stop(graceMs: number, force?: AbortSignal): Promise<ExitInfo[]> {
    this.stopped = true
    const all = this.preparing ? [...this.sets(), this.preparing] : this.sets()
    const exits = await Promise.all(all.map(async (set) => set.supervisor.stop(graceMs, force)))
    return exits.flat()
  }

  /** Synchronous last resort (process 'exit'): SIGKILL every generation's scorers. */
  killNow(): void {
    for (const set of this.sets()) set.supervisor.killNow()
    this.preparing?.supervisor.killNow()
  }

  // ---- ScorerStatus: every generation's scorers, the serving one's health ----

  counts(): Record<'starting' | 'ready' | 'retiring', number> {
    const total = {starting: 0, ready: 0, retiring: 0}
    for (const set of this.sets()) {
      const counts = set.supervisor.counts()
      total.starting += counts.starting
      // A replaced generation's ready scorers take no new requests: they are retiring.
      total[set === this.serving ? 'ready' : 'retiring'] += counts.ready
      total.retiring += counts.retiring
    }

    // A generation being prepared serves nothing yet: all of its scorers are starting.
    const preparing = this.preparing?.supervisor.counts()
    if (preparing) total.starting += preparing.starting + preparing.ready + preparing.retiring
    return total
  }

  get queueDepth(): number {
    return this.sets().reduce((sum, set) => sum + set.supervisor.queueDepth, 0)
  }

  get outstanding(): number {
    return this.sets().reduce((sum, set) => sum + set.supervisor.outstanding, 0)
  }

  get unhealthy(): string | undefined {
    return this.serving.supervisor.unhealthy
  }

  get mode(): string {
    return this.serving.supervisor.mode
  }
}
