// The lean worker's helpers in Python (templates/python/app): the gate that decides which framed requests
// run at once (mlserve_gate.py) and the remembered signatures (mlserve_signatures.py), checked by
// test/fixtures/lean_units.py with the test toolchain's interpreter (the e2e side is test/e2e/lean.test.ts).
import {execFileSync} from 'node:child_process'
import path from 'node:path'

import t from 'tap'

import {REPO_ROOT, toolchainEnv, toolchainPython} from '../../helpers/toolchain.js'

const observed = JSON.parse(
  execFileSync(toolchainPython(), [path.join(REPO_ROOT, 'test/fixtures/lean_units.py'), path.join(REPO_ROOT, 'templates/python/app')], {
    encoding: 'utf8',
    env: toolchainEnv(),
    timeout: 120_000,
  }),
) as Record<string, unknown>

t.test('the gate: one request runs at once, the next starts when it ends', async (t) => {
  t.equal(observed.first_enters, true, 'the first request starts at once')
  t.equal(observed.busy_tick_keeps_waiting, true, 'a second waits while the process keeps a core busy')
  t.same(observed.leave_starts_next, [['second', true]], 'and starts as soon as the first leaves')
  t.equal(observed.running_after_handoff, 1, 'one running after the hand-off')
})

t.test('the gate: a process that waits lets waiting requests start, one per tick, oldest first', async (t) => {
  t.same(observed.idle_tick_starts_one, [['b', true]], 'an idle tick starts the oldest')
  t.same(
    observed.second_idle_tick_starts_next,
    [
      ['b', true],
      ['c', true],
    ],
    'the next idle tick starts the next',
  )
  t.equal(observed.running_after_idle_ticks, 3, 'all three run at once')
  t.same(observed.tick_with_none_waiting, [false, false], 'with none waiting the watcher stops')
  t.same(observed.watcher_idle_starts_all, ['x', 'y'], "the watcher's own ticks start them when the CPU is idle")
  t.same(observed.watcher_busy_keeps_waiting, [], 'and not while the CPU is busy')
  t.same(observed.watcher_busy_then_leave, [['z', true]], 'until the running one leaves')
})

t.test('the gate: a request whose sender gave up while waiting is not run', async (t) => {
  t.same(observed.gone_request, [[['gone', false]], 1, 0], 'enter says no; nothing counted, nothing left waiting')
})

t.test('remembered signatures answer as inspect.signature does', async (t) => {
  t.equal(observed.signature_same_text, true, 'the same signature')
  t.equal(observed.signature_remembered, true, 'worked out once per bound method')
  t.equal(observed.signature_per_object, true, 'per object it is bound to')
  t.equal(observed.signature_other_class, '(data)', "another class's method has its own")
  t.same(observed.signature_function_not_remembered, ['(a, b=2)', false], 'a plain function is passed through')
  t.equal(observed.rest_of_inspect, true, 'the rest of inspect is the real module')
  t.same(observed.installed_in, ['mlflow.pyfunc', 'mlflow.pyfunc.scoring_server'], 'installed where mlflow asks')
})
