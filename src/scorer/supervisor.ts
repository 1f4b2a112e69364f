// Runs N scorer processes behind the proxy through their lifecycle: spawn, ping until loaded, warm-up,
// ready, retire, exit. Lending them to requests is the scheduler's; when to restart, the restart policy's.
import {rm} from 'node:fs/promises'

import type {Acquired, ExchangeOutcome, Joinable, Lease, Upstreams} from '../upstream.js'
import {sleep} from '../util/abort.js'
import {createDeferred} from '../util/deferred.js'
import {Liveness} from './liveness.js'
import {launchScorer} from './launch.js'
import type {RestartReason, Scorer} from './scorer.js'
import {waitUntilAnswering, warmUp} from './probe.js'
import {describeExit, type ExitInfo} from './process.js'
import {DEFAULT_RESTART_POLICY} from './restart-policy.js'
import {Restarts} from './restarts.js'
import {Scheduler} from './scheduler.js'
import {exitedBeforeReady, launchFailed, loadTimedOut, warmupFailed} from './start-failures.js'
import type {SupervisorOptions} from './supervisor-options.js'
import {StuckWatchdog} from './watchdog.js'

export {DEFAULT_RESTART_POLICY, type RestartPolicy} from './restart-policy.js'
export {type RestartReason} from './scorer.js'
export {summarizeError, type WarmupRequest} from './probe.js'
export type {SupervisorEvents, SupervisorOptions} from './supervisor-options.js'

export class Supervisor implements Upstreams {
  private readonly scorers: Scorer[] = []
  private readonly slotRestarts: Restarts
  private readonly scheduler: Scheduler<Scorer>
  private readonly liveness: Liveness
  private readonly watchdog: StuckWatchdog
  private stopping = false
  private everReady = false
  /** Settles once: true when the first scorer is ready, rejected when one fails before that. */
  private readonly firstReady = createDeferred<boolean>()
  /** The backend said why scorers exit 127 (once is enough). */
  private explained = false
  /** Every scorer this supervisor made, to tell its leases from another generation's. */
  private readonly made = new WeakSet<Scorer>()
  /** Retiring as a whole (a newer generation took over): no restarts; stops once idle. */
  private draining = false
  private idleWaiter: (() => void) | undefined

  constructor(private readonly options: SupervisorOptions) {
    const {log} = options
    this.slotRestarts = new Restarts(options.workers, options.restart ?? DEFAULT_RESTART_POLICY, log)
    this.scheduler = new Scheduler({
      members: () => this.scorers,
      limit: Math.min(options.maxConcurrency, options.backend.maxConcurrency ?? Number.POSITIVE_INFINITY),
      maxQueue: options.maxQueue,
      unavailable: () => this.unavailableReason(),
    })
    this.liveness = new Liveness({
      intervalMs: options.livenessIntervalMs,
      readyPath: options.backend.readyPath,
      log,
      scorers: () => this.scorers,
      onUnresponsive: (scorer) => {
        scorer.state = 'retiring'
        void this.end(scorer, 'unresponsive')
        this.scheduler.drain()
      },
    })
    this.watchdog = new StuckWatchdog({
      graceMs: options.stuckGraceMs,
      log,
      active: () => !this.stopping && !this.draining && !this.slotRestarts.unhealthy,
      replace: (scorer) => {
        this.slotRestarts.countReplacement()
        this.options.events?.onRestart?.('stuck')
        // The old one serves on (minus its stuck capacity) until the new one is ready, then goes.
        void this.spawn(scorer.slot, false)
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
    for (let index = 0; index < this.options.workers; index++) void this.spawn(index, true)
    const result = await Promise.race([this.firstReady.promise, aborted])
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
    if (outcome === 'timeout') this.watchdog.timedOut(scorer)
    if (scorer.state === 'retiring' && scorer.outstanding === 0) void this.end(scorer, undefined)
    this.checkIdle()
  }

  /** Whether `lease` is one of this supervisor's scorers (of any state). */
  owns(lease: Lease): boolean {
    return this.made.has(lease as Scorer)
  }

  cancel(pending: Promise<Acquired>): void {
    this.scheduler.cancel(pending)
  }

  private unavailableReason(): string {
    const {unhealthy} = this.slotRestarts
    if (unhealthy) return `${unhealthy}; not restarting any more.`
    if (this.stopping) return 'the server is shutting down.'
    return 'every scorer is restarting; retry shortly.'
  }

  // ---- state for /readyz, /livez and /metrics ----

  get unhealthy(): string | undefined {
    return this.slotRestarts.unhealthy
  }

  get queueDepth(): number {
    return this.scheduler.queueDepth
  }

  /** How scorers are made: spawned, or forked from a process that loaded the model (--preload). */
  get mode(): string {
    return this.options.backend.mode?.() ?? 'spawn'
  }

  get restarts(): number {
    return this.slotRestarts.count
  }

  counts(): Record<'starting' | 'ready' | 'retiring', number> {
    const counts = {starting: 0, ready: 0, retiring: 0}
    for (const scorer of this.scorers) if (scorer.state !== 'gone') counts[scorer.state]++
    return counts
  }

  /** Requests running on each slot's scorers, for metrics. */
  get outstanding(): number {
    let total = 0
    for (const scorer of this.scorers) total += scorer.outstanding
    return total
  }

  // ---- starting, restarting, replacing ----

  private async spawn(index: number, initial: boolean): Promise<void> {
    const slot = this.slotRestarts.slots[index]!
    slot.restartTimer = undefined
    if (slot.failedAt === 0 && !initial) slot.failedAt = performance.now()
    const generation = ++slot.generation
    const {backend, log} = this.options
    const label = this.options.workers === 1 ? 'scorer' : `scorer ${index}`
    const socketPath = `${this.options.socketDir}/s${index}-${generation}.sock`
    const first = initial && index === 0
    const preload = backend.mode?.() === 'preload' ? ', preload' : ''
    const model = (this.options.modelGeneration ?? 1) > 1 ? `, model generation ${this.options.modelGeneration}` : ''
    const spawning = first
      ? log.phase(`start scorer (${backend.server}, ${this.options.workers} process${this.options.workers === 1 ? '' : 'es'}${preload}${model})`)
      : undefined

    let scorer: Scorer
    try {
      const {baseEnv, stdout, stderr, cwd} = this.options
      scorer = await launchScorer(backend, index, generation, socketPath, {baseEnv, label, stdout, stderr, cwd})
      scorer.modelVersion = this.options.modelVersion
      this.made.add(scorer)
    } catch (error) {
      this.onStartError(error, index)
      return
    }

    if (this.stopping || this.draining) {
      await scorer.process.stop(0)
      return
    }

    this.scorers.push(scorer)
    const spawnMs = spawning?.done(`pid ${scorer.process.pid}`) ?? 0
    if (first) this.options.events?.onPhase?.('spawn', spawnMs)
    if (!first)
      log.info(`${label} started (pid ${scorer.process.pid}, generation ${generation}${this.mode === 'preload' ? ', forked' : ''}${model})`)
    void scorer.process.exited.then((exit) => {
      // A Unix socket file outlives its server (the R scorer leaves it behind): a restart uses a new name.
      void rm(socketPath, {force: true})
      this.onExit(scorer, exit)
    })

    const loading = log.phase(`load model in ${label}`, {live: true})
    const bound = this.options.loadTimeoutMs ?? 0
    const deadline = bound > 0 ? performance.now() + bound : Number.POSITIVE_INFINITY
    const loaded = await waitUntilAnswering(scorer, backend.readyPath, deadline, () => this.stopping)
    if (loaded === 'timeout') {
      this.onLoadTimeout(scorer)
      return
    }

    if (loaded === 'gone') return
    const loadMs = loading.done()
    if (first) this.options.events?.onPhase?.('load', loadMs)

    if (this.options.warmup) {
      const warming = log.phase(`warm-up prediction in ${label} (${this.options.warmup.source})`)
      const failure = await warmUp(scorer, this.options.warmup, this.options.timeoutMs)
      if (scorer.state !== 'starting') return
      if (failure) {
        log.warn(`${label}: the warm-up prediction failed: ${failure}`)
        if (!this.everReady) {
          this.failStart(warmupFailed(this.options.warmup.source, failure))
        }

        await this.end(scorer, 'warmup-failed')
        return
      }

      const warmupMs = warming.done()
      if (first) this.options.events?.onPhase?.('warmup', warmupMs)
    }

    if (this.stopping || scorer.state !== 'starting') return
    scorer.state = 'ready'
    scorer.readyAt = performance.now()
    if (slot.failedAt > 0) {
      const seconds = (performance.now() - slot.failedAt) / 1000
      slot.failedAt = 0
      this.options.events?.onRestarted?.(seconds)
      log.info(`${label} is ready (pid ${scorer.process.pid}), ${Math.round(seconds * 1000)} ms after its predecessor failed`)
    } else if (this.everReady) {
      log.info(`${label} is ready (pid ${scorer.process.pid})`)
    }

    if (this.options.requireAll && this.counts().ready < this.options.workers) return
    this.everReady = true
    // Older generations of this slot (a replacement) leave the rotation and go once idle.
    for (const other of this.scorers) {
      if (other !== scorer && other.slot === index && other.state === 'ready') this.retire(other)
    }

    this.firstReady.resolve(true)
    this.scheduler.drain()
  }

  /** A scorer that did not load within --load-timeout: the first one ends the start, later ones are restarted. */
  private onLoadTimeout(scorer: Scorer): void {
    const seconds = Math.round((this.options.loadTimeoutMs ?? 0) / 1000)
    const what = `${scorer.label} did not answer ${this.options.backend.readyPath} within ${seconds} s of its start (--load-timeout)`
    if (this.everReady) {
      this.options.log.warn(`${what}: restarting it.`)
    } else {
      this.failStart(loadTimedOut(what))
    }

    void this.end(scorer, 'load-timeout')
  }

  /** Takes a scorer out of the rotation; it ends once its requests are done (or at once if idle). */
  private retire(scorer: Scorer): void {
    scorer.state = 'retiring'
    if (scorer.outstanding === 0) void this.end(scorer, undefined)
  }

  /** Stops a scorer's process (SIGTERM, then SIGKILL); `reason` marks it as a failure to restart from. */
  private async end(scorer: Scorer, reason: RestartReason | undefined): Promise<void> {
    if (scorer.endedBy !== undefined || scorer.state === 'gone') return
    scorer.endedBy = reason ?? 'stop'
    if (reason === undefined) scorer.state = 'retiring'
    this.watchdog.forget(scorer)
    // A failed process gets no grace, nor one with stuck work (Python would wait for that thread to end):
    // their requests already had their answers.
    await scorer.process.stop(reason === undefined && scorer.stuck === 0 ? this.options.stopGraceMs : 0)
  }

  private onExit(scorer: Scorer, exit: ExitInfo): void {
    const wasReady = scorer.state === 'ready'
    const endedBy = scorer.endedBy
    scorer.state = 'gone'
    this.watchdog.forget(scorer)
    this.scorers.splice(this.scorers.indexOf(scorer), 1)
    // Requests still on it fail at once (502 envelopes), never hang.
    void scorer.dispatcher.destroy()
    this.checkIdle()
    if (this.stopping || this.draining || endedBy === 'stop') {
      this.scheduler.drain()
      return
    }

    const reason: RestartReason = endedBy ?? 'exited'
    if (!this.everReady) {
      // Before anything was ready a failure ends the start (a warm-up failure has already said why).
      const lastLine = scorer.process.stderrTail(1).trim()
      this.failStart(exitedBeforeReady(exit, lastLine))
      return
    }

    if (reason === 'exited') this.options.log.warn(`${scorer.label} ${describeExit(exit)}${wasReady ? ' while serving' : ' while starting'}.`)
    if (exit.exitCode === 127) void this.explainMissingCommand()
    this.options.events?.onRestart?.(reason)
    this.scheduler.drain()
    this.slotFailed(scorer.slot, scorer.readyAt, scorer.label)
  }

  /** Says once why scorers exit 127, when the backend can tell (its environment is gone). */
  private async explainMissingCommand(): Promise<void> {
    if (this.explained) return
    const why = await this.options.backend.diagnoseExit?.().catch(() => undefined)
    if (why && !this.explained) {
      this.explained = true
      this.options.log.warn(why)
    }
  }

  /** Counts a failure of a slot and restarts it with backoff, unless this makes a crash loop. */
  private slotFailed(index: number, readyAt: number, label: string): void {
    const going = this.slotRestarts.failed(index, readyAt, label, {
      // A replacement already on its way covers this slot.
      covered: this.scorers.some((s) => s.slot === index && s.state === 'starting'),
      preload: this.mode === 'preload',
      restart: () => void this.spawn(index, false),
    })
    if (!going) this.scheduler.drain()
  }

  private onStartError(error: unknown, index: number): void {
    const wrapped = launchFailed(error, index)
    if (!this.everReady) {
      this.failStart(wrapped)
      return
    }

    this.options.log.warn(wrapped.message)
    this.options.events?.onRestart?.('exited')
    this.slotFailed(index, 0, `scorer ${index}`)
  }

  private failStart(error: Error): void {
    this.firstReady.reject(error)
  }

  /**
   * A newer generation took over: no more restarts; requests in flight (and any still queued here) finish
   * on these scorers for up to `drainMs`, then every scorer stops as stop() does.
   */
  async retireAll(drainMs: number, stopGraceMs: number, force?: AbortSignal): Promise<ExitInfo[]> {
    this.draining = true
    this.liveness.stop()
    this.slotRestarts.cancel()
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
    this.stopping = true
    this.liveness.stop()
    this.slotRestarts.cancel()
    this.scheduler.drain()
    const scorers = [...this.scorers]
    for (const scorer of scorers) {
      scorer.endedBy ??= 'stop'
      this.watchdog.forget(scorer)
    }

    const exits = await Promise.all(scorers.map(async (scorer) => scorer.process.stop(graceMs, force)))
    await Promise.all(scorers.map(async (scorer) => scorer.dispatcher.destroy()))
    await this.options.backend.stop?.(graceMs, force)
    return exits
  }

  /** Synchronous last resort (process 'exit'): SIGKILL every scorer's process group. */
  killNow(): void {
    for (const scorer of this.scorers) scorer.process.killNow()
    this.options.backend.killNow?.()
  }
}
