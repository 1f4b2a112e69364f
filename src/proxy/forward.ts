// The fast path: sends a raw Node request, its body read whole first, to a leased scorer through an
// undici pool, and streams the answer back. Here: the body's admission; the exchange is exchange.ts's.
import type {IncomingMessage, ServerResponse} from 'node:http'

import type {Dispatcher} from 'undici'

import type {ExchangeOutcome, Lease, Upstreams} from '../upstream.js'
import {BodyTooLarge, readBody, type MemoryBudget} from './body.js'
import {Exchange, type ExchangeOptions} from './exchange.js'
import {asksForStream, tooManyStreamsResponse} from './streams.js'
import {bodyTooLargeResponse, sendPlain, type PlainResponse} from './responses.js'
import type {RequestRecord} from './server.js'

/** Upstreams that is one dispatcher (or none: every request refused as unavailable). */
export function singleUpstream(dispatcher: Dispatcher | undefined): Upstreams {
  const lease: Lease | undefined = dispatcher && {dispatcher, slot: 0}
  return {
    acquire: () => lease ?? {refused: 'unavailable', detail: 'no scorer is running.'},
    release() {},
  }
}

export interface ForwardOptions extends ExchangeOptions {
  /** Request bodies above this many bytes get a 413 envelope. */
  readonly maxBodyBytes?: number
  /** Shared by every request: request bodies held in memory stay within it, the rest go to files. */
  readonly bodyBudget?: MemoryBudget
  /** Where bodies that do not fit in memory are kept until they are sent (default: the temp directory). */
  readonly spillDir?: string
}

/**
 * Forwards one request, filling `record` (outcome, scorer, refusal) for the access log and metrics.
 * Never rejects: every failure becomes a response (504, 502, 413, 503) or, when the response has
 * already started, a destroyed connection. Resolves when the exchange is over.
 *
 * The body is read whole before a scorer is leased, so a slow client never holds one: a body over
 * --max-body-size gets its 413, a stream over --max-streams its 503, and only then does the exchange begin.
 */
export function forward(
  upstreams: Upstreams,
  req: IncomingMessage,
  res: ServerResponse,
  record: RequestRecord,
  options: ForwardOptions,
): Promise<ExchangeOutcome> {
  return new Promise((resolve) => {
    let settled = false
    const finish = (outcome: ExchangeOutcome) => {
      if (settled) return
      settled = true
      record.outcome = outcome
      resolve(outcome)
    }

    const refuse = (response: PlainResponse) => {
      if (settled) return
      record.refusal = response.refusal
      sendPlain(res, response)
      finish('refused')
    }

    // 413. The rest of the body is read and dropped, so the client can finish sending and then read the
    // answer (closing on it makes most clients fail with a reset instead); --body-timeout bounds that.
    const refuseBody = (limit: number) => {
      req.resume()
      refuse(bodyTooLargeResponse(limit))
    }

    // One listener, added first: 'close' also comes after a complete response, when the exchange is over,
    // and the outcome must be in the record before the server's own listener reads it.
    let onClose = () => finish('client-closed')
    res.on('close', () => onClose())
    const {maxBodyBytes} = options
    const declared = req.headers['content-length']
    if (maxBodyBytes !== undefined && declared !== undefined && Number(declared) > maxBodyBytes) {
      refuseBody(maxBodyBytes)
      return
    }

    // The client waits for this before it sends the body (the server does not send it on its own).
    if (record.expectsContinue) res.writeContinue()
    readBody(req, {maxBytes: maxBodyBytes, budget: options.bodyBudget, spillDir: options.spillDir}).then(
      (body) => {
        if (settled) {
          body.discard()
          return
        }

        const {streams} = options
        const asksStream = streams !== undefined && req.method === 'POST' && asksForStream(req.headers['content-type'], body.memory)
        if (asksStream && !streams.enter()) {
          refuse(tooManyStreamsResponse(streams.max))
          body.discard()
          return
        }

        settled = true
        const exchange = new Exchange(upstreams, req, res, record, body, asksStream, options, resolve)
        onClose = exchange.onClose
        exchange.start()
      },
      (error: unknown) => {
        if (error instanceof BodyTooLarge) refuseBody(error.limit)
        else finish('client-closed')
      },
    )
  })
}
