// SIGINT/SIGTERM for long-running commands: the first aborts `stop` (finish cleanly), the second `force`.
import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import {launchedByNpm, watchParent} from './launcher.js'

export interface StopSignals {
  /** Aborted by the first SIGINT or SIGTERM. */
  readonly stop: AbortSignal
  /** Aborted by the second. */
  readonly force: AbortSignal
}

export interface StopOptions {
  /**
   * `work` itself ends at once when `force` is aborted, after its own quick cleanup (serve). Otherwise the
   * second signal ends withStopSignals at once with INTERRUPTED, whatever `work` still waits on: the
   * handlers installed here replace Node's default (exit), so a wait that does not watch the signals
   * would otherwise ignore every SIGINT and SIGTERM.
   */
  readonly ownsForce?: boolean
}

/**
 * Runs `work` with signal handlers installed, and removes them afterwards. Started by npm (npx, npm
 * exec, npm run), mlserve also stops as on SIGTERM when its launcher exits: npm's shell passes no signal on.
 */
export async function withStopSignals<T>(log: Logger, work: (signals: StopSignals) => Promise<T>, options: StopOptions = {}): Promise<T> {
  const stop = new AbortController()
  const force = new AbortController()
  const forced = new Promise<never>((_resolve, reject) => {
    if (options.ownsForce) return
    force.signal.addEventListener(
      'abort',
      () => reject(new MlserveError('INTERRUPTED', 'Stopped at once by a second signal, without waiting for the work in progress.')),
      {once: true},
    )
  })
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      log.warn(`received ${signal} again: stopping now`)
      force.abort()
    } else {
      log.info(`received ${signal}`)
      stop.abort()
    }
  }

  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const unwatch = launchedByNpm(process.env)
    ? watchParent((parent) => {
        if (stop.signal.aborted) return
        log.info(`the process that started mlserve (pid ${parent}, npm) exited: stopping as on SIGTERM`)
        stop.abort()
      })
    : undefined
  try {
    return await Promise.race([work({stop: stop.signal, force: force.signal}), forced])
  } finally {
    unwatch?.()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
