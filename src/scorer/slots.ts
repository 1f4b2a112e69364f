// A supervisor's scorer slots through their lifecycle: spawn, load and warm-up (bring-up.ts), ready,
// retire, exit; a failed slot restarts with back-off (restarts.ts), a stuck one is replaced (watchdog.ts).
import {rm} from 'node:fs/promises'

import {createDeferred} from '../util/deferred.js'
import {bringUp} from './bring-up.js'
import {launchScorer} from './launch.js'
import {describeExit, type ExitInfo} from './process.js'
import {DEFAULT_RESTART_POLICY} from './restart-policy.js'
import {Restarts} from './restarts.js'
import type {RestartReason, Scorer} from './scorer.js'
import {exitedBeforeReady, launchFailed, loadTimedOut, warmupFailed} from './start-failures.js'
import type {SupervisorOptions} from './supervisor-options.js'
import {StuckWatchdog} from './watchdog.js'

export interface SlotsHooks {
  /** Capacity changed (a scorer ready or gone, restarts given up): queued requests may go on. */
  readonly drain: () => void
  /** A scorer left: the supervisor may be idle now. */
  readonly left: () => void
}

export class Slots {
  readonly scorers: Scorer[] = []
  readonly restarts: Restarts
  readonly watchdog: StuckWatchdog
  /** Settles once: true when the first scorer is ready, rejected when one fails before that. */
  readonly firstReady = createDeferred<boolean>()
  /** Stopping: nothing new starts, nothing restarts. */
  stopping = false
  /** Retiring as a whole (a newer generation took over): no restarts; stops once idle. */
  draining = false
  private everReady = false
  /** The backend said why scorers exit 127 (once is enough). */
  private explained = false
  /** Every scorer these slots made, to tell their leases from another generation's. */
  private readonly made = new WeakSet<Scorer>()

  constructor(
    private readonly options: SupervisorOptions,
    private readonly hooks: SlotsHooks,
  ) {
    this.restarts = new Restarts(options.workers, options.restart ?? DEFAULT_RESTART_POLICY, options.log)
    this.watchdog = new StuckWatchdog({
      graceMs: options.stuckGraceMs,
      log: options.log,
      active: () => !this.stopping && !this.draining && !this.restarts.unhealthy,
      replace: (scorer) => {
        this.restarts.countReplacement()
        this.options.events?.onRestart?.('stuck')
        // The old one serves on (minus its stuck capacity) until the new one is ready, then goes.
        void this.spawn(scorer.slot, false)
      },
    })
  }

  /** How scorers are made: spawned, or forked from a process that loaded the model (--preload). */
  get mode(): string {
    return this.options.backend.mode?.() ?? 'spawn'
  }

  owns(scorer: Scorer): boolean {
    return this.made.has(scorer)
  }

  counts(): Record<'starting' | 'ready' | 'retiring', number> {
    const counts = {starting: 0, ready: 0, retiring: 0}
    for (const scorer of this.scorers) if (scorer.state !== 'gone') counts[scorer.state]++
    return counts
  }

  /** Starts slot `index`'s next scorer; `initial`: the supervisor's start, not a restart or replacement. */
  async spawn(index: number, initial: boolean): Promise<void> {
    const slot = this.restarts.slots[index]!
    slot.restartTimer = undefined
    if (slot.failedAt === 0 && !initial) slot.failedAt = performance.now()
    const start = ++slot.starts
    const {backend, log, workers} = this.options
    const label = workers === 1 ? 'scorer' : `scorer ${index}`
    const socketPath = `${this.options.socketDir}/s${index}-${start}.sock`
    const first = initial && index === 0
    const preload = backend.mode?.() === 'preload' ? ', preload' : ''
    const model = (this.options.modelGeneration ?? 1) > 1 ? `, model generation ${this.options.modelGeneration}` : ''
    const spawning = first
      ? log.phase(`start scorer (${backend.server}, ${workers} process${workers === 1 ? '' : 'es'}${preload}${model})`)
      : undefined

    let scorer: Scorer
    try {
      const {baseEnv, stdout, stderr, cwd} = this.options
      scorer = await launchScorer(backend, index, start, socketPath, {baseEnv, label, stdout, stderr, cwd})
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
    if (!first) log.info(`${label} started (pid ${scorer.process.pid}, start ${start}${this.mode === 'preload' ? ', forked' : ''}${model})`)
    void scorer.process.exited.then((exit) => {
      // A Unix socket file outlives its server (the R scorer leaves it behind): a restart uses a new name.
      void rm(socketPath, {force: true})
      this.onExit(scorer, exit)
    })

    const {readyPath} = backend
    const {loadTimeoutMs, warmup, timeoutMs, events} = this.options
    const brought = await bringUp(scorer, label, first, {
      readyPath,
      log,
      loadTimeoutMs,
      warmup,
      timeoutMs,
      events,
      stopping: () => this.stopping,
    })
    if (brought === 'load-timeout') this.onLoadTimeout(scorer)
    if (typeof brought === 'object') {
      if (!this.everReady) this.failStart(warmupFailed(warmup!.source, brought.warmupFailed))
      await this.end(scorer, 'warmup-failed')
    }

    if (brought !== 'warm' || this.stopping || scorer.state !== 'starting') return
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

    if (this.options.requireAll && this.counts().ready < workers) return
    this.everReady = true
    // Older scorers of this slot (a replacement) leave the rotation and go once idle.
    for (const other of this.scorers) {
      if (other !== scorer && other.slot === index && other.state === 'ready') this.retire(other)
    }

    this.firstReady.resolve(true)
    this.hooks.drain()
  }

  /** A scorer that did not load within --load-timeout: the first one ends the start, later ones are restarted. */
  private onLoadTimeout(scorer: Scorer): void {
    const seconds = Math.round((this.options.loadTimeoutMs ?? 0) / 1000)
    const what = `${scorer.label} did not answer ${this.options.backend.readyPath} within ${seconds} s of its start (--load-timeout)`
    if (this.everReady) this.options.log.warn(`${what}: restarting it.`)
    else this.failStart(loadTimedOut(what))
    void this.end(scorer, 'load-timeout')
  }

  /** Takes a scorer out of the rotation; it ends once its requests are done (or at once if idle). */
  private retire(scorer: Scorer): void {
    scorer.state = 'retiring'
    if (scorer.outstanding === 0) void this.end(scorer, undefined)
  }

  /** Stops a scorer's process (SIGTERM, then SIGKILL); `reason` marks it as a failure to restart from. */
  async end(scorer: Scorer, reason: RestartReason | undefined): Promise<void> {
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
    this.hooks.left()
    if (this.stopping || this.draining || endedBy === 'stop') {
      this.hooks.drain()
      return
    }

    const reason: RestartReason = endedBy ?? 'exited'
    if (!this.everReady) {
      // Before anything was ready a failure ends the start (a warm-up failure has already said why).
      this.failStart(exitedBeforeReady(exit, scorer.process.stderrTail(1).trim()))
      return
    }

    if (reason === 'exited') this.options.log.warn(`${scorer.label} ${describeExit(exit)}${wasReady ? ' while serving' : ' while starting'}.`)
    if (exit.exitCode === 127) void this.explainMissingCommand()
    this.options.events?.onRestart?.(reason)
    this.hooks.drain()
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
    const going = this.restarts.failed(index, readyAt, label, {
      // A replacement already on its way covers this slot.
      covered: this.scorers.some((s) => s.slot === index && s.state === 'starting'),
      preload: this.mode === 'preload',
      restart: () => void this.spawn(index, false),
    })
    if (!going) this.hooks.drain()
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
}
