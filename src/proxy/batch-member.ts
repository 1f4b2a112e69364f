// A request --batch may merge: its rows, where its answer goes (its exchange), and the requests it takes
// along once it gets a scorer, within --batch-max-rows and MAX_MERGED_BYTES.
import type {IncomingMessage} from 'node:http'

import type {Joinable} from '../upstream.js'
import type {RequestBody} from './body.js'
import {MAX_BATCHABLE_BYTES, MAX_MERGED_BYTES, type RowsRequest} from './batch-rows.js'
import type {ExchangePort} from './lending.js'

/** What a merged call does with a member's exchange: its cut of the answer, or it goes alone, or a 502. */
export type MemberSink = Pick<ExchangePort, 'settled' | 'outcome' | 'answer' | 'send' | 'fail' | 'refuse'>

/** A queued batchable request: its rows, and, once it gets a scorer, the requests it takes along. */
export class BatchMember implements Joinable {
  readonly followers: BatchMember[] = []
  private rowsTaken: number
  private bytesTaken: number
  /** Set by a running merged call: told when this member's exchange settles. */
  onLeave: (() => void) | undefined
  /** Waiting behind a call of its kind in flight for its call to get a scorer (in mlserve_queue_depth). */
  private waiting = false

  constructor(
    readonly rows: RowsRequest,
    readonly sink: MemberSink,
    private readonly maxRows: number,
  ) {
    this.rowsTaken = rows.rows
    this.bytesTaken = Buffer.byteLength(rows.rowsText)
  }

  /** No more rows fit. */
  get full(): boolean {
    return this.rowsTaken >= this.maxRows
  }

  /**
   * It starts (true) or stops waiting: its call got a scorer, or queues for one (the scheduler's queue
   * counts it then), or its exchange settled. `count` hears each change.
   */
  wait(waiting: boolean, count: ((delta: number) => void) | undefined): void {
    if (this.waiting === waiting) return
    this.waiting = waiting
    count?.(waiting ? 1 : -1)
  }

  join(other: Joinable): boolean {
    if (!(other instanceof BatchMember) || other.rows.key !== this.rows.key) return false
    // One that gathers a call of its own (--batch's next call of its kind) keeps it.
    if (other.followers.length > 0) return false
    if (this.rowsTaken + other.rows.rows > this.maxRows) return false
    const bytes = Buffer.byteLength(other.rows.rowsText)
    if (this.bytesTaken + bytes > MAX_MERGED_BYTES) return false
    this.rowsTaken += other.rows.rows
    this.bytesTaken += bytes
    this.followers.push(other)
    return true
  }
}

/** Whether --batch may merge a request: POST /invocations with a JSON body held in memory. */
export function batchable(req: IncomingMessage, body: RequestBody): boolean {
  if (req.method !== 'POST' || req.url !== '/invocations') return false
  // A merged call goes with its first member's headers; mlflow reads Content-Type as sent (case and
  // parameters count: `APPLICATION/JSON` gets 415), so only the exact one, sent once, merges.
  const types = req.rawHeaders.filter((value, i) => i % 2 === 0 && value.toLowerCase() === 'content-type')
  return types.length === 1 && req.headers['content-type'] === 'application/json' && (body.memory?.length ?? 0) <= MAX_BATCHABLE_BYTES
}
