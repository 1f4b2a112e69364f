// Supervision with MLflow's real scorer: -w N processes balanced by the proxy, a scorer killed under
// load, one that stops answering, one whose timed-out work runs on, a crash loop, warm-up readiness,
// limits, request IDs, access logs and /metrics. The `control` fixture answers with its pid, so each
// response tells which scorer process served it.
import {connect} from 'node:net'

import t from 'tap'
import {fetch} from 'undici'

import {act, controlClient as client, loadLoop, servingPids} from '../helpers/control.js'
import {gone, isAlive, metricValue, readyScorers, startMlserve, until, type Server} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

t.teardown(() => client.close())
const MODEL = fixtureModel('control')

const get = async (server: Server, path: string) => {
  const res = await fetch(server.url + path, {dispatcher: client})
  return {status: res.status, body: await res.text(), headers: res.headers}
}

/** Writes a raw request (head, then body) and resolves with everything the server sent until it closed. */
function rawExchange(server: Server, head: string, body = Buffer.alloc(0)): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1', () => {
      socket.write(head)
      if (body.length > 0) socket.write(body)
    })
    let data = ''
    socket.on('data', (chunk) => {
      data += chunk.toString()
    })
    socket.on('close', () => resolve(data))
    socket.on('error', () => resolve(data))
  })
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, 'g'))?.length ?? 0

t.test('-w 2: two scorer processes share the load; a kill -9 under load is served again, no request hangs', async (t) => {
  const server = await startMlserve(['-m', MODEL, '-w', '2', '--liveness-interval', '1'])
  t.teardown(() => server.stop())
  // Both scorers ready (either may finish its load and warm-up first): /readyz counts them.
  await readyScorers(server, 2)
  const before = await servingPids(server, 2)
  t.equal(before.size, 2, 'both processes answer')

  // Load: 4 clients in a loop while one scorer is killed.
  const victim = [...before][0]!
  const load = loadLoop(server, 4)
  const {statuses} = load
  await new Promise((resolve) => setTimeout(resolve, 500))
  process.kill(victim, 'SIGKILL')
  await server.waitForOutput(/was killed by SIGKILL while serving/)
  await server.waitForOutput(/restarting scorer \d in 500 ms/)
  await server.waitForOutput(/start 2\)[\s\S]*scorer \d is ready \(pid \d+\)/)
  await load.stop()

  t.ok(statuses.length > 10, `requests kept flowing (${statuses.length})`)
  t.notOk(statuses.includes(0), 'no request hung or lost its connection')
  t.same(
    [...new Set(statuses)].filter((status) => status !== 200 && status !== 502),
    [],
    'every request got 200, or a 502 envelope if it was on the killed scorer',
  )
  const after = await servingPids(server, 2)
  t.equal(after.size, 2, 'two processes serve again')
  t.notOk(after.has(victim), 'the killed one was replaced')

  const metrics = (await get(server, '/metrics')).body
  t.match(metrics, /mlserve_scorer_restarts_total\{reason="exited"\} 1\n/)
  t.match(metrics, /mlserve_scorers\{state="ready"\} 2\n/)
  t.match(metrics, /mlserve_http_requests_total\{route="\/invocations",method="POST",status="200"\} \d+/)
})

t.test('a scorer that stops answering is restarted; request IDs and JSON access logs', async (t) => {
  const server = await startMlserve(['-m', MODEL, '--liveness-interval', '1', '--log-format', 'json'])
  t.teardown(() => server.stop())
  const first = await act(server, 'pid', {'x-request-id': 'client-id-42'})
  t.equal(first.status, 200)
  t.equal(first.headers.get('x-request-id'), 'client-id-42', 'a sane request ID is echoed')
  const generated = await act(server, 'pid', {'x-request-id': 'has spaces and "quotes"'})
  t.match(generated.headers.get('x-request-id'), /^[0-9a-f-]{36}$/, 'an unusable one is replaced by a UUID')
  t.match((await get(server, '/nope')).headers.get('x-request-id'), /^[0-9a-f-]{36}$/, 'every response has one')

  const line = server
    .stdout()
    .split('\n')
    .find((l) => l.includes('client-id-42'))
  t.ok(line, 'the access log names the request ID')
  const entry = JSON.parse(line!) as Record<string, unknown>
  t.match(entry, {method: 'POST', path: '/invocations', status: 200, requestId: 'client-id-42', scorer: 0})
  t.match(server.stderr(), /^\{"time":"[^"]+","level":"info","msg":"ready: serving/m, "mlserve's own log is JSON too")

  // SIGSTOP: alive, but answers nothing.
  process.kill(first.pid!, 'SIGSTOP')
  t.teardown(() => {
    if (isAlive(first.pid!)) process.kill(first.pid!, 'SIGKILL')
  })
  await server.waitForOutput(/did not answer \/ping 3 times in a row: restarting it/)
  await server.waitForOutput(/scorer is ready \(pid \d+\)/)
  const next = await act(server, 'pid')
  t.equal(next.status, 200)
  t.not(next.pid, first.pid, 'a fresh process serves')
  t.ok(await gone(first.pid!), 'the stopped one is gone')
  t.match((await get(server, '/metrics')).body, /mlserve_scorer_restarts_total\{reason="unresponsive"\} 1\n/)
})

t.test('a stuck request gets 504 and its scorer is replaced, so capacity comes back; limits', async (t) => {
  const server = await startMlserve([
    '-m',
    MODEL,
    '-t',
    '2',
    '--timeout-grace',
    '1',
    '--max-concurrency',
    '1',
    '--max-queue',
    '1',
    '--max-body-size',
    '1',
    '--header-timeout',
    '1',
  ])
  t.teardown(() => server.stop())
  const {pid: original} = await act(server, 'pid')

  // Queue: one request busy, one waiting, the third is refused at once.
  const busy = act(server, 'sleep:1.5')
  await server.waitForOutput(/control model: sleeping/)
  const queued = act(server, 'pid')
  await until('the second request waits', async () => (await metricValue(server, 'mlserve_queue_depth')) === 1)
  const refused = await act(server, 'pid')
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '1')
  t.match(JSON.parse(refused.body), {error_code: 'TEMPORARILY_UNAVAILABLE', message: /at capacity.*--max-queue/})
  t.equal((await busy).status, 200)
  t.equal((await queued).status, 200, 'the queued request is served once the scorer is free')

  // Stuck: the prediction sleeps past the timeout and on past the grace.
  const stuck = await act(server, 'sleep:60')
  t.equal(stuck.status, 504)
  t.equal(stuck.body, 'Request processing time exceeded limit')
  t.equal(stuck.headers.get('content-type'), 'application/json')
  await server.waitForOutput(/timed-out request\(s\) may still be running .* starting a fresh scorer to replace it/)
  await server.waitForOutput(/scorer is ready \(pid \d+\)/)
  const after = await act(server, 'pid')
  t.equal(after.status, 200, 'capacity is back (with --max-concurrency 1 the stuck request held all of it)')
  t.not(after.pid, original)
  t.ok(await gone(original!), 'the old scorer, still busy with the stuck prediction, is killed')
  const metrics = (await get(server, '/metrics')).body
  t.match(metrics, /mlserve_request_timeouts_total 1\n/)
  t.match(metrics, /mlserve_scorer_restarts_total\{reason="stuck"\} 1\n/)
  t.match(metrics, /mlserve_requests_rejected_total\{reason="queue_full"\} 1\n/)

  // Body limit (1 MiB), declared up front: refused before a byte of the body is read.
  const big = Buffer.alloc(2 * 1024 * 1024, 'a')
  const declared = await fetch(`${server.url}/invocations`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: big,
  })
  t.equal(declared.status, 413)
  t.equal(declared.headers.get('content-type'), 'application/json')
  const tooLarge = {error_code: 'BAD_REQUEST', message: 'The request body is larger than the limit of 1048576 bytes (--max-body-size).'}
  t.same(JSON.parse(await declared.text()), tooLarge)

  // Chunked, counted as it arrives. A raw socket sends all of it: the answer must come, not a reset.
  const chunked = await rawExchange(
    server,
    'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    Buffer.concat([Buffer.from(`${big.length.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]),
  )
  t.match(chunked, /^HTTP\/1\.1 413 /)
  t.same(JSON.parse(chunked.slice(chunked.indexOf('\r\n\r\n') + 4)), tooLarge)

  // A client that never finishes its headers gets 408.
  const answer = await rawExchange(server, 'POST /invocations HTTP/1.1\r\nHost: x\r\n')
  t.match(answer, /^HTTP\/1\.1 408 /)
  t.equal((await act(server, 'pid')).status, 200, 'and the server serves on')
})

t.test('readiness waits for the warm-up prediction; a failed warm-up never becomes ready', async (t) => {
  const slow = await startMlserve(['-m', MODEL], {waitReady: false, env: toolchainEnv({MLSERVE_TEST_WARMUP_SECONDS: '4'})})
  t.teardown(() => slow.stop())
  await slow.waitForOutput(/warm-up prediction in scorer \(serving_input_example\.json\)\.\.\./)
  // The scorer itself answers /ping by now; mlserve must not, until the warm-up is done.
  for (const path of ['/ping', '/health', '/readyz']) {
    // eslint-disable-next-line no-await-in-loop
    t.equal((await get(slow, path)).status, 503, `${path} during the warm-up`)
  }

  t.equal((await get(slow, '/livez')).status, 200, 'alive all along')
  await slow.waitForOutput(/ready: serving/)
  t.match(slow.stderr(), /control model: warm-up done[\s\S]*ready: serving/, 'the warm-up ran before ready')
  t.equal((await get(slow, '/ping')).status, 200)
  t.same(JSON.parse((await get(slow, '/readyz')).body), {
    status: 'ready',
    scorers: {starting: 0, ready: 1, retiring: 0, configured: 1},
    model: {uri: 'control', version: null, run_id: null, generation: 1},
  })

  const failing = await startMlserve(['-m', MODEL], {waitReady: false, env: toolchainEnv({MLSERVE_TEST_WARMUP_FAIL: '1'})})
  const seen = new Set<number>()
  let exited = false
  void failing.exited.then(() => {
    exited = true
  })
  while (!exited) {
    // eslint-disable-next-line no-await-in-loop
    await get(failing, '/ping').then(
      (res) => seen.add(res.status),
      () => {},
    )
  }

  const exit = await failing.exited
  t.equal(exit.code, 43, 'WARMUP_FAILED')
  t.notOk(seen.has(200), '/ping was never 200')
  t.ok(seen.has(503))
  t.match(
    failing.stderr(),
    /The warm-up prediction with serving_input_example\.json failed: HTTP 400: Encountered an unexpected error while evaluating the model\..* \(RuntimeError: warm-up refused on purpose\)/,
  )
})

t.test('a crash loop stops the restarts and marks the server unhealthy', async (t) => {
  const server = await startMlserve(['-m', MODEL])
  t.teardown(() => server.stop())
  for (let crash = 1; crash <= 5; crash++) {
    // eslint-disable-next-line no-await-in-loop
    const {status, body} = await act(server, 'exit')
    t.equal(status, 502, `crash ${crash}: the request on the dying scorer gets a 502 envelope`)
    t.match(JSON.parse(body), {error_code: 'INTERNAL_ERROR'})
    // eslint-disable-next-line no-await-in-loop
    if (crash < 5) await server.waitForOutput(new RegExp(`(scorer is ready[^\\n]*\\n[\\s\\S]*){${crash}}`))
  }

  await server.waitForOutput(/5 scorer failures within 60 s: a crash loop\. Not restarting any more/)
  t.equal(count(server.stderr(), /restarting scorer 0 in/), 4, 'restarted 4 times, with backoff')
  t.match(server.stderr(), /in 500 ms[\s\S]*in 1000 ms[\s\S]*in 2000 ms[\s\S]*in 4000 ms/)
  const livez = await get(server, '/livez')
  t.equal(livez.status, 503)
  t.match(JSON.parse(livez.body), {status: 'unhealthy', reason: '5 scorer failures within 60 s'})
  t.match(JSON.parse((await get(server, '/readyz')).body), {status: 'unhealthy'})
  const ping = await get(server, '/ping')
  t.equal(ping.status, 503)
  t.equal(ping.headers.get('retry-after'), '1')
  t.match(JSON.parse(ping.body), {error_code: 'TEMPORARILY_UNAVAILABLE', message: /not restarting any more/})
  t.match((await get(server, '/metrics')).body, /mlserve_healthy 0\n/)
})

t.test('SIGTERM: readiness goes 503, the slow request in flight completes with 200, exit 0', async (t) => {
  const server = await startMlserve(['-m', MODEL])
  const {pid} = await act(server, 'pid')
  const inFlight = act(server, 'sleep:2')
  await server.waitForOutput(/control model: sleeping/)
  server.child.kill('SIGTERM')
  await server.waitForOutput(/shutting down/)
  const late = await get(server, '/readyz').catch(() => ({status: 'refused'}))
  t.not(late.status, 200, 'not ready while draining (503, or the connection is refused)')
  const res = await inFlight
  t.equal(res.status, 200)
  t.equal(res.pid, pid)
  t.equal((await server.exited).code, 0)
  t.ok(await gone(pid!))
})
