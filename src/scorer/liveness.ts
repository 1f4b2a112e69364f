// Liveness: every idle ready scorer is pinged on its ready path each interval; one that misses
// LIVENESS_FAILURES pings in a row is reported unresponsive (its supervisor kills and restarts it).
import type {Logger} from '../log.js'
import {ping} from './probe.js'
import type {Scorer} from './scorer.js'

export const LIVENESS_FAILURES = 3

export interface LivenessOptions {
  /** How often (ms) each idle scorer is pinged; each ping may take as long. */
  readonly intervalMs: number
  readonly readyPath: string
  readonly log: Logger
  /** The scorers to watch, of any state: only ready, idle ones are pinged. */
  readonly scorers: () => Iterable<Scorer>
  /** `scorer` missed LIVENESS_FAILURES pings in a row (said in the log already). */
  readonly onUnresponsive: (scorer: Scorer) => void
}

export class Liveness {
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly options: LivenessOptions) {}

  start(): void {
    this.timer = setInterval(() => this.check(), this.options.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private check(): void {
    const {intervalMs, readyPath, log} = this.options
    for (const scorer of this.options.scorers()) {
      if (scorer.state !== 'ready' || scorer.pinging) continue
      // A busy scorer may be slow to answer (a sync gunicorn worker cannot): its requests have deadlines.
      if (scorer.outstanding > 0) {
        scorer.pingFailures = 0
        continue
      }

      scorer.pinging = true
      void ping(scorer.dispatcher, readyPath, intervalMs).then((ok) => {
        scorer.pinging = false
        if (ok || scorer.state !== 'ready') {
          scorer.pingFailures = 0
          return
        }

        scorer.pingFailures++
        if (scorer.pingFailures >= LIVENESS_FAILURES) {
          log.warn(`${scorer.label} did not answer ${readyPath} ${LIVENESS_FAILURES} times in a row: restarting it.`)
          this.options.onUnresponsive(scorer)
        }
      })
    }
  }
}
