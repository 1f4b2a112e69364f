// --batch's default policy: while a call of one kind (merge key) is in flight on a scorer, compatible
// requests wait for it to end and then go together as the next call, instead of taking more scorer slots.
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
  private readonly forming = new Map<string, Launchable>()

  /**
   * Whether `request` waits: a call of its kind is in flight, so it joins the next call (or starts it).
   * A request alone as large as a call (--batch-max-rows) never waits: nothing could join it.
   */
  wait(request: Launchable): boolean {
    const {member} = request
    const {key} = member.rows
    if (!this.flying.get(key) || member.full) return false
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

  /** A call of `key` got a scorer. */
  took(key: string): void {
    this.flying.set(key, (this.flying.get(key) ?? 0) + 1)
  }

  /** A call of `key` ended: the next call gathered meanwhile goes, on the capacity it freed. */
  landed(key: string): void {
    const left = (this.flying.get(key) ?? 1) - 1
    if (left > 0) this.flying.set(key, left)
    else this.flying.delete(key)
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
