// SIGHUP for serve: each one asks for a check of the model reference at once (and keeps mlserve running).
import type {Logger} from '../log.js'

export interface ReloadSignal {
  /** Calls `listener` on each SIGHUP; returns what unsubscribes it. */
  readonly subscribe: (listener: () => void) => () => void
}

/** Runs `work` with a SIGHUP handler installed (SIGHUP no longer ends the process), and removes it afterwards. */
export async function withReloadSignal<T>(log: Logger, work: (signal: ReloadSignal) => Promise<T>): Promise<T> {
  const listeners = new Set<() => void>()
  const onSignal = () => {
    if (listeners.size === 0) {
      log.info('received SIGHUP before serving: nothing to reload yet')
      return
    }

    log.info('received SIGHUP: checking the model reference now')
    for (const listener of listeners) listener()
  }

  process.on('SIGHUP', onSignal)
  try {
    return await work({
      subscribe(listener) {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
    })
  } finally {
    process.off('SIGHUP', onSignal)
  }
}
