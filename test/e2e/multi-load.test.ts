// Several models, loaded on demand and evicted (issue 27 items 3 and 4), with the real scorer: --load lazy
// with --max-loaded 1 and alternating requests (every answer right, evictions counted), gunicorn models under
// the same limits, one loader per environment (kill -9 of one restarts only its models), --strict failing at
// the first failure, usage errors, and Ctrl-C / kill -9 of mlserve leaving no process.
import {cpSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {fetch} from 'undici'

import {gone, runMlserve, startMlserve, waitForPing, type Server} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-multiload-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))

const SUM_BODY = JSON.stringify({
  dataframe_split: {
    columns: ['a', 'b'],
    data: [
      [1, 2],
      [3, 4],
    ],
  },
})
const ECHO_BODY = '{"dataframe_records": [{"x": 1}]}'

const post = async (server: Server, name: string, body: string) => {
  const res = await fetch(`${server.url}/models/${name}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body})
  return {status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after')}
}

const models = async (server: Server) =>
  ((await (await fetch(`${server.url}/models`)).json()) as {models: Array<Record<string, unknown>>}).models
const metric = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"()]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0)

/** Every process the multi-model server started, from its log: environment loaders, model loaders, scorers. */
const allPids = (server: Server) => {
  const log = server.stderr()
  const pick = (pattern: RegExp) => [...log.matchAll(pattern)].map((match) => Number(match[1]))
  return [
    ...pick(/loader ready in \d+ ms \(pid (\d+)\)/g),
    ...pick(/the model is loaded once in pid (\d+)/g),
    ...pick(/start scorer \(uvicorn, 1 process, preload\): pid (\d+)/g),
  ]
}

t.test('--load lazy --max-loaded 1: alternating requests load and evict, every answer right; Ctrl-C leaves no process', async (t) => {
  const server = await startMlserve([
    '--load',
    'lazy',
    '--max-loaded',
    '1',
    '-m',
    `sum=${fixtureModel('sum')}`,
    '-m',
    `echo=${fixtureModel('echo')}`,
  ])
  t.teardown(async () => {
    await server.stop('SIGKILL')
  })
  await server.waitForOutput(/ready: serving 2 of 2 models .*; loaded on first request: sum, echo/)
  t.match(
    await models(server),
    [
      {name: 'sum', state: 'unloaded', memory_bytes: null, last_used: null},
      {name: 'echo', state: 'unloaded'},
    ],
    'lazy: nothing loaded',
  )
  t.equal((await fetch(`${server.url}/ping`)).status, 200, '/ping: 200, an unloaded model can be served')
  const readyz = await fetch(`${server.url}/readyz`)
  t.equal(readyz.status, 200, '/readyz: 200 too (a lazy server is ready for traffic)')
  t.match(await readyz.json(), {
    status: 'ready',
    models: [
      {name: 'sum', state: 'unloaded'},
      {name: 'echo', state: 'unloaded'},
    ],
  })

  for (let round = 0; round < 3; round++) {
    // eslint-disable-next-line no-await-in-loop
    const [sum, echo] = [await post(server, 'sum', SUM_BODY), await post(server, 'echo', ECHO_BODY)]
    t.same([sum.status, sum.body], [200, '{"predictions": [3, 7]}'], `round ${round}: sum's own answer`)
    t.equal(echo.status, 200, `round ${round}: echo answers`)
    t.match(echo.body, /"columns": \["x"\]/, `round ${round}: echo's own answer`)
  }

  const text = await (await fetch(`${server.url}/metrics`)).text()
  t.equal(metric(text, 'mlserve_model_loads_total{model="sum",result="ok"}'), 3)
  t.equal(metric(text, 'mlserve_model_loads_total{model="echo",result="ok"}'), 3)
  t.equal(
    metric(text, 'mlserve_model_evictions_total{model="sum"}') + metric(text, 'mlserve_model_evictions_total{model="echo"}'),
    5,
    'five evictions',
  )
  t.equal(metric(text, 'mlserve_models_loaded'), 1)
  t.match(text, /mlserve_model_load_seconds_count 6\n/)
  t.match(server.stderr(), /sum: unloaded \(least recently used, to make room\) in \d+ ms/)
  const listed = await models(server)
  t.match(listed, [
    {name: 'sum', state: 'unloaded'},
    {name: 'echo', state: 'loaded', memory_bytes: Number, last_used: /^\d{4}-/},
  ])
  t.equal(server.stderr().match(/loader ready in/g)?.length, 1, 'one loader for the one environment, started once')

  const pids = allPids(server)
  t.ok(pids.length >= 7, 'a loader, and a model loader and a scorer per load')
  t.same(await server.stop('SIGINT'), {code: 0, signal: null}, 'Ctrl-C: exit 0')
  for (const pid of pids) t.ok(await gone(pid), `pid ${pid} is gone`) // eslint-disable-line no-await-in-loop
})

/**
 * A tracking server that holds its answer to runs/get until `release()`: the run's artifacts are a local
 * copy of the `sum` fixture (as a file store lays them out), so the model resolves once released.
 */
async function heldTrackingServer(runId: string) {
  const artifacts = path.join(scratch, 'mlruns', '0', runId, 'artifacts')
  cpSync(fixtureModel('sum'), path.join(artifacts, 'model'), {recursive: true})
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let asked!: () => void
  const askedForRun = new Promise<void>((resolve) => {
    asked = resolve
  })
  const server = createServer((req, res) => {
    req.resume()
    const answer = (value: unknown) => res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify(value))
    if (req.url?.startsWith('/api/2.0/mlflow/runs/get')) {
      asked()
      void released.then(() => answer({run: {info: {run_id: runId, experiment_id: '0', artifact_uri: `file://${artifacts}`}}}))
    } else if (req.url?.startsWith('/api/2.0/mlflow/logged-models/search')) answer({models: []})
    else res.writeHead(404, {'content-type': 'application/json'}).end('{"error_code": "ENDPOINT_NOT_FOUND"}')
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve)
  })
  return {url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, askedForRun, release, close: () => server.close()}
}

t.test('--load lazy: /ping and /readyz wait until every model is prepared; /livez does not', async (t) => {
  const runId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
  const tracking = await heldTrackingServer(runId)
  t.teardown(() => tracking.close())
  const server = await startMlserve(['--load', 'lazy', '-m', `sum=${fixtureModel('sum')}`, '-m', `held=runs:/${runId}/model`], {
    env: toolchainEnv({MLFLOW_TRACKING_URI: tracking.url, MLSERVE_MODEL_ROOT: path.join(scratch, 'model-cache')}),
    waitReady: false,
  })
  t.teardown(async () => {
    tracking.release()
    await server.stop('SIGKILL')
  })
  await tracking.askedForRun
  // sum is prepared (unloaded: its first request would load it) while held is still being resolved.
  let listed = await models(server)
  for (let i = 0; i < 600 && listed[0]?.state !== 'unloaded'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100)) // eslint-disable-line no-await-in-loop
    listed = await models(server) // eslint-disable-line no-await-in-loop
  }

  t.match(listed, [
    {name: 'sum', state: 'unloaded'},
    {name: 'held', state: 'loading'},
  ])
  const ping = await fetch(`${server.url}/ping`)
  t.equal(ping.status, 503, '/ping: not ready while a model is still being prepared')
  t.equal(ping.headers.get('retry-after'), '1')
  await ping.arrayBuffer()
  const readyz = await fetch(`${server.url}/readyz`)
  t.equal(readyz.status, 503, '/readyz: not ready either')
  t.match(await readyz.json(), {
    status: 'starting',
    models: [
      {name: 'sum', state: 'unloaded'},
      {name: 'held', state: 'loading'},
    ],
  })
  t.equal((await fetch(`${server.url}/health`)).status, 503, '/health as /ping')
  t.equal((await fetch(`${server.url}/livez`)).status, 200, '/livez: alive all along')

  tracking.release()
  await waitForPing(server.url, server)
  t.equal((await fetch(`${server.url}/readyz`)).status, 200, '/readyz: ready once both are prepared')
  t.match(await models(server), [
    {name: 'sum', state: 'unloaded'},
    {name: 'held', state: 'unloaded'},
  ])
  const held = await post(server, 'held', SUM_BODY)
  t.same([held.status, held.body], [200, '{"predictions": [3, 7]}'], 'held loads on its first request and answers')
})

t.test("two environments: kill -9 of one's loader restarts only its models; kill -9 of mlserve leaves no process", async (t) => {
  const file = path.join(scratch, 'two-envs.yaml')
  // sum in a virtualenv mlserve builds (the warm environment cache), echo in the toolchain's (local).
  writeFileSync(file, `- uri: ${fixtureModel('sum')}\n  env_manager: virtualenv\n- uri: ${fixtureModel('echo')}\n`)
  const server = await startMlserve(['--models', file])
  t.teardown(async () => {
    await server.stop('SIGKILL')
  })
  await server.waitForOutput(/ready: serving 2 of 2 models/)
  const listed = await models(server)
  t.match(listed, [
    {name: 'sum', environment: {manager: 'virtualenv', key: String}},
    {name: 'echo', environment: {manager: 'local'}},
  ])
  const loaders = [...server.stderr().matchAll(/environment (\S+): loader ready in \d+ ms \(pid (\d+)\)/g)].map((m) => ({
    key: m[1]!,
    pid: Number(m[2]),
  }))
  t.equal(loaders.length, 2, 'one loader per environment')
  const local = loaders.find((loader) => loader.key === 'local')!
  const sumScorer = Number(/sum: start scorer \(uvicorn, 1 process, preload\): pid (\d+)/.exec(server.stderr())![1])
  const echoScorer = Number(/echo: start scorer \(uvicorn, 1 process, preload\): pid (\d+)/.exec(server.stderr())![1])

  process.kill(local.pid, 'SIGKILL')
  t.ok(await gone(echoScorer), "echo's scorer died with its environment's loader")
  for (let i = 0; i < 5; i++) t.equal((await post(server, 'sum', SUM_BODY)).status, 200, 'sum serves on') // eslint-disable-line no-await-in-loop
  await server.waitForOutput(/the loader of environment local \(pid \d+\) is gone: starting a new one/)
  let echo = await post(server, 'echo', ECHO_BODY)
  for (let i = 0; i < 60 && echo.status !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500)) // eslint-disable-line no-await-in-loop
    echo = await post(server, 'echo', ECHO_BODY) // eslint-disable-line no-await-in-loop
  }

  t.equal(echo.status, 200, 'echo serves again, forked from a new loader')
  t.ok(!(await gone(sumScorer, 500)), "sum's scorer was never restarted")
  t.equal(server.stderr().match(/sum: start scorer \(uvicorn, 1 process, preload\): pid/g)?.length, 1, 'sum started once')
  t.equal(server.stderr().match(/environment local: loader ready/g)?.length, 2, "echo's environment got a new loader")

  const pids = allPids(server)
  t.equal((await server.stop('SIGKILL')).signal, 'SIGKILL')
  for (const pid of pids) t.ok(await gone(pid), `pid ${pid} is gone after kill -9 of mlserve`) // eslint-disable-line no-await-in-loop
})

t.test('mlflow < 2.21 (gunicorn): served as ever, one process set per model, under the same limits', async (t) => {
  const server = await startMlserve(
    ['--load', 'lazy', '--max-loaded', '1', '-m', `a=${fixtureModel('sum', 'legacy')}`, '-m', `b=${fixtureModel('raise', 'legacy')}`],
    {toolchain: 'legacy'},
  )
  t.teardown(async () => {
    await server.stop('SIGKILL')
  })
  await server.waitForOutput(/ready: serving 2 of 2 models/)
  const [first, other, again] = [await post(server, 'a', SUM_BODY), await post(server, 'b', SUM_BODY), await post(server, 'a', SUM_BODY)]
  t.same([first.status, first.body], [200, '{"predictions": [3, 7]}'], "a's own answer")
  t.not(other.status, 503, 'b was loaded for its request (a made room)')
  t.notMatch(other.body, /"predictions": \[3, 7\]/, "b never gets a's answer")
  t.same([again.status, again.body], [200, '{"predictions": [3, 7]}'], 'a again, loaded again')
  t.match(server.stderr(), /a: start scorer \(gunicorn, 1 process\)/, 'gunicorn, spawned as for one model')
  t.notMatch(server.stderr(), /loader ready/, 'no environment loader for gunicorn models')
  t.equal(server.stderr().match(/unloaded \(least recently used, to make room\)/g)?.length, 2, 'two evictions')
})

t.test('--strict fails as soon as one model fails: the models after it are not loaded', async (t) => {
  const server = await startMlserve(
    ['--strict', '--max-loading', '1', '-m', `broken=${fixtureModel('broken')}`, '-m', `sum=${fixtureModel('sum')}`],
    {waitReady: false},
  )
  const exit = await server.exited
  t.equal(exit.code, 40, 'SCORER_START_FAILED')
  t.match(server.stderr(), /1 of 2 models could not be served \(--strict\): broken: .*UnpicklingError/)
  t.notMatch(server.stderr(), /model sum is ready/, 'sum was not loaded first')
  for (const pid of allPids(server)) t.ok(await gone(pid), `pid ${pid} is gone`) // eslint-disable-line no-await-in-loop
})

t.test('a full queue for an unloaded model: 503 with Retry-After in MLflow envelope, nothing loaded', async (t) => {
  const server = await startMlserve([
    '--load',
    'lazy',
    '--max-queue',
    '0',
    '-m',
    `sum=${fixtureModel('sum')}`,
    '-m',
    `echo=${fixtureModel('echo')}`,
  ])
  t.teardown(async () => {
    await server.stop('SIGKILL')
  })
  // The ready line: both models prepared (startMlserve's /ping 200 says so too).
  await server.waitForOutput(/ready: serving 2 of 2 models .*; loaded on first request: sum, echo/)
  const refused = await post(server, 'sum', SUM_BODY)
  t.equal(refused.status, 503)
  t.equal(refused.retryAfter, '1')
  t.match(JSON.parse(refused.body), {
    error_code: 'TEMPORARILY_UNAVAILABLE',
    message: /The model sum is being loaded and 0 requests already wait for it \(--max-queue\)/,
  })
  t.match(await models(server), [
    {name: 'sum', state: 'unloaded'},
    {name: 'echo', state: 'unloaded'},
  ])
  t.same(await server.stop('SIGINT'), {code: 0, signal: null})
})

t.test('bad limits are usage errors (exit 2) before any work', async (t) => {
  const two = ['-m', `a=${fixtureModel('sum')}`, '-m', `b=${fixtureModel('echo')}`]
  for (const [args, message] of [
    [['--max-memory', 'lots', ...two], /--max-memory lots: not a size\./],
    [['--max-loaded', '0', ...two], /max-loaded/],
    [['--load', 'sometimes', ...two], /load/],
    [['--max-loading', '0', ...two], /max-loading/],
    [['--max-loaded', '2', '-m', fixtureModel('sum')], /--max-loaded needs several models/],
  ] as const) {
    const result = await runMlserve(['serve', ...args]) // eslint-disable-line no-await-in-loop
    t.equal(result.code, 2, args.join(' '))
    t.match(result.stderr, message)
    t.notMatch(result.stderr, /resolve model/, 'nothing was resolved')
  }
})
