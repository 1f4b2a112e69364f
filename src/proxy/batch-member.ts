// A request --batch may merge: its rows, where its answer goes (its exchange), and the requests it takes
// along once it gets a scorer, within --batch-max-rows and MAX_MERGED_BYTES.
import type {Joinable} from '../upstream.js'
import {MAX_MERGED_BYTES, type RowsRequest} from './batch-rows.js'
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
