// --batch end to end with the real scorer: requests queued behind a busy scorer are merged into one
// call, and every client still gets byte for byte what `mlflow models serve` answers for its request
// alone; failures, models whose output is not row-aligned, deadlines and clients that leave stay per request.
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {Agent, fetch} from 'undici'

import {metricValue, startMlflowServe, startMlserve, until, type Server} from '../helpers/servers.js'
import {toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

/**
 * Answers its input rows as they came (a DataFrame: one record per row), with the `tag` param as a
 * column. A `wait` column (a file path) makes it wait for that file first; a `mode` column of "boom"
 * fails, "dict" and "short" answer something that is not one prediction per row.
 */
const MODEL = `
import os, sys, time
import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ParamSchema, ParamSpec

class Rows(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)
        if "wait" in frame.columns:
            while not os.path.exists(str(frame["wait"].iloc[0])):
                time.sleep(0.02)
        if "mode" in frame.columns:
            modes = set(frame["mode"].astype(str))
            if "boom" in modes:
                raise ValueError("boom in the rows")
            if "dict" in modes:
                return {"rows": len(frame)}
            if "short" in modes:
                return [len(frame)]
        tag = (params or {}).get("tag")
        return frame.assign(tag=tag) if tag else frame

signature = ModelSignature(inputs=None, params=ParamSchema([ParamSpec("tag", "string", "")]))
mlflow.pyfunc.save_model(sys.argv[1], python_model=Rows(), signature=signature, pip_requirements=["mlflow", "pandas"])
`

const work = mkdtempSync(path.join(tmpdir(), 'mlserve-batch-'))
t.teardown(() => rmSync(work, {recursive: true, force: true}))
const modelDir = path.join(work, 'rows')
writeFileSync(path.join(work, 'save.py'), MODEL)
execFileSync(toolchainPython(), [path.join(work, 'save.py'), modelDir], {env: toolchainEnv(), stdio: 'ignore'})

const agent = new Agent({connections: 64})
t.teardown(() => agent.close())

interface Answer {
  status: number
  contentType: string | null
  body: string
}

async function post(server: Server, body: string, signal?: AbortSignal, type = 'application/json'): Promise<Answer> {
  const res = await fetch(`${server.url}/invocations`, {
    dispatcher: agent,
    method: 'POST',
    headers: {'content-type': type},
    body,
    signal,
  })
  return {status: res.status, contentType: res.headers.get('content-type'), body: await res.text()}
}

let files = 0
/** A file path the model waits for, and the function that creates it. */
function gate(): {path: string; open: () => void} {
  const file = path.join(work, `gate-${files++}`)
  return {path: file, open: () => writeFileSync(file, '')}
}

const BATCHED_CALLS = 'mlserve_batch_size_count{of="requests"}'
const BATCHED_REQUESTS = 'mlserve_batch_size_sum{of="requests"}'

/**
 * Holds the only scorer with a request waiting for a gate, sends `bodies` at once, waits until they
 * all queue, then opens the gate: the queued requests go to the scorer when it is free again.
 */
async function behindBusyScorer(server: Server, bodies: readonly string[], types?: readonly string[]) {
  const blocker = gate()
  const blocking = post(server, JSON.stringify({dataframe_records: [{wait: blocker.path}]}))
  await until('the scorer is busy', async () => (await metricValue(server, 'mlserve_scorer_requests_in_flight')) === 1)
  const answers = bodies.map((body, i) => post(server, body, undefined, types?.[i]))
  await until('every request is queued', async () => (await metricValue(server, 'mlserve_queue_depth')) === bodies.length)
  blocker.open()
  t.equal((await blocking).status, 200, 'the request that held the scorer is answered')
  return Promise.all(answers)
}

/** What mlflow answers for each body sent alone. */
async function reference(server: Server, bodies: readonly string[], types?: readonly string[]): Promise<Answer[]> {
  const answers: Answer[] = []
  // eslint-disable-next-line no-await-in-loop
  for (const [i, body] of bodies.entries()) answers.push(await post(server, body, undefined, types?.[i]))
  return answers
}

const split = (columns: string[], data: unknown[][], params?: object) =>
  JSON.stringify({dataframe_split: {columns, data}, ...(params ? {params} : {})}).replaceAll('"__NaN__"', 'NaN')
const NAN = '__NaN__'

let mlflow: Server
let ours: Server
t.before(async () => {
  // Each is assigned as soon as it runs, so the teardown stops it even when the other fails to start.
  await Promise.all([
    startMlflowServe(modelDir).then((server) => (mlflow = server)),
    startMlserve(['-m', modelDir, '--batch', '-w', '1', '--max-concurrency', '1', '-t', '8', '--no-access-log']).then(
      (server) => (ours = server),
    ),
  ])
})
t.teardown(async () => {
  await Promise.all([mlflow?.stop('SIGTERM'), ours?.stop('SIGINT')])
})

t.test('every row format and params: merged, and each answer is byte for byte mlflow’s for it alone', async (t) => {
  const bodies = [
    split(
      ['x', 's'],
      [
        [1.5, 'é'],
        [NAN, '日本'],
      ],
    ),
    split(['x', 's'], [[2.25, '"quoted", ]']]),
    split(
      ['x', 's'],
      [
        [-0.1, 'a'],
        [1e300, 'ü'],
      ],
    ),
    JSON.stringify({dataframe_records: [{x: 1, s: 'ñ'}]}),
    JSON.stringify({
      dataframe_records: [
        {x: 7, s: 'z'},
        {x: 8, s: '\u2603'},
      ],
    }),
    JSON.stringify({instances: [{x: 1.5}]}),
    JSON.stringify({instances: [{x: 2.5}, {x: 3.5}]}),
    JSON.stringify({
      inputs: [
        [1, 2],
        [3, 4],
      ],
    }),
    JSON.stringify({inputs: [[5, 6]]}),
    split(['x', 's'], [[1.5, 'p']], {tag: 'α'}),
    split(['x', 's'], [[2.5, 'q']], {tag: 'α'}),
    split(['x', 's'], [[3.5, 'r']], {tag: 'b'}),
    split(['x', 's'], [[4.5, 's']], {tag: 'b'}),
  ]
  const callsBefore = await metricValue(ours, BATCHED_CALLS)
  const actual = await behindBusyScorer(ours, bodies)
  const expected = await reference(mlflow, bodies)
  for (const [i, body] of bodies.entries()) t.same(actual[i], expected[i], `same answer as mlflow for ${body}`)
  t.equal(expected[0]!.status, 200, 'the reference predicted')
  t.match(expected[0]!.body, /NaN/, 'NaN in the answer')
  t.match(expected[0]!.body, /\\u65e5/, 'non-ASCII escaped in the answer')
  t.equal((await metricValue(ours, BATCHED_CALLS)) - callsBefore, 6, 'six merged calls: one per compatible group')
  t.equal(await metricValue(ours, BATCHED_REQUESTS), 13, 'holding all 13 requests')
})

t.test('integers beyond 2^53 and int64: each answer is mlflow’s for it alone (pandas types them by sign and range)', async (t) => {
  // Alone: int64, uint64, int64. Merged into one frame they would turn float64 (-9007199254740992.0).
  const bodies = ['-9007199254740993', '18446744073709551615', '9007199254740993'].map((x) => `{"instances": [[${x}]]}`)
  const actual = await behindBusyScorer(ours, bodies)
  const expected = await reference(mlflow, bodies)
  for (const [i, body] of bodies.entries()) t.same(actual[i], expected[i], `same answer as mlflow for ${body}`)
  t.match(expected[0]!.body, /-9007199254740993\b/, 'mlflow keeps the integer exactly')
})

t.test('a follower never rides under the leader’s Content-Type: APPLICATION/JSON gets mlflow’s answer for it', async (t) => {
  const bodies = [1.5, 2.5, 3.5].map((x) => split(['x', 's'], [[x, 'a']]))
  const types = ['application/json', 'APPLICATION/JSON', 'application/json']
  const actual = await behindBusyScorer(ours, bodies, types)
  const expected = await reference(mlflow, bodies, types)
  t.equal(expected[1]!.status, 415, 'mlflow refuses it')
  for (const [i, body] of bodies.entries()) t.same(actual[i], expected[i], `same answer as mlflow for ${types[i]} ${body}`)
})

t.test('a request that fails among merged ones gets its own error; the others their predictions', async (t) => {
  const bodies = [
    split(['x', 'mode'], [[1.5, 'ok']]),
    split(['x', 'mode'], [[2.5, 'boom']]),
    split(['x', 'mode'], [[3.5, 'ok']]),
    split(['x', 'y'], [[3.5, 1]]),
  ]
  const actual = await behindBusyScorer(ours, bodies)
  const expected = await reference(mlflow, bodies)
  for (const [i, body] of bodies.entries()) t.same(actual[i], expected[i], `same answer as mlflow for ${body}`)
  t.not(actual[1]!.status, 200, 'the failing request gets its error')
  t.match(actual[1]!.body, /boom in the rows/)
  t.same(
    actual.map((a) => a.status),
    [200, actual[1]!.status, 200, 200],
    'the others succeed',
  )
})

t.test('a member whose deadline passes gets 504; the others of its call their answers', async (t) => {
  const blocker = gate()
  const slowCall = gate()
  const row = (x: number) => split(['x', 'wait'], [[x, slowCall.path]])
  const blocking = post(ours, JSON.stringify({dataframe_records: [{wait: blocker.path}]}))
  await until('the scorer is busy', async () => (await metricValue(ours, 'mlserve_scorer_requests_in_flight')) === 1)
  const early = post(ours, row(1.5))
  await until('the first request is queued', async () => (await metricValue(ours, 'mlserve_queue_depth')) === 1)
  // Its deadline (-t 8) comes well before the others'.
  await new Promise((resolve) => setTimeout(resolve, 4000))
  const later = [post(ours, row(2.5)), post(ours, row(3.5))]
  await until('all are queued', async () => (await metricValue(ours, 'mlserve_queue_depth')) === 3)
  const calls = await metricValue(ours, BATCHED_CALLS)
  blocker.open()
  await blocking
  await until('the three are one call', async () => (await metricValue(ours, BATCHED_CALLS)) === calls + 1)
  const timedOut = await early
  t.equal(timedOut.status, 504, 'the first one times out while the merged call runs')
  t.equal(timedOut.body, 'Request processing time exceeded limit')
  slowCall.open()
  const answers = await Promise.all(later)
  const expected = await reference(mlflow, [row(2.5), row(3.5)])
  t.same(answers, expected, 'the others get their own answers')
})

t.test('a client that leaves does not disturb the others of its call', async (t) => {
  const blocker = gate()
  const slowCall = gate()
  const row = (x: number) => split(['x', 'wait'], [[x, slowCall.path]])
  const blocking = post(ours, JSON.stringify({dataframe_records: [{wait: blocker.path}]}))
  await until('the scorer is busy', async () => (await metricValue(ours, 'mlserve_scorer_requests_in_flight')) === 1)
  const leaving = new AbortController()
  const left = post(ours, row(1.5), leaving.signal).then(
    () => 'answered',
    () => 'left',
  )
  const staying = [post(ours, row(2.5)), post(ours, row(3.5))]
  await until('all are queued', async () => (await metricValue(ours, 'mlserve_queue_depth')) === 3)
  const calls = await metricValue(ours, BATCHED_CALLS)
  blocker.open()
  await blocking
  await until('the three are one call', async () => (await metricValue(ours, BATCHED_CALLS)) === calls + 1)
  leaving.abort()
  t.equal(await left, 'left')
  slowCall.open()
  const answers = await Promise.all(staying)
  t.same(answers, await reference(mlflow, [row(2.5), row(3.5)]), 'the others get their own answers')
  t.same(await post(ours, row(4.5)), (await reference(mlflow, [row(4.5)]))[0], 'and the server goes on')
})

for (const mode of ['dict', 'short']) {
  t.test(`a model whose output is not row-aligned (${mode}): each request alone, then no more batching`, async (t) => {
    const server = await startMlserve(['-m', modelDir, '--batch', '-w', '1', '--max-concurrency', '1', '--no-access-log'])
    t.teardown(() => server.stop('SIGINT'))
    const bodies = [1.5, 2.5, 3.5].map((x) => split(['x', 'mode'], [[x, mode]]))
    const actual = await behindBusyScorer(server, bodies)
    const expected = await reference(mlflow, bodies)
    for (const [i, body] of bodies.entries()) t.same(actual[i], expected[i], `same answer as mlflow for ${body}`)
    t.equal(await metricValue(server, BATCHED_CALLS), 1, 'they were merged once')
    t.match(server.stderr(), /not one prediction per input row.*batching is off for this model/)
    const next = [4.5, 5.5].map((x) => split(['x', 's'], [[x, 'a']]))
    t.same(await behindBusyScorer(server, next), await reference(mlflow, next), 'later requests are answered')
    t.equal(await metricValue(server, BATCHED_CALLS), 1, 'and no longer merged')
  })
}

t.test('--batch-wait: a request that finds a free scorer waits for compatible ones to join its call', async (t) => {
  const server = await startMlserve(['-m', modelDir, '--batch', '--batch-wait', '3000', '-w', '1', '--no-access-log'])
  t.teardown(() => server.stop('SIGINT'))
  const bodies = [1.5, 2.5, 3.5].map((x) => split(['x', 's'], [[x, 'é']]))
  const actual = await Promise.all(bodies.map((body) => post(server, body)))
  t.same(actual, await reference(mlflow, bodies), 'each gets its own answer')
  t.equal(await metricValue(server, BATCHED_CALLS), 1, 'one merged call')
  t.equal(await metricValue(server, BATCHED_REQUESTS), 3, 'holding the three requests')
})

t.test('--batch with its defaults (--max-concurrency 16): requests wait for the call of their kind in flight and go as one', async (t) => {
  const server = await startMlserve(['-m', modelDir, '--batch', '-w', '1', '-t', '8', '--no-access-log'])
  t.teardown(() => server.stop('SIGINT'))
  const blocker = gate()
  const held = split(['x', 'wait'], [[1, blocker.path]])
  const first = post(server, held)
  await until('the first call is in flight', async () => (await metricValue(server, 'mlserve_scorer_requests_in_flight')) === 1)
  const before = await metricValue(server, 'mlserve_http_requests_in_flight')
  const bodies = [2, 3, 4].map((x) => split(['x', 'wait'], [[x, blocker.path]]))
  const waiting = bodies.map(async (body) => post(server, body))
  await until('the three have arrived', async () => (await metricValue(server, 'mlserve_http_requests_in_flight')) === before + 3)
  t.equal(await metricValue(server, 'mlserve_scorer_requests_in_flight'), 1, 'they wait rather than take more of the 16 slots')
  // CSV cannot merge: it takes another slot at once, while the held call is still in flight.
  const csv = await post(server, 'x\n5\n', undefined, 'text/csv')
  t.same(csv, await post(mlflow, 'x\n5\n', undefined, 'text/csv'), 'the request that cannot merge is answered, not held behind the call')
  blocker.open()
  const actual = await Promise.all([first, ...waiting])
  const expected = await reference(mlflow, [held, ...bodies])
  t.same(actual, expected, 'each answer is byte for byte mlflow’s for it alone')
  t.equal(await metricValue(server, BATCHED_CALLS), 1, 'the three went as one merged call')
  t.equal(await metricValue(server, BATCHED_REQUESTS), 3, 'holding the three')
})
