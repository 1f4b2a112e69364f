// The supervisor with a stand-in scorer: a tiny Node HTTP server on the slot's Unix socket (the real
// scorers are exercised in test/e2e/supervise.test.ts). Shows the queue, its limits and withdrawals,
// the backoff schedule and the crash-loop cut-off without waiting for Python to load.
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'

import type {Backend} from '../../../src/scorer/backend.js'
import {Supervisor, summarizeError, type SupervisorOptions} from '../../../src/scorer/supervisor.js'
import {isLease, type Acquired, type Lease, type Refusal} from '../../../src/upstream.js'

/**
 * Answers /ping with 200; `EXIT_AFTER_MS` makes it exit with code 3 that long after it starts,
 * `EXIT_CODE` exit with that code at once, `NEVER_LOADS` never listen (a model load that hangs);
 * a request to /exit makes it exit with code 3.
 */
const SCORER = `
const http = require('node:http')
if (process.env.EXIT_CODE) process.exit(Number(process.env.EXIT_CODE))
const server = http.createServer((req, res) => { if (req.url === '/exit') process.exit(3); res.writeHead(200, {'content-type': 'application/json'}); res.end(String(process.pid)) })
if (!process.env.NEVER_LOADS) server.listen(process.argv[1], () => console.log('listening'))
else setInterval(() => {}, 1000)
const exitAfter = Number(process.env.EXIT_AFTER_MS || 0)
if (exitAfter > 0) setTimeout(() => process.exit(3), exitAfter)
process.on('SIGTERM', () => process.exit(0))
`

/** The stand-in with `env`; from start `laterFrom` on, with `later` added. */
const backend = (env: Record<string, string> = {}, later: Record<string, string> = {}, laterFrom = 2): Backend => ({
  kind: 'pyfunc',
  server: 'node stand-in',
  readyPath: '/ping',
  async launch(slot) {
    const vars = slot.start >= laterFrom ? {...env, ...later} : env
    return {
      command: {file: process.execPath, args: ['-e', SCORER, slot.socketPath], env: vars, server: 'node stand-in'},
      endpoint: {kind: 'unix', socketPath: slot.socketPath},
    }
  },
})

async function supervisor(t: Test, options: Partial<SupervisorOptions> & {backend: Backend}) {
  const socketDir = await mkdtemp(path.join(tmpdir(), 'mlserve-supervisor-'))
  const lines: string[] = []
  const log = {
    info: (message: string) => lines.push(message),
    warn: (message: string) => lines.push(`warning: ${message}`),
    phase: () => ({done: () => 0}),
  }
  const sink = {write: () => true}
  const supervisor = new Supervisor({
    workers: 1,
    socketDir,
    baseEnv: {PATH: process.env.PATH},
    stdout: sink,
    stderr: sink,
    log,
    maxConcurrency: 1,
    maxQueue: 1,
    timeoutMs: 5000,
    stuckGraceMs: 60_000,
    livenessIntervalMs: 0,
    stopGraceMs: 1000,
    ...options,
  })
  t.teardown(async () => {
    await supervisor.stop(0)
    await rm(socketDir, {recursive: true, force: true})
  })
  return {supervisor, lines}
}

t.test('one lease per scorer at --max-concurrency 1, then a queue of --max-queue, then 503', async (t) => {
  const {supervisor: s} = await supervisor(t, {backend: backend()})
  t.equal(await s.start(new AbortController().signal), true)

  const first = s.acquire()
  t.ok(!(first instanceof Promise) && isLease(first), 'a free scorer is lent at once')
  const queued = s.acquire()
  t.ok(queued instanceof Promise, 'the next one waits')
  t.equal(s.queueDepth, 1)
  t.same(s.acquire(), {refused: 'queue_full', detail: '1 requests are already queued'}, 'a full queue refuses')

  s.release(first as Lease, 'ok')
  const lent = await (queued as Promise<Acquired>)
  t.ok(isLease(lent), 'releasing hands the scorer to the queued request')
  t.equal(s.queueDepth, 0)

  // A queued request that goes away is withdrawn: it takes no capacity when the scorer frees up.
  const abandoned = s.acquire() as Promise<Acquired>
  s.cancel(abandoned)
  t.equal(s.queueDepth, 0)
  s.release(lent as Lease, 'ok')
  const next = s.acquire()
  t.ok(!(next instanceof Promise) && isLease(next), 'the scorer is free again')
  s.release(next as Lease, 'ok')
  t.same(s.counts(), {starting: 0, ready: 1, retiring: 0})
})

t.test('a scorer that keeps exiting is restarted with doubling delays until the crash limit', async (t) => {
  const {supervisor: s, lines} = await supervisor(t, {
    backend: backend({EXIT_AFTER_MS: '300'}),
    restart: {initialDelayMs: 50, maxDelayMs: 1000, crashLimit: 4, crashWindowMs: 60_000},
  })
  t.equal(await s.start(new AbortController().signal), true)
  while (s.unhealthy === undefined) await new Promise((resolve) => setTimeout(resolve, 50)) // eslint-disable-line no-await-in-loop
  t.same(
    lines.filter((line) => line.startsWith('restarting')),
    [
      'restarting scorer 0 in 50 ms (failure 1 in a row)',
      'restarting scorer 0 in 100 ms (failure 2 in a row)',
      'restarting scorer 0 in 200 ms (failure 3 in a row)',
    ],
  )
  t.match(s.unhealthy, /^4 scorer failures within 60 s$/)
  t.equal(s.restarts, 4)
  const refusal = s.acquire() as Refusal
  t.equal(refusal.refused, 'unavailable')
  t.match(refusal.detail, /not restarting any more/)
})

t.test("a scorer that exits before it is ready fails the start with mlserve's own exit code, the scorer's in the message", async (t) => {
  const {supervisor: s} = await supervisor(t, {backend: backend({EXIT_CODE: '2'})})
  await t.rejects(s.start(new AbortController().signal), {
    code: 'SCORER_START_FAILED',
    exitCode: 40,
    message: /^The scoring server exited with code 2 before it was ready/,
  })
})

t.test('a first scorer that never loads fails the start after --load-timeout (LOAD_TIMEOUT, exit 44)', async (t) => {
  const {supervisor: s} = await supervisor(t, {backend: backend({NEVER_LOADS: '1'}), loadTimeoutMs: 600})
  await t.rejects(s.start(new AbortController().signal), {
    code: 'LOAD_TIMEOUT',
    exitCode: 44,
    message: /^The model did not load: scorer \(pid \d+\) did not answer \/ping within 1 s of its start \(--load-timeout\)\.$/,
  })
})

t.test('a later scorer that never loads is killed after --load-timeout and restarted, with a log line', async (t) => {
  const restarts: string[] = []
  const {supervisor: s, lines} = await supervisor(t, {
    // Start 1 serves until told to exit; start 2 hangs in its load; start 3 serves again.
    backend: {
      ...backend(),
      async launch(slot) {
        const env: Record<string, string> = slot.start === 2 ? {NEVER_LOADS: '1'} : {}
        return {
          command: {file: process.execPath, args: ['-e', SCORER, slot.socketPath], env, server: 'node stand-in'},
          endpoint: {kind: 'unix', socketPath: slot.socketPath},
        }
      },
    },
    loadTimeoutMs: 3000,
    restart: {initialDelayMs: 50, maxDelayMs: 1000, crashLimit: 10, crashWindowMs: 60_000},
    events: {onRestart: (reason) => restarts.push(reason)},
  })
  t.equal(await s.start(new AbortController().signal), true)
  const lease = s.acquire() as Lease
  await lease.dispatcher.request({path: '/exit', method: 'GET'}).catch(() => undefined)
  s.release(lease, 'upstream-error')
  while (s.counts().ready === 0 || restarts.length < 2) await new Promise((resolve) => setTimeout(resolve, 50)) // eslint-disable-line no-await-in-loop
  t.same(restarts, ['exited', 'load-timeout'])
  t.ok(
    lines.some((line) =>
      /^warning: scorer \(pid \d+\) did not answer \/ping within 3 s of its start \(--load-timeout\): restarting it\.$/.test(line),
    ),
  )
  t.ok(lines.includes('restarting scorer 0 in 100 ms (failure 2 in a row)'), 'the hung one counts as a failure of its slot')
  t.same(s.counts(), {starting: 0, ready: 1, retiring: 0}, 'start 3 serves')
})

t.test("MLflow's error envelope in one line, for a failed warm-up", async (t) => {
  t.equal(
    summarizeError('{"error_code": "BAD_REQUEST", "message": "Bad input.", "stack_trace": "Traceback ...\\n  File x\\nValueError: nope\\n"}'),
    'Bad input. (ValueError: nope)',
  )
  t.equal(summarizeError('{"error_code": "BAD_REQUEST", "message": "Bad input."}'), 'Bad input.')
  t.equal(summarizeError('Internal Server Error'), 'Internal Server Error')
})

/** The stand-in, except that slot `failing` gets `env` (default: it exits with code 2 at once). */
const failingSlot = (failing: number, env: Record<string, string> = {EXIT_CODE: '2'}): Backend => ({
  ...backend(),
  async launch(slot) {
    const launched = await backend().launch(slot)
    return slot.index === failing ? {...launched, command: {...launched.command, env}} : launched
  },
})

t.test('a reload generation (requireAll) is ready only when every slot is; any failure before that fails it', async (t) => {
  // Slot 1 never loads (an exit could come before slot 0's ready and fail the start, as it should).
  const {supervisor: lenient} = await supervisor(t, {backend: failingSlot(1, {NEVER_LOADS: '1'}), workers: 2})
  t.equal(await lenient.start(new AbortController().signal), true, 'by default the first ready scorer makes the start')

  const {supervisor: strict} = await supervisor(t, {backend: failingSlot(1), workers: 2, requireAll: true})
  await t.rejects(strict.start(new AbortController().signal), {code: 'SCORER_START_FAILED'}, 'with requireAll the failing slot fails it')

  const {supervisor: whole} = await supervisor(t, {backend: backend(), workers: 2, requireAll: true, modelVersion: '7'})
  t.equal(await whole.start(new AbortController().signal), true)
  t.same(whole.counts(), {starting: 0, ready: 2, retiring: 0}, 'both scorers are ready when the start resolves')
  const lease = whole.acquire() as Lease
  t.equal(lease.modelVersion, '7', 'its leases say which version they serve')
  t.ok(whole.owns(lease))
  t.notOk(lenient.owns(lease), "another generation's supervisor does not own it")
  whole.release(lease, 'ok')
})

t.test('retireAll: requests in flight finish first, then every scorer stops and none restarts', async (t) => {
  const {supervisor: s, lines} = await supervisor(t, {backend: backend(), workers: 2})
  t.equal(await s.start(new AbortController().signal), true)
  while (s.counts().ready < 2) await new Promise((resolve) => setTimeout(resolve, 20)) // eslint-disable-line no-await-in-loop
  const lease = s.acquire() as Lease
  let retired = false
  const retiring = s.retireAll(60_000, 1000).then((exits) => {
    retired = true
    return exits
  })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.notOk(retired, 'waits for the request in flight')
  t.equal(s.counts().ready, 2, 'its scorers still run')
  s.release(lease, 'ok')
  const exits = await retiring
  t.equal(exits.length, 2, 'then both stop')
  t.same(s.counts(), {starting: 0, ready: 0, retiring: 0})
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(
    lines.filter((line) => line.startsWith('restarting')),
    [],
    'and nothing restarts them',
  )
})

t.test('retireAll: the drain is bounded', async (t) => {
  const {supervisor: s} = await supervisor(t, {backend: backend()})
  t.equal(await s.start(new AbortController().signal), true)
  s.acquire()
  const exits = await s.retireAll(100, 1000)
  t.equal(exits.length, 1, 'a request that does not end in time does not hold the old generation')
})
