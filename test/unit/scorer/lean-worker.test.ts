// The lean worker's helpers in Python (templates/python/app): the gate that decides which framed requests
// run at once (mlserve_gate.py), a connection's frames and threads (mlserve_lanes.py) and the remembered
// signatures (mlserve_signatures.py), checked by
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

t.test("the gate's tick: one more request starts when the process was idle, never while it is busy", async (t) => {
  t.same(observed.busy_tick, [false, 0], 'a busy process: none starts')
  t.same(observed.idle_ticks, [true, true, 2], 'an idle tick starts one each time')
  t.same(observed.tick_none_running, [true, 3], 'with none running, one starts')
  t.same(observed.tick_none_waiting, [false, 3], 'with none waiting, none starts')
})

t.test('a lane: answers frames by id; what comes while one runs waits, unread, for the same thread', async (t) => {
  t.same(observed.one_answer, [[7, 0, 200, ['content-type', 'text/plain'], 'hello']], 'the answer frame carries its id')
  t.same(observed.queued_not_started, ['wait:first'], 'requests sent while one runs do not start beside it')
  t.same(observed.queued_answers, [8, 9, 10, 11], 'they are answered in order once it is done')
  t.equal(observed.one_thread, 1, 'all on the one thread')
  t.equal(observed.running_after, 0, 'and nothing counts as running afterwards')
})

t.test('a lane: a cancelled request never runs; an answer that raises is a 500 and the lane goes on', async (t) => {
  t.same(
    observed.cancel_answers,
    [
      [12, 0],
      [13, 2],
      [14, 0],
    ],
    'the cancelled request is answered at once: dropped (kind 2)',
  )
  t.same(observed.cancel_ran, ['wait:second', 'kept'], 'and never ran')
  t.same(
    observed.raise_answers,
    [
      [15, 500, 'Internal Server Error'],
      [16, 200, 'after'],
    ],
    "uvicorn's 500, then the next request",
  )
  t.same(observed.closed, [0, 0], 'a closed connection leaves the gate with nothing running')
})

t.test('the watcher: requests that wait run side by side; a busy process runs them one after another', async (t) => {
  t.same(observed.idle_side_by_side, [true, true, true], 'an idle process: all three start before any ends')
  t.same(observed.idle_answers, [1, 2, 3], 'and all are answered')
  t.same(observed.busy_waits, ['wait:busy'], 'a busy process: the second has not started after 0.2 s')
  t.same(observed.busy_answers, [1, 2], 'it runs once the first is done')
  t.same(
    observed.busy_gives_back,
    [[true, true, true], true, 1],
    'three ran side by side; once the process is busy, the requests after them run one at a time',
  )
  t.same(
    observed.watcher_rests,
    [true, 0, [true, true], [2, 3]],
    'with nothing running it rests (no look in 0.5 s); the next requests wake it and still run side by side',
  )
  t.same(observed.thread_clock, [true, true], "the default clock reads the threads' time on (or waiting for) a CPU from /proc")
})

t.test('an idle worker watches its connection for a moment before it sleeps', async (t) => {
  t.same(observed.spin_answers, ['s0', 's1', 's2'], 'requests during and after the watch are answered')
  t.equal(observed.spin_default_us, 1000, 'MLSERVE_LEAN_SPIN_US defaults to 1000')
  t.same(observed.spin_from_env_us, [0, 250, 0, 1000], 'it reads microseconds; below 0 is 0; not a number is the default')
})

t.test('remembered signatures answer as inspect.signature does', async (t) => {
  t.equal(observed.signature_same_text, true, 'the same signature')
  t.equal(observed.signature_remembered, true, 'worked out once per bound method')
  t.equal(observed.signature_per_object, true, 'per object it is bound to')
  t.equal(observed.signature_other_class, '(data)', "another class's method has its own")
  t.same(observed.signature_function_not_remembered, ['(a, b=2)', false], 'a plain function is passed through')
  t.equal(observed.rest_of_inspect, true, 'the rest of inspect is the real module')
  t.same(observed.installed_in, ['mlflow.pyfunc', 'mlflow.pyfunc.model', 'mlflow.pyfunc.scoring_server'], 'installed where mlflow asks')
})
