// Runs N scorer processes behind the proxy and lends them to requests: the slots' lifecycle is slots.ts's,
// lending the scheduler's, liveness pings liveness.ts's; here they meet as Upstreams, and stop together.
import type {Acquired, ExchangeOutcome, Joinable, Lease, Upstreams} from '../upstream.js'
import {sleep} from '../util/abort.js'
import {Liveness} from './liveness.js'
import type {ExitInfo} from './process.js'
import type {Scorer} from './scorer.js'
import {Scheduler} from './scheduler.js'
import {Slots} from './slots.js'
import type {SupervisorOptions} from './supervisor-options.js'

export {DEFAULT_RESTART_POLICY, type RestartPolicy} from './restart-policy.js'
export {type RestartReason} from './scorer.js'
export {summarizeError, type WarmupRequest} from './probe.js'
export type {SupervisorEvents, SupervisorOptions} from './supervisor-options.js'

export class Supervisor implements Upstreams {
  private readonly slots: Slots
  private readonly scheduler: Scheduler<Scorer>
  private readonly liveness: Liveness
  private idleWaiter: (() => void) | undefined

  constructor(private readonly options: SupervisorOptions) {
    this.slots = new Slots(options, {drain: () => this.scheduler.drain(), left: () => this.checkIdle()})
    this.scheduler = new Scheduler({
      members: () => this.slots.scorers,
      limit: Math.min(options.maxConcurrency, options.backend.maxConcurrency ?? Number.POSITIVE_INFINITY),
      maxQueue: options.maxQueue,
      unavailable: () => this.unavailableReason(),
    })
    this.liveness = new Liveness({
      intervalMs: options.livenessIntervalMs,
      readyPath: options.backend.readyPath,
      log: options.log,
      scorers: () => this.slots.scorers,
      onUnresponsive: (scorer) => {
        scorer.state = 'retiring'
        void this.slots.end(scorer, 'unresponsive')
        this.scheduler.drain()
      },
    })
  }

  /**
   * Starts every slot; resolves when the first scorer is ready (warm-up included), the others join as
   * they get there. Rejects (SCORER_START_FAILED, WARMUP_FAILED, LOAD_TIMEOUT) when a scorer fails before
   * any was ready: a model that cannot load once will not load on a retry. Resolves false if `signal` aborts.
   */
  async start(signal: AbortSignal): Promise<boolean> {
    const aborted = new Promise<boolean>((resolve) => {
      if (signal.aborted) resolve(false)
      signal.addEventListener('abort', () => resolve(false), {once: true})
    })
    for (let index = 0; index < this.options.workers; index++) void this.slots.spawn(index, true)
    const result = await Promise.race([this.slots.firstReady.promise, aborted])
    if (result && this.options.livenessIntervalMs > 0) this.liveness.start()
    return result
  }

  // ---- lending scorers to requests: the scheduler's ----

  acquire(joinable?: () => Joinable | undefined): Acquired | Promise<Acquired> {
    return this.scheduler.acquire(joinable)
  }

  share(lease: Lease): Lease {
    return this.scheduler.share(lease as Scorer)
  }

  release(lease: Lease, outcome: ExchangeOutcome): void {
    const scorer = lease as Scorer
    this.scheduler.release(scorer)
    if (outcome === 'timeout') this.slots.watchdog.timedOut(scorer)
    if (scorer.state === 'retiring' && scorer.outstanding === 0) void this.slots.end(scorer, undefined)
    this.checkIdle()
  }

  /** Whether `lease` is one of this supervisor's scorers (of any state). */
  owns(lease: Lease): boolean {
    return this.slots.owns(lease as Scorer)
  }

  cancel(pending: Promise<Acquired>): void {
    this.scheduler.cancel(pending)
  }

  private unavailableReason(): string {
    const {unhealthy} = this.slots.restarts
    if (unhealthy) return `${unhealthy}; not restarting any more.`
    if (this.slots.stopping) return 'the server is shutting down.'
    return 'every scorer is restarting; retry shortly.'
  }

  // ---- state for /readyz, /livez and /metrics ----

  get unhealthy(): string | undefined {
    return this.slots.restarts.unhealthy
  }

  get queueDepth(): number {
    return this.scheduler.queueDepth
  }

  /** How scorers are made: spawned, or forked from a process that loaded the model (--preload). */
  get mode(): string {
    return this.slots.mode
  }

  get restarts(): number {
    return this.slots.restarts.count
  }

  counts(): Record<'starting' | 'ready' | 'retiring', number> {
    return this.slots.counts()
  }

  /** The processes serving now: each live scorer's and the backend's own (memory accounting). */
  pids(): number[] {
    const scorers = this.slots.scorers.filter((scorer) => scorer.state !== 'gone').map((scorer) => scorer.process.pid)
    return [...scorers, ...(this.options.backend.pids?.() ?? [])]
  }

  /** Requests running on each slot's scorers, for metrics. */
  get outstanding(): number {
    let total = 0
    for (const scorer of this.slots.scorers) total += scorer.outstanding
    return total
  }

  // ---- stopping ----

  /**
   * A newer generation took over: no more restarts; requests in flight (and any still queued here) finish
   * on these scorers for up to `drainMs`, then every scorer stops as stop() does.
   */
  async retireAll(drainMs: number, stopGraceMs: number, force?: AbortSignal): Promise<ExitInfo[]> {
    this.slots.draining = true
    this.liveness.stop()
    this.slots.restarts.cancel()
    if (!this.idle()) {
      const idle = new Promise<void>((resolve) => {
        this.idleWaiter = resolve
      })
      const cut = new AbortController()
      const signals = force ? AbortSignal.any([cut.signal, force]) : cut.signal
      await Promise.race([idle, sleep(drainMs, signals)])
      cut.abort()
      this.idleWaiter = undefined
    }

    return this.stop(stopGraceMs, force)
  }

  private idle(): boolean {
    return this.outstanding === 0 && this.scheduler.queueDepth === 0
  }

  private checkIdle(): void {
    if (this.idleWaiter && this.idle()) this.idleWaiter()
  }

  /** Stops every scorer: SIGTERM, then SIGKILL after the grace (at once when `force` aborts). */
  async stop(graceMs: number, force?: AbortSignal): Promise<ExitInfo[]> {
    this.slots.stopping = true
    this.liveness.stop()
    this.slots.restarts.cancel()
    this.scheduler.drain()
    const scorers = [...this.slots.scorers]
    for (const scorer of scorers) {
      scorer.endedBy ??= 'stop'
      this.slots.watchdog.forget(scorer)
    }

    const exits = await Promise.all(scorers.map(async (scorer) => scorer.process.stop(graceMs, force)))
    await Promise.all(scorers.map(async (scorer) => scorer.dispatcher.destroy()))
    await this.options.backend.stop?.(graceMs, force)
    return exits
  }

  /** Synchronous last resort (process 'exit'): SIGKILL every scorer's process group. */
  killNow(): void {
    for (const scorer of this.slots.scorers) scorer.process.killNow()
    this.options.backend.killNow?.()
  }
}
