// The restart policy as a pure function of (state, now): backoff, its cap, the streak reset after a
// scorer stayed ready a whole window, and the crash-loop cut-off.
import t from 'tap'

import {DEFAULT_RESTART_POLICY, decideRestart, type RestartPolicy, type RestartState} from '../../../src/scorer/restart-policy.js'

const policy: RestartPolicy = {initialDelayMs: 500, maxDelayMs: 4000, crashLimit: 5, crashWindowMs: 60_000}

/** Feeds failures of one slot at the given times, as the supervisor applies each decision. */
function run(times: number[], readyAt = 0) {
  let state: RestartState = {failures: [], consecutive: 0, readyAt}
  return times.map((now) => {
    const decision = decideRestart(policy, state, now)
    state = {failures: decision.failures, consecutive: decision.action === 'restart' ? decision.consecutive : state.consecutive, readyAt}
    return decision.action === 'restart' ? decision.delayMs : 'give-up'
  })
}

t.test('delays double per failure in a row, up to the cap', async (t) => {
  // Failures spread over more than a window, so the crash limit never trips.
  t.same(run([0, 20_000, 40_000, 60_000, 80_000, 100_000]), [500, 1000, 2000, 4000, 4000, 4000])
})

t.test('crashLimit failures within the window is a crash loop', async (t) => {
  t.same(run([0, 1000, 2000, 3000, 4000]), [500, 1000, 2000, 4000, 'give-up'])
  const decision = decideRestart(policy, {failures: [0, 1000, 2000, 3000], consecutive: 4, readyAt: 0}, 4000)
  t.same(decision, {action: 'give-up', failures: [0, 1000, 2000, 3000, 4000]})
})

t.test('failures older than the window are forgotten', async (t) => {
  const decision = decideRestart(policy, {failures: [0, 1000, 2000, 3000], consecutive: 1, readyAt: 0}, 61_500)
  t.equal(decision.action, 'restart')
  t.same(decision.failures, [2000, 3000, 61_500])
})

t.test('a scorer that stayed ready a whole window starts a new streak', async (t) => {
  const long = decideRestart(policy, {failures: [], consecutive: 3, readyAt: 1000}, 62_000)
  t.same(long, {action: 'restart', delayMs: 500, failures: [62_000], consecutive: 1})
  const short = decideRestart(policy, {failures: [], consecutive: 3, readyAt: 1000}, 30_000)
  t.same(short, {action: 'restart', delayMs: 4000, failures: [30_000], consecutive: 4})
})

t.test('the defaults: 0.5 s, 1, 2, 4 ... up to 30 s, 5 failures within 60 s', async (t) => {
  t.same(DEFAULT_RESTART_POLICY, {initialDelayMs: 500, maxDelayMs: 30_000, crashLimit: 5, crashWindowMs: 60_000})
  const delay = (consecutive: number) => decideRestart(DEFAULT_RESTART_POLICY, {failures: [], consecutive, readyAt: 0}, 0)
  t.same(
    [0, 1, 2, 3, 6, 7].map((n) => (delay(n) as {delayMs: number}).delayMs),
    [500, 1000, 2000, 4000, 30_000, 30_000],
  )
})
