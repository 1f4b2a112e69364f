// When a failed scorer is restarted: exponential backoff per slot, and a crash loop that stops restarting.

export interface RestartPolicy {
  /** The first restart waits this long; each further consecutive failure of a slot doubles it. */
  readonly initialDelayMs: number
  readonly maxDelayMs: number
  /** This many failures (exits, unanswered pings, failed warm-ups) within crashWindowMs: stop restarting. */
  readonly crashLimit: number
  readonly crashWindowMs: number
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  crashLimit: 5,
  crashWindowMs: 60_000,
}

/** What the policy remembers: every server's recent failures, and the failing slot's streak. */
export interface RestartState {
  /** When recent failures happened (any slot), oldest first. */
  readonly failures: readonly number[]
  /** The slot's failures in a row, since it last stayed ready for a whole crash window. */
  readonly consecutive: number
  /** When the failed scorer became ready (0: never). */
  readonly readyAt: number
}

export type RestartDecision =
  | {readonly action: 'restart'; readonly delayMs: number; readonly failures: readonly number[]; readonly consecutive: number}
  | {readonly action: 'give-up'; readonly failures: readonly number[]}

/**
 * A slot's scorer failed at `now`: restart it after a delay that doubles with each failure in a row
 * (up to maxDelayMs), unless this failure makes crashLimit within crashWindowMs (a crash loop). A scorer
 * that had stayed ready for a whole window starts a new streak.
 */
export function decideRestart(policy: RestartPolicy, state: RestartState, now: number): RestartDecision {
  const {crashLimit, crashWindowMs, initialDelayMs, maxDelayMs} = policy
  const failures = [...state.failures.filter((at) => now - at <= crashWindowMs), now]
  if (failures.length >= crashLimit) return {action: 'give-up', failures}
  const streak = state.readyAt > 0 && now - state.readyAt > crashWindowMs ? 0 : state.consecutive
  return {action: 'restart', delayMs: Math.min(maxDelayMs, initialDelayMs * 2 ** streak), failures, consecutive: streak + 1}
}
