// The lean protocol end to end (on by default with the fast path): POST /invocations reaches the scorer as
// frames on its .lean socket, and answers byte for byte as `mlflow models serve` (an exception in predict,
// 415, bad JSON, params, CSV, parquet); a timed-out request, a worker that dies mid-request and a kill -9
// under load behave as over HTTP; --preload forks speak it too; --no-fast-path turns it off.
import {execFileSync} from 'node:child_process'

import t, {type Test} from 'tap'
import {Agent, fetch} from 'undici'

import {act, controlClient, loadLoop} from '../helpers/control.js'
import {frameConnections} from '../helpers/frames.js'
import {startMlflowServe, startMlserve, type Server} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

t.teardown(() => controlClient.close())
const fresh = new Agent({pipelining: 0})
t.teardown(() => fresh.close())

interface Request {
  readonly name: string
  readonly contentType: string
  readonly body: string | Buffer
}

async function send(server: Server, request: Request) {
  const res = await fetch(`${server.url}/invocations`, {
    dispatcher: fresh,
    method: 'POST',
    headers: {'content-type': request.contentType},
    body: Buffer.from(request.body),
  })
  const names = [...res.headers.keys()].filter((name) => !['x-request-id', 'connection', 'keep-alive'].includes(name)).sort()
  return {status: res.status, contentType: res.headers.get('content-type'), server: res.headers.get('server'), names, body: await res.text()}
}

/** Waits for the first scorer's uvicorn start line (its frame socket is beside it). */
async function scorerStarted(server: Server): Promise<void> {
  await server.waitForOutput(/Uvicorn running on unix socket (\S+)\.sock/)
}

async function compareWithMlflow(t: Test, model: string, requests: readonly Request[]) {
  const mlflow = await startMlflowServe(model)
  t.teardown(() => mlflow.stop())
  const mlserve = await startMlserve(['-m', model])
  t.teardown(() => mlserve.stop())
  for (const request of requests) {
    // eslint-disable-next-line no-await-in-loop -- one request at a time, both servers alike
    const [ours, theirs] = [await send(mlserve, request), await send(mlflow, request)]
    t.same(ours, theirs, `${request.name}: the same status, headers and bytes as mlflow models serve (${theirs.status})`)
  }

  await scorerStarted(mlserve)
  t.ok(frameConnections(mlserve) >= 1, 'the requests went as frames')
  return mlserve
}

const JSON_TYPE = 'application/json'
const SPLIT = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
const parquet = execFileSync(
  toolchainPython(),
  ['-c', "import sys, pandas as pd; pd.DataFrame({'a': [1, 3], 'b': [2, 4]}).to_parquet(sys.stdout.buffer)"],
  {env: toolchainEnv()},
)

t.test('sum: the answers of mlflow models serve, through frames', async (t) => {
  await compareWithMlflow(t, fixtureModel('sum'), [
    {name: 'dataframe_split', contentType: JSON_TYPE, body: SPLIT},
    {name: 'params', contentType: JSON_TYPE, body: SPLIT.replace(/}$/, ', "params": {"scale": 10}}')},
    {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n3,4\n'},
    {name: 'parquet', contentType: 'application/vnd.apache.parquet', body: parquet},
    {name: '415', contentType: 'text/plain', body: 'x'},
    {name: '415 charset', contentType: 'application/json; charset=latin-1', body: SPLIT},
    {name: 'bad JSON', contentType: JSON_TYPE, body: '{"dataframe_split": '},
    {name: 'missing column', contentType: JSON_TYPE, body: '{"dataframe_split": {"columns": ["a"], "data": [[1]]}}'},
  ])
})

t.test('raise: an exception in predict, through frames', async (t) => {
  const mlserve = await compareWithMlflow(t, fixtureModel('raise'), [
    {name: 'a predict that raises', contentType: JSON_TYPE, body: SPLIT},
    {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n'},
  ])
  t.notMatch(mlserve.stderr(), /Exception in mlserve's lean protocol/, "no failure of mlserve's own")
})

const control = fixtureModel('control')

/** Asks until a scorer other than `pid` answers (a restart takes a few seconds); its answer. */
async function servedByAnother(server: Server, pid: number | undefined) {
  for (let i = 0; i < 240; i++) {
    // eslint-disable-next-line no-await-in-loop -- one probe after another
    const answer = await act(server, 'pid')
    if (answer.status === 200 && answer.pid !== pid) return answer
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 250))
  }

  return act(server, 'pid')
}

t.test('control: a timed-out request, a worker dying mid-request, kill -9 under load', async (t) => {
  const server = await startMlserve(['-m', control, '-t', '2', '--liveness-interval', '1'])
  t.teardown(() => server.stop())
  await scorerStarted(server)
  const first = await act(server, 'pid')
  t.equal(first.status, 200)
  t.ok(frameConnections(server) >= 1, 'the control model is served through frames')

  const slow = await act(server, 'sleep:4')
  t.equal(slow.status, 504, 'a request past -t: 504')
  t.equal(slow.body, 'Request processing time exceeded limit', "mlflow's 504 body")
  t.equal((await act(server, 'pid')).status, 200, 'the next request is served')

  const crash = await act(server, 'exit')
  t.equal(crash.status, 502, 'a worker that dies mid-request: 502')
  t.match(JSON.parse(crash.body), {error_code: 'INTERNAL_ERROR', message: /The model scoring process failed while handling the request/})
  await server.waitForOutput(/exited with code 3 while serving/)
  const after = await servedByAnother(server, first.pid)
  t.equal(after.status, 200, 'served again by a new worker')

  const load = loadLoop(server, 4)
  await new Promise((resolve) => setTimeout(resolve, 500))
  process.kill(after.pid!, 'SIGKILL')
  await server.waitForOutput(/was killed by SIGKILL while serving/)
  t.equal((await servedByAnother(server, after.pid)).status, 200, 'served again after the restart')
  await load.stop()
  const {statuses} = load
  t.ok(statuses.length > 10, `requests kept flowing (${statuses.length})`)
  t.notOk(statuses.includes(0), 'no request hung or lost its connection')
  t.same(
    [...new Set(statuses)].filter((status) => ![200, 502, 503].includes(status)),
    [],
    'every request got 200, or a 502/503 envelope while the worker was gone',
  )
})

t.test('requests whose predict waits run side by side in one worker (the gate lets them in)', async (t) => {
  const server = await startMlserve(['-m', control])
  t.teardown(() => server.stop())
  await scorerStarted(server)
  const sleeping = () => server.stderr().match(/control model: sleeping in pid/g)?.length ?? 0
  let answered = 0
  const requests = Array.from({length: 4}, async () => {
    const result = await act(server, 'sleep:3')
    answered++
    return result
  })
  while (sleeping() < 4 && answered === 0) {
    // eslint-disable-next-line no-await-in-loop -- polls the log until all four started or one ended
    await new Promise((resolve) => setTimeout(resolve, 20))
  }

  t.equal(sleeping(), 4, 'all four predictions were running before the first answer came back')
  t.equal(answered, 0, 'none had answered by then')
  t.same(
    (await Promise.all(requests)).map(({status}) => status),
    [200, 200, 200, 200],
  )
})

t.test('--preload: forked scorers speak frames; --no-fast-path: none', async (t) => {
  const preload = await startMlserve(['-m', control, '--preload'])
  t.teardown(() => preload.stop())
  await scorerStarted(preload)
  t.equal((await act(preload, 'pid')).status, 200)
  t.ok(frameConnections(preload) >= 1, 'a forked scorer answers frames')
  await preload.stop()

  const off = await startMlserve(['-m', control, '--no-fast-path'])
  t.teardown(() => off.stop())
  await scorerStarted(off)
  t.equal((await act(off, 'pid')).status, 200)
  t.equal(frameConnections(off), 0, '--no-fast-path: HTTP only')
  t.notMatch(off.stderr(), /lean protocol/)
})
