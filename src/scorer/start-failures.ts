// Why a start failed, as the errors serve reports when no scorer was ever ready: the scorer exited, did
// not load within --load-timeout, failed its warm-up prediction, or could not be launched.
import {MlserveError} from '../errors.js'
import {describeExit, type ExitInfo} from './process.js'

/** The scorer exited before it was ready; `lastLine` is the last line of its stderr. */
export function exitedBeforeReady(exit: ExitInfo, lastLine: string): MlserveError {
  return new MlserveError(
    'SCORER_START_FAILED',
    `The scoring server ${describeExit(exit)} before it was ready${lastLine ? `: ${lastLine}` : '.'}`,
    {
      suggestions: ['Its full output is above, prefixed [scorer]: a failed model load (a missing package, a corrupt file) shows there.'],
    },
  )
}

/** The model did not load within --load-timeout; `what` says which scorer did not answer what. */
export function loadTimedOut(what: string): MlserveError {
  return new MlserveError('LOAD_TIMEOUT', `The model did not load: ${what}.`, {
    suggestions: [
      "Read the scorer's output above, prefixed [scorer]: a load that hangs (a download, a lock) shows there.",
      'A model that takes longer to load needs a larger --load-timeout (MLSERVE_LOAD_TIMEOUT; 0: no bound).',
    ],
  })
}

/** The warm-up prediction with `source`'s example failed. */
export function warmupFailed(source: string, failure: string): MlserveError {
  return new MlserveError('WARMUP_FAILED', `The warm-up prediction with ${source} failed: ${failure}`, {
    suggestions: [
      "The model cannot predict its own serving input example: read the scorer's output above.",
      'Serve without the warm-up (--no-warmup) to answer requests anyway.',
    ],
  })
}

/** A scorer's process could not be started at all. */
export function launchFailed(error: unknown, index: number): MlserveError {
  return error instanceof MlserveError
    ? error
    : new MlserveError('SCORER_START_FAILED', `Cannot start scorer ${index}: ${(error as Error).message}`, {cause: error})
}
