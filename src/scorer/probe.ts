// Asking a starting scorer whether it is there: its ready path until it answers, then the warm-up prediction.
import type {Dispatcher} from 'undici'

import type {WarmupRequest} from '../model/warmup.js'
import type {Scorer} from './scorer.js'

export type {WarmupRequest} from '../model/warmup.js'

/**
 * Polls `path` until 200: 'ready'; 'gone' when the process exited, the scorer left 'starting' or
 * `stopped()` says mlserve stops; 'timeout' when `deadline` (performance.now() time) passed first.
 */
export async function waitUntilAnswering(
  scorer: Scorer,
  path: string,
  deadline: number,
  stopped: () => boolean,
): Promise<'ready' | 'gone' | 'timeout'> {
  while (scorer.state === 'starting' && scorer.process.running && !stopped()) {
    const left = deadline - performance.now()
    if (left <= 0) return 'timeout'
    // eslint-disable-next-line no-await-in-loop
    if (await ping(scorer.dispatcher, path, Math.min(5000, Math.max(100, left)))) return 'ready'
    // eslint-disable-next-line no-await-in-loop
    await Promise.race([
      new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, deadline - performance.now())))),
      scorer.process.exited,
    ])
  }

  return 'gone'
}

/** Sends the warm-up request; undefined on a 200, else why not. */
export async function warmUp(scorer: Scorer, warmup: WarmupRequest, timeoutMs: number): Promise<string | undefined> {
  try {
    const response = await scorer.dispatcher.request({
      path: '/invocations',
      method: 'POST',
      headers: {'content-type': warmup.contentType},
      body: warmup.body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    const text = await response.body.text()
    if (response.statusCode === 200) return undefined
    return `HTTP ${response.statusCode}: ${summarizeError(text)}`
  } catch (error) {
    return scorer.process.running ? (error as Error).message : 'the scorer exited during the warm-up.'
  }
}

/** One GET; true on 200. Connection errors (not listening yet) and timeouts are false. */
export async function ping(dispatcher: Dispatcher, path: string, timeoutMs: number): Promise<boolean> {
  try {
    const {statusCode, body} = await dispatcher.request({path, method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs})
    await body.dump()
    return statusCode === 200
  } catch {
    return false
  }
}

/** MLflow's error envelope in one line: its message and the exception that ended its stack trace. */
export function summarizeError(body: string): string {
  try {
    const {message, stack_trace: trace} = JSON.parse(body) as {message?: unknown; stack_trace?: unknown}
    if (typeof message === 'string') {
      const last = typeof trace === 'string' ? trace.trim().split('\n').at(-1)!.trim() : ''
      return last ? `${message} (${last})` : message
    }
  } catch {}

  return body.length > 500 ? `${body.slice(0, 500)}...` : body
}
