// --batch's default policy: while a call of one kind (merge key) is in flight on the scorer a request would
// get, compatible requests wait for a call of theirs to end and go together as the next call, instead of
// taking more of that scorer's slots.
import type {BatchMember} from './batch-member.js'

/** A batchable request that can wait to lead the next call of its kind, and later send it. */
export interface Launchable {
  readonly member: BatchMember
  /** Asks for a scorer for the member and those that joined it. */
  launch(): void
}

/** Calls in flight per merge key, and the request gathering the next call of each key. */
export class Flights {
  private readonly flying = new Map<string, number>()
  /** The same, per scorer slot and kind. */
  private readonly onSlot = new Map<string, number>()
  private readonly forming = new Map<string, Launchable>()

  /**
   * Whether `request` waits: a call of its kind is in flight, so it joins the next call (or starts it).
   * A request alone as large as a call (--batch-max-rows) never waits: nothing could join it.
   */
  wait(request: Launchable): boolean {
    const {member} = request
    const {key} = member.rows
    if (!this.busy(key) || member.full) return false
    const next = this.forming.get(key)
    if (next?.member.join(member)) {
      if (next.member.full) this.launch(key)
      return true
    }

    // No room left in the next call: it goes now, and this request starts the one after it.
    if (next) this.launch(key)
    this.forming.set(key, request)
    return true
  }

  /** Whether a call of `key` is in flight anywhere. */
  busy(key: string): boolean {
    return this.flying.has(key)
  }

  /** Whether a call of `key` is in flight on scorer `slot`. */
  flyingOn(key: string, slot: number): boolean {
    return this.onSlot.has(`${slot} ${key}`)
  }

  /** A call of `key` got scorer `slot`. */
  took(key: string, slot: number): void {
    count(this.flying, key, 1)
    count(this.onSlot, `${slot} ${key}`, 1)
  }

  /** A call of `key` on `slot` ended: the next call gathered meanwhile goes, on the capacity it freed. */
  landed(key: string, slot: number): void {
    count(this.flying, key, -1)
    count(this.onSlot, `${slot} ${key}`, -1)
    if (this.forming.has(key)) this.launch(key)
  }

  private launch(key: string): void {
    const next = this.forming.get(key)!
    this.forming.delete(key)
    const {member} = next
    // Every client of it went away while it gathered: nothing to send.
    if (member.sink.settled && member.followers.every((m) => m.sink.settled)) return
    next.launch()
  }
}

function count(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by
  if (n > 0) counts.set(key, n)
  else counts.delete(key)
}
