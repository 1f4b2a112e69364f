// `mlserve smoke --url --wait`: polls a server that is still starting until GET /ping answers 200.
import {request} from 'undici'

import {messageOf} from '../errors.js'
import {sleep} from '../util/abort.js'
import {pathPrefixOf} from './model-route.js'

export interface WaitResult {
  readonly ready: boolean
  /** The last answer or connection error, for the message when it never got ready. */
  readonly last: string
}

const POLL_MS = 500

export async function waitForReady(
  url: string,
  withinMs: number,
  signal: AbortSignal,
  headers: Readonly<Record<string, string>> = {},
): Promise<WaitResult> {
  const deadline = performance.now() + withinMs
  let last = 'no answer yet'
  for (;;) {
    try {
      // eslint-disable-next-line no-await-in-loop
      const response = await request(new URL(`${pathPrefixOf(url)}/ping`, new URL(url).origin), {
        headers,
        signal: AbortSignal.any([signal, AbortSignal.timeout(Math.max(POLL_MS, 2000))]),
      })
      // eslint-disable-next-line no-await-in-loop
      const text = await response.body.text()
      if (response.statusCode === 200) return {ready: true, last: '200'}
      last = `${response.statusCode} ${text.slice(0, 200)}`.trim()
    } catch (error) {
      if (signal.aborted) return {ready: false, last: 'interrupted'}
      last = messageOf(error)
    }

    if (performance.now() + POLL_MS > deadline) return {ready: false, last}
    // eslint-disable-next-line no-await-in-loop
    await sleep(POLL_MS, signal)
  }
}
