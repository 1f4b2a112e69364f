// --batch's HTTP call: a leader and its followers sent to one scorer as one merged request, its answer cut
// back into one response per member (or each member sent alone when it cannot be cut).
import type {Dispatcher} from 'undici'

import {MODEL_VERSION_HEADER, type ExchangeOutcome, type Lease, type Upstreams} from '../upstream.js'
import type {BatchMember} from './batch-member.js'
import {mergeRows, splitPredictions} from './batch-rows.js'
import {ReplayOnce, forwardedResponseHeaders} from './connection-policy.js'
import type {ForwardedRequest} from './lending.js'

export interface MergedCallHooks {
  /** Each merged call: its rows and requests (the mlserve_batch_size histogram). */
  readonly onBatch?: (rows: number, requests: number) => void
  /** The scorer answered 200 with something that is not one prediction per row. */
  readonly onNotRowAligned: () => void
}

/** Sends `leader` and its followers as one call on `lease`, which goes back to `upstreams` when the call ends. */
export function runMergedCall(
  upstreams: Upstreams,
  lease: Lease,
  leader: BatchMember,
  template: ForwardedRequest,
  hooks: MergedCallHooks,
): void {
  const members = [leader, ...leader.followers]
  const controller = new AbortController()
  const onLeave = () => {
    if (members.every((m) => m.sink.settled)) controller.abort()
  }

  for (const m of members) m.onLeave = onLeave
  const body = mergeRows(members.map((m) => m.rows))
  const rows = members.reduce((sum, m) => sum + m.rows.rows, 0)
  hooks.onBatch?.(rows, members.length)
  const request: Dispatcher.RequestOptions = {
    path: template.path,
    method: 'POST',
    headers: withLength(template.headers, body.length),
    body,
    signal: controller.signal,
    // The members' own deadlines decide; when all are gone the call is aborted.
    headersTimeout: 0,
    bodyTimeout: 0,
  }
  void call(lease.dispatcher, request, controller.signal).then(
    ({status, headers, text}) => {
      const parts =
        status === 200
          ? splitPredictions(
              text,
              members.map((m) => m.rows.rows),
            )
          : undefined
      if (!parts) {
        if (status === 200) hooks.onNotRowAligned()
        for (const m of members) if (!m.sink.settled) m.sink.send(upstreams.share?.(lease) ?? lease)
        upstreams.release(lease, 'ok')
        return
      }

      const outHeaders = {...headers}
      delete outHeaders['content-length']
      // Each member's response carries its own request ID (set by the server), never the first one's.
      delete outHeaders['x-request-id']
      if (lease.modelVersion !== undefined) outHeaders[MODEL_VERSION_HEADER] = lease.modelVersion
      for (const [i, m] of members.entries()) {
        if (!m.sink.settled) m.sink.answer(200, outHeaders, Buffer.from(parts[i]!, 'utf8'), lease.slot)
      }

      upstreams.release(lease, 'ok')
    },
    (error: Error) => {
      let outcome: ExchangeOutcome = 'upstream-error'
      if (controller.signal.aborted) outcome = 'client-closed'
      else for (const m of members) if (!m.sink.settled) m.sink.fail(error.message)
      // A member that timed out while the call ran: the scorer's work goes on past its deadline.
      if (controller.signal.aborted && members.some((m) => m.sink.outcome === 'timeout')) outcome = 'timeout'
      upstreams.release(lease, outcome)
    },
  )
}

const utf8 = new TextDecoder('utf-8', {fatal: true})

interface MergedAnswer {
  readonly status: number
  readonly headers: Record<string, string | string[]>
  readonly text: string
}

/** The merged request's whole answer; a stale connection is replayed as connection-policy.ts says. */
async function call(dispatcher: Dispatcher, request: Dispatcher.RequestOptions, signal: AbortSignal): Promise<MergedAnswer> {
  const replay = new ReplayOnce()
  for (;;) {
    let answerBegun = false
    try {
      // eslint-disable-next-line no-await-in-loop -- a replay goes after the failed attempt
      const response = await dispatcher.request(request)
      answerBegun = true
      // eslint-disable-next-line no-await-in-loop
      const bytes = Buffer.from(await response.body.arrayBuffer())
      // An answer that is not UTF-8 cannot be cut as text: treat it as not row-aligned.
      let text: string
      try {
        text = utf8.decode(bytes)
      } catch {
        text = ''
      }

      return {status: response.statusCode, headers: forwardedResponseHeaders(response.headers), text}
    } catch (error) {
      if (signal.aborted || !replay.allows(error, answerBegun)) throw error
    }
  }
}

/** The headers with content-length set to `length` (replacing the client's, transfer-encoding dropped). */
function withLength(headers: readonly string[], length: number): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase()
    if (name !== 'content-length' && name !== 'transfer-encoding') out.push(headers[i]!, headers[i + 1]!)
  }

  out.push('content-length', String(length))
  return out
}
