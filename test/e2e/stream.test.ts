// Streaming a logged model end to end: `"stream": true` to a model with predict_stream is answered as
// server-sent events through mlserve (the real scorer, fake deterministic LLMs from
// test/fixtures/stream_models.py); everything else is answered as before.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {request} from 'undici'

import {eventually, metricValue, runMlserve, startMlflowServe, startMlserve, until, type Server} from '../helpers/servers.js'
import {REPO_ROOT, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const work = mkdtempSync(path.join(tmpdir(), 'mlserve-stream-'))
t.teardown(() => rmSync(work, {recursive: true, force: true}))
execFileSync(toolchainPython(), [path.join(REPO_ROOT, 'test/fixtures/stream_models.py'), path.join(work, 'models')], {
  env: toolchainEnv(),
  stdio: 'ignore',
})
const FAKELLM = path.join(work, 'models', 'fakellm')
const FAKECHAT = path.join(work, 'models', 'fakechat')
const DOWNCHAT = path.join(work, 'models', 'downchat')
const FAKERESPONSES = path.join(work, 'models', 'fakeresponses')
const FAKEAGENT = path.join(work, 'models', 'fakeagent')

const servers: Server[] = []
t.teardown(async () => {
  await Promise.all(servers.map(async (server) => server.stop()))
})

async function serve(model: string, args: string[] = []): Promise<Server> {
  const server = await startMlserve(['-m', model, ...args])
  servers.push(server)
  return server
}

const llm = (params: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  JSON.stringify({inputs: {messages: ['hi']}, params, ...extra})

/** POSTs to /invocations; returns the status, content type, and each body chunk with its arrival time (ms). */
async function post(server: Server, body: string, signal?: AbortSignal) {
  const started = performance.now()
  const res = await request(`${server.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body, signal})
  const chunks: Array<{at: number; text: string}> = []
  for await (const chunk of res.body) chunks.push({at: performance.now() - started, text: (chunk as Buffer).toString()})
  return {status: res.statusCode, contentType: res.headers['content-type'], chunks, text: chunks.map((c) => c.text).join('')}
}

/** The data fields of an SSE body, in order. */
const events = (text: string) =>
  text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => block.replace(/^data: /, ''))

t.test('a PythonModel with predict_stream: events as they are generated, then [DONE]', async (t) => {
  const server = await serve(FAKELLM)
  const answer = await post(server, llm({n: 4, delay: 0.3}, {stream: true}))
  t.equal(answer.status, 200)
  t.match(answer.contentType, /^text\/event-stream/)
  t.same(events(answer.text), [
    '{"index": 0, "text": "w0"}',
    '{"index": 1, "text": "w1"}',
    '{"index": 2, "text": "w2"}',
    '{"index": 3, "text": "w3"}',
    '[DONE]',
  ])
  const firstAt = answer.chunks.find((c) => c.text.includes('"w0"'))!.at
  const lastAt = answer.chunks.find((c) => c.text.includes('"w3"'))!.at
  t.ok(lastAt - firstAt > 500, `the events arrived over time (first at ${firstAt.toFixed(0)} ms, last at ${lastAt.toFixed(0)} ms), not at once`)

  const inParams = await post(server, llm({n: 2, stream: true}))
  t.same(events(inParams.text), ['{"index": 0, "text": "w0"}', '{"index": 1, "text": "w1"}', '[DONE]'], '"stream": true inside params')

  const metrics = await (await request(`${server.url}/metrics`)).body.text()
  t.match(metrics, /^mlserve_streams_total\{outcome="ok"\} 2$/m, 'both streams are counted')
  t.match(metrics, /^mlserve_stream_first_byte_seconds_count 2$/m)
  t.match(metrics, /^mlserve_stream_duration_seconds_count 2$/m)
  const bytes = Number(/^mlserve_stream_bytes_total (\d+)$/m.exec(metrics)?.[1])
  t.equal(bytes, answer.text.length + inParams.text.length, 'the bytes of both streams')
})

t.test('without the flag, and the errors before the first chunk, the answer is what mlflow models serve gives', async (t) => {
  const [server, mlflow] = await Promise.all([serve(FAKELLM), startMlflowServe(FAKELLM)])
  servers.push(mlflow)
  for (const body of [
    llm({n: 2}),
    llm({n: 2}, {stream: false}),
    '{"inputs": {"nope": ["hi"]}, "stream": true}',
    llm({fail_at: 0}, {stream: true}),
  ]) {
    // eslint-disable-next-line no-await-in-loop
    const [ours, theirs] = await Promise.all([post(server, body), post(mlflow, body)])
    if (body.includes('"stream": true') || body.includes('"stream":true')) {
      // mlflow never streams: only the status and the error envelope's code are compared for these.
      t.equal(ours.status, 400, `${body}: an error answer, not a stream`)
      t.match(ours.contentType, /^application\/json/)
      t.equal(JSON.parse(ours.text).error_code, theirs.status === 200 ? 'BAD_REQUEST' : JSON.parse(theirs.text).error_code)
    } else {
      t.equal(ours.status, theirs.status, `${body}: status`)
      t.equal(ours.text, theirs.text, `${body}: the same bytes`)
    }
  }
})

t.test('an exception in the middle is one error event, then [DONE]', async (t) => {
  const server = await serve(FAKELLM)
  const answer = await post(server, llm({n: 3, fail_at: 1}, {stream: true}))
  const got = events(answer.text)
  t.equal(answer.status, 200)
  t.equal(got[0], '{"index": 0, "text": "w0"}')
  const error = JSON.parse(got[1]!) as {error: {error_code: string; message: string; stack_trace: string}}
  t.equal(error.error.error_code, 'BAD_REQUEST')
  t.match(error.error.stack_trace, /the fake LLM failed at chunk 1/)
  t.equal(got[2], '[DONE]')
  t.equal(got.length, 3)
})

t.test('a client that goes away closes the generator in the scorer', async (t) => {
  const server = await serve(FAKELLM)
  const marker = path.join(work, 'closed.marker')
  const controller = new AbortController()
  const res = await request(`${server.url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: llm({n: 100, delay: 0.1, marker}, {stream: true}),
    signal: controller.signal,
  })
  for await (const chunk of res.body) {
    if ((chunk as Buffer).toString().includes('"w2"')) break
  }

  controller.abort()
  await eventually(() => existsSync(marker), 10_000)
  t.equal(existsSync(marker) ? readFileSync(marker, 'utf8') : 'not closed', 'closed', "the model's finally ran")
  const after = await post(server, llm({n: 1}, {stream: true}))
  t.same(events(after.text), ['{"index": 0, "text": "w0"}', '[DONE]'], 'the scorer serves the next stream')
  const metrics = await (await request(`${server.url}/metrics`)).body.text()
  t.match(metrics, /^mlserve_streams_total\{outcome="client-closed"\} 1$/m, 'the abandoned stream is counted as client-closed')
})

t.test('-t bounds the wait for each chunk, not the whole stream', async (t) => {
  const server = await serve(FAKELLM, ['-t', '2'])
  const long = await post(server, llm({n: 6, delay: 0.8}, {stream: true}))
  t.equal(events(long.text).length, 7, 'a 4.8 s stream of 0.8 s gaps under -t 2 is not cut')
  const stalled = await post(server, llm({n: 3, delay: 3}, {stream: true}))
  t.equal(stalled.status, 504, "no first chunk within -t: MLflow's timeout answer")
  const gap = await post(server, llm({n: 3, delay: 0.5, fail_at: -1}, {stream: true}))
  t.equal(events(gap.text).at(-1), '[DONE]')
})

t.test('a ChatModel streams its chunks; --preload -w 2 streams too', async (t) => {
  const server = await serve(FAKECHAT, ['--preload', '-w', '2'])
  const answer = await post(server, JSON.stringify({messages: [{role: 'user', content: 'hi'}], stream: true}))
  const got = events(answer.text)
  t.equal(got.at(-1), '[DONE]')
  t.same(
    got.slice(0, -1).map((chunk) => (JSON.parse(chunk) as {choices: Array<{delta: {content: string}}>}).choices[0]!.delta.content),
    ['w0', 'w1', 'w2'],
  )
  const whole = await post(server, JSON.stringify({messages: [{role: 'user', content: 'hi'}]}))
  t.match(whole.contentType, /^application\/json/)
  t.equal((JSON.parse(whole.text) as {object: string}).object, 'chat.completion')
})

t.test('--no-fast-path passes "stream": true to mlflow\'s app unchanged (one JSON answer)', async (t) => {
  const server = await serve(FAKELLM, ['--no-fast-path'])
  const answer = await post(server, llm({n: 2}, {stream: true}))
  t.match(answer.contentType, /^application\/json/)
})

t.test('a GenAI model whose LLM is unreachable serves and answers each request as mlflow does (no warm-up call)', async (t) => {
  const [server, mlflow] = await Promise.all([serve(DOWNCHAT), startMlflowServe(DOWNCHAT)])
  servers.push(mlflow)
  t.match(server.stderr() + server.stdout(), /not warming up: it is a GenAI model \(agent\/v1\/chat\)/, 'the log says why there is no warm-up')
  const body = JSON.stringify({messages: [{role: 'user', content: 'hi'}]})
  const [ours, theirs] = await Promise.all([post(server, body), post(mlflow, body)])
  t.equal(ours.status, theirs.status, 'the same status')
  t.equal(ours.status, 400)
  t.equal((JSON.parse(ours.text) as {error_code: string}).error_code, (JSON.parse(theirs.text) as {error_code: string}).error_code)
})

t.test('a ResponsesAgent and a ChatAgent stream their events', async (t) => {
  const [responses, agent] = await Promise.all([serve(FAKERESPONSES), serve(FAKEAGENT)])
  const deltas = events((await post(responses, JSON.stringify({input: [{role: 'user', content: 'hi'}], stream: true}))).text)
  t.equal(deltas.at(-1), '[DONE]')
  const parsed = deltas.slice(0, -1).map((chunk) => JSON.parse(chunk) as {type: string; delta?: string})
  t.same(
    parsed.filter((event) => event.type === 'response.output_text.delta').map((event) => event.delta),
    ['w0', 'w1', 'w2'],
  )
  t.equal(parsed.at(-1)?.type, 'response.output_item.done')
  const chunks = events((await post(agent, JSON.stringify({messages: [{role: 'user', content: 'hi'}], stream: true}))).text)
  t.same(
    chunks.slice(0, -1).map((chunk) => (JSON.parse(chunk) as {delta: {content: string}}).delta.content),
    ['w0', 'w1', 'w2'],
  )
})

t.test('streams never enter batching: concurrent streams under --batch --max-concurrency 1 each get their own', async (t) => {
  const server = await serve(FAKELLM, ['--batch', '--max-concurrency', '1'])
  const answers = await Promise.all([2, 3, 4, 5].map(async (n) => post(server, llm({n, delay: 0.05}, {stream: true}))))
  for (const [index, answer] of answers.entries()) {
    const n = index + 2
    t.same(
      events(answer.text),
      [...Array.from({length: n}, (_, i) => `{"index": ${i}, "text": "w${i}"}`), '[DONE]'],
      `the stream of ${n} chunks`,
    )
  }
})

t.test('--max-streams: streams beyond it get 503 with Retry-After; other requests are not counted', async (t) => {
  const server = await serve(FAKELLM, ['--max-streams', '1'])
  const first = post(server, llm({n: 3, delay: 0.5}, {stream: true}))
  await until('the first stream runs', async () => (await metricValue(server, 'mlserve_scorer_requests_in_flight')) === 1)
  const [second, plain] = await Promise.all([post(server, llm({n: 1}, {stream: true})), post(server, llm({n: 1}))])
  t.equal(second.status, 503, 'a second stream is refused while the first runs')
  t.match(second.text, /--max-streams/)
  t.equal(plain.status, 200, 'a request without the flag is served')
  t.equal(events((await first).text).at(-1), '[DONE]', 'the first stream completes')
  const after = await post(server, llm({n: 1}, {stream: true}))
  t.equal(after.status, 200, 'the place is free again')
  const metrics = await (await request(`${server.url}/metrics`)).body.text()
  t.match(metrics, /^mlserve_requests_rejected_total\{reason="too_many_streams"\} 1$/m)
})

t.test('mlserve smoke checks the stream of a model with predict_stream', async (t) => {
  const result = await runMlserve(['smoke', '-m', FAKECHAT, '--env-manager', 'local', '--python', toolchainPython(), '--json'])
  t.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as {cases: Array<{name: string; status: string; message?: string}>}
  const stream = report.cases.find((c) => c.name === 'stream')
  t.equal(stream?.status, 'passed')
  t.match(stream?.message, /^3 event\(s\), then \[DONE\]$/)

  const down = await runMlserve(['smoke', '-m', DOWNCHAT, '--env-manager', 'local', '--python', toolchainPython(), '--json'])
  t.not(down.code, 0, 'a model whose LLM is down fails its smoke test')
  const downReport = JSON.parse(down.stdout) as {cases: Array<{name: string; status: string}>}
  t.equal(downReport.cases.find((c) => c.name === 'stream')?.status, 'failed')
})
