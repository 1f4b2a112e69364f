// The supervisor's restart bookkeeping: each slot's starts, failure streak and pending restart, and the
// crash-loop cut-off over every slot's recent failures (the decisions are restart-policy.ts's).
import type {Logger} from '../log.js'
import {decideRestart, type RestartPolicy} from './restart-policy.js'

export interface SlotState {
  /** How many times the slot was started (its scorer's n-th start). */
  starts: number
  /** Failures since the slot last stayed ready for a whole crash window. */
  consecutiveFailures: number
  restartTimer: NodeJS.Timeout | undefined
  /** When the slot's scorer failed (or its replacement began), until a new one is ready; 0: none. */
  failedAt: number
}

export class Restarts {
  readonly slots: SlotState[]
  /** Recent failures of any slot, for the crash-loop cut-off. */
  private failures: readonly number[] = []
  /** Why restarting stopped (a crash loop): /livez says so. */
  private gaveUp: string | undefined
  private restartCount = 0

  constructor(
    workers: number,
    private readonly policy: RestartPolicy,
    private readonly log: Logger,
  ) {
    this.slots = Array.from({length: workers}, () => ({starts: 0, consecutiveFailures: 0, restartTimer: undefined, failedAt: 0}))
  }

  get unhealthy(): string | undefined {
    return this.gaveUp
  }

  /** Restarts and replacements so far. */
  get count(): number {
    return this.restartCount
  }

  /** A replacement that was not a failure's restart (a stuck scorer's). */
  countReplacement(): void {
    this.restartCount++
  }

  /**
   * Counts a failure of slot `index` and schedules `restart` with backoff, unless this makes a crash loop
   * (then it gives up for good and returns false) or `covered` says a replacement is on its way already.
   * In the preload mode a slot's first restart needs no back-off (a fork is cheap).
   */
  failed(index: number, readyAt: number, label: string, opts: {covered: boolean; preload: boolean; restart: () => void}): boolean {
    const slot = this.slots[index]!
    slot.failedAt ||= performance.now()
    const decision = decideRestart(this.policy, {failures: this.failures, consecutive: slot.consecutiveFailures, readyAt}, performance.now())
    this.restartCount++
    this.failures = decision.failures
    if (decision.action === 'give-up') {
      if (this.gaveUp === undefined) {
        this.gaveUp = `${decision.failures.length} scorer failures within ${Math.round(this.policy.crashWindowMs / 1000)} s`
        this.log.warn(
          `${this.gaveUp}: a crash loop. Not restarting any more; /livez answers 503 (the last one: ${label}, see its output above).`,
        )
      }

      this.cancel()
      return false
    }

    if (slot.restartTimer || opts.covered) return true
    slot.consecutiveFailures = decision.consecutive
    const delayMs = opts.preload && decision.consecutive === 1 ? 0 : decision.delayMs
    this.log.info(`restarting scorer ${index} in ${delayMs} ms (failure ${slot.consecutiveFailures} in a row)`)
    slot.restartTimer = setTimeout(opts.restart, delayMs)
    return true
  }

  /** No pending restart goes ahead. */
  cancel(): void {
    for (const slot of this.slots) clearTimeout(slot.restartTimer)
  }
}
