// The stuck-work watchdog: a request that timed out leaves its work running in the scorer; unless that
// work ends within the grace, a fresh scorer is started to replace the one it holds.
import type {Logger} from '../log.js'
import type {Scorer} from './scorer.js'

export interface WatchdogOptions {
  /** After a timed-out request, how long its work may run on before the scorer is replaced. */
  readonly graceMs: number
  readonly log: Logger
  /** Whether replacements may start now (not stopping, draining or given up). */
  readonly active: () => boolean
  /** Starts `scorer`'s replacement (said in the log already); the old one serves on until it is ready. */
  readonly replace: (scorer: Scorer) => void
}

export class StuckWatchdog {
  constructor(private readonly options: WatchdogOptions) {}

  /** A request on `scorer` timed out: its work runs on. Unless it ends within the grace, replace the scorer. */
  timedOut(scorer: Scorer): void {
    scorer.stuck++
    if (scorer.stuckTimer || scorer.replacing || scorer.state !== 'ready') return
    const {graceMs, log} = this.options
    scorer.stuckTimer = setTimeout(() => {
      scorer.stuckTimer = undefined
      if (scorer.state !== 'ready' || !this.options.active()) return
      log.warn(
        `${scorer.label}: ${scorer.stuck} timed-out request(s) may still be running ${Math.round(graceMs / 1000)} s past the deadline; starting a fresh scorer to replace it.`,
      )
      scorer.replacing = true
      this.options.replace(scorer)
    }, graceMs)
    scorer.stuckTimer.unref()
  }

  /** `scorer` is ending: no replacement for it any more. */
  forget(scorer: Scorer): void {
    clearTimeout(scorer.stuckTimer)
  }
}
