// Waits until a scorer answers GET /ping with 200, or fails with why it never will.
import type {Dispatcher} from 'undici'

import {MlserveError} from '../errors.js'
import {sleep} from '../util/abort.js'
import type {ExitInfo, ScorerProcess} from './process.js'

const POLL_MS = 100

/** One GET /ping; true on 200. Connection errors (not listening yet) are false. */
export async function pingOnce(upstream: Dispatcher): Promise<boolean> {
  try {
    const {statusCode, body} = await upstream.request({path: '/ping', method: 'GET', headersTimeout: 5000})
    await body.dump()
    return statusCode === 200
  } catch {
    return false
  }
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`
}

/**
 * Resolves once the scorer is ready. Rejects with SCORER_START_FAILED (exit code: the scorer's own) if
 * it exits first; resolves false if `signal` aborts first.
 */
export async function waitUntilReady(
  upstream: Dispatcher,
  scorer: ScorerProcess,
  signal: AbortSignal,
): Promise<boolean> {
  while (!signal.aborted) {
    if (!scorer.running) {
      const exit = await scorer.exited
      const lastLine = scorer.stderrTail(1).trim()
      throw new MlserveError(
        'SCORER_START_FAILED',
        `The scoring server ${describeExit(exit)} before it was ready${lastLine ? `: ${lastLine}` : '.'}`,
        {
          exitCode: exit.exitCode && exit.exitCode > 0 ? exit.exitCode : undefined,
          suggestions: [
            'Its full output is above, prefixed [scorer]: a failed model load (a missing package, a corrupt file) shows there.',
          ],
        },
      )
    }

    // eslint-disable-next-line no-await-in-loop
    if (await pingOnce(upstream)) return true
    // eslint-disable-next-line no-await-in-loop
    await Promise.race([sleep(POLL_MS, signal), scorer.exited])
  }

  return false
}
