// Follows a moving model reference: checks it every --reload-interval and on SIGHUP, one check at a
// time, and hands a changed target to the reload; remembers a target that failed until the reference moves.
import {messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import type {ModelTarget} from '../uri/resolve.js'

export type ReloadOutcome = 'switched' | 'failed' | 'unchanged'

export interface FollowerOptions {
  /** The model URI as the user gave it (credentials hidden), for the log. */
  readonly uri: string
  /** Seconds between checks, in ms (0: only on request, i.e. SIGHUP). */
  readonly intervalMs: number
  /** Whether the URI can name something else later (an alias, a stage, `latest`). */
  readonly moving: boolean
  readonly log: Logger
  /** What the URI names now; throws when the lookup fails (the tracking server is down, 5xx). */
  readonly lookUp: () => Promise<ModelTarget>
  /** The key of what is served now. */
  readonly currentKey: () => string
  /**
   * Prepares `target` beside the serving generation and switches to it; throws (the old one serves on) if it
   * cannot. `signal` aborts when it is no longer wanted (a newer target, SIGHUP): it stops and cleans up.
   */
  readonly reload: (target: ModelTarget, signal: AbortSignal) => Promise<void>
  readonly onOutcome?: (outcome: ReloadOutcome) => void
  readonly onCheckFailed?: () => void
}

export class Follower {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  /** A check asked for while one ran: taken after it (forced if any of those asks was). */
  private again: {forced: boolean} | undefined
  /** The target that failed last: not tried again until the reference names something else, or SIGHUP. */
  private failedKey: string | undefined
  private stopped = false
  /** The reload in progress: a newer target or SIGHUP cancels it (a hanging build blocks nothing). */
  private preparing: {readonly target: ModelTarget; readonly controller: AbortController; peeking: boolean} | undefined

  constructor(private readonly options: FollowerOptions) {}

  /** Starts the periodic checks (when there is something to follow). */
  start(): void {
    const {intervalMs, moving, log, uri} = this.options
    if (intervalMs <= 0) return
    if (!moving) {
      log.info(`--reload-interval: ${uri} is a fixed reference, nothing to follow (SIGHUP still reloads it)`)
      return
    }

    log.info(`following ${uri}: checking every ${intervalMs / 1000} s (SIGHUP: at once)`)
    this.schedule()
  }

  /**
   * A check now (SIGHUP: forced, so a target that failed is tried again; a local directory's key says what it holds);
   * while one runs, another is taken after it. Resolves when the check running now has ended.
   */
  async request(forced: boolean): Promise<void> {
    if (this.stopped) return
    const {preparing} = this
    if (this.running && preparing && !preparing.controller.signal.aborted) {
      if (forced) {
        this.again = {forced: true}
        this.cancel(preparing, 'SIGHUP asked for a new check')
      } else void this.peek(preparing)
      return this.running
    }

    if (this.running) {
      this.again = {forced: forced || (this.again?.forced ?? false)}
      return this.running
    }

    clearTimeout(this.timer)
    this.timer = undefined
    this.running = this.check(forced).finally(() => {
      this.running = undefined
      const again = this.again
      this.again = undefined
      if (again) void this.request(again.forced)
      else this.schedule()
    })
    return this.running
  }

  /** No more checks; resolves once a check (and its reload) in progress has ended. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.again = undefined
    await this.running
  }

  /** While a reload runs: does the reference name something else now? Then that reload is not wanted. */
  private async peek(preparing: NonNullable<Follower['preparing']>): Promise<void> {
    if (preparing.peeking) return
    preparing.peeking = true
    try {
      const target = await this.options.lookUp()
      if (this.stopped || this.preparing !== preparing || target.key === preparing.target.key) return
      this.again = {forced: this.again?.forced ?? false}
      this.cancel(preparing, `${this.options.uri} names ${describeTarget(target)} now`)
    } catch {
      // A failed lookup changes nothing: the reload goes on.
    } finally {
      preparing.peeking = false
      if (this.preparing === preparing) this.schedule()
    }
  }

  private cancel(preparing: NonNullable<Follower['preparing']>, reason: string): void {
    this.options.log.info(`reload of ${this.options.uri} (${describeTarget(preparing.target)}) cancelled: ${reason}`)
    preparing.controller.abort(new Error(`reload cancelled: ${reason}`))
  }

  private schedule(): void {
    const {intervalMs, moving} = this.options
    if (this.stopped || intervalMs <= 0 || !moving || this.timer) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.request(false)
    }, intervalMs)
    this.timer.unref()
  }

  private async check(forced: boolean): Promise<void> {
    const {log, uri} = this.options
    let target: ModelTarget
    try {
      target = await this.options.lookUp()
    } catch (error) {
      if (this.stopped) return
      log.warn(`reload check of ${uri} failed, still serving what was served: ${messageOf(error)}`)
      this.options.onCheckFailed?.()
      return
    }

    if (this.stopped) return
    // The reference moved since the failure (maybe back and forth): the failed target may be tried again.
    if (target.key !== this.failedKey) this.failedKey = undefined
    const sameAsServed = target.key === this.options.currentKey()
    if (sameAsServed || (!forced && target.key === this.failedKey)) {
      if (forced) log.info(`reload check: ${uri} still names what is served`)
      this.options.onOutcome?.('unchanged')
      return
    }

    const preparing = {target, controller: new AbortController(), peeking: false}
    this.preparing = preparing
    // The periodic checks go on while it prepares: a newer target cancels it.
    this.schedule()
    try {
      await this.options.reload(target, preparing.controller.signal)
      this.failedKey = undefined
      this.options.onOutcome?.('switched')
    } catch (error) {
      if (this.stopped || preparing.controller.signal.aborted) return
      this.failedKey = target.key
      log.warn(
        `reload of ${uri} (${describeTarget(target)}) failed, still serving what was served; not trying it again until the reference moves or SIGHUP: ${messageOf(error)}`,
      )
      this.options.onOutcome?.('failed')
    } finally {
      this.preparing = undefined
    }
  }
}

export const describeTarget = (target: ModelTarget): string =>
  target.registered
    ? `version ${target.registered.version} of ${target.registered.name}`
    : target.local
      ? `the directory ${target.key}`
      : target.key
