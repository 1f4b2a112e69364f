// Several models from one mlserve (issue 27, step 1: eager loading): each /models/<name>/invocations answers
// byte for byte what `mlflow models serve` of that model answers on /invocations; GET /models; a model that
// fails to load while the others serve; --strict; unknown names; --models with --default-model; Ctrl-C.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'
import {fetch} from 'undici'

import {JSON_TYPE, exchange, split, type Case} from '../helpers/compare.js'
import {frameConnections, frameSocketsOf} from '../helpers/frames.js'
import {gone, runMlserve, startMlflowServe, startMlserve, type Server} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-multi-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))

const SUM_CASES: Case[] = [
  {
    name: 'dataframe_split',
    contentType: JSON_TYPE,
    body: split(
      ['a', 'b'],
      [
        [1, 2],
        [3, 4],
      ],
    ),
    expect: {status: 200, body: '{"predictions": [3, 7]}'},
  },
  {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n3,4\n', expect: {status: 200, body: '{"predictions": [3, 7]}'}},
  {name: 'a missing column', contentType: JSON_TYPE, body: split(['a'], [[1]]), expect: {status: 400}},
  {name: 'invalid JSON', contentType: JSON_TYPE, body: '{"dataframe_split": ', expect: {status: 400}},
  {name: 'unsupported content type', contentType: 'text/plain', body: 'a', expect: {status: 415}},
  {name: 'GET /invocations is 405', method: 'GET', expect: {status: 405}},
]
const ECHO_CASES: Case[] = [
  {name: 'records', contentType: JSON_TYPE, body: '{"dataframe_records": [{"x": 1}]}', expect: {status: 200}},
  {name: 'tensor', contentType: JSON_TYPE, body: '{"instances": [[1, 2], [3, 4]]}', expect: {status: 200}},
  {name: 'invalid JSON', contentType: JSON_TYPE, body: '{', expect: {status: 400}},
]

/** The pids of the scorers mlserve started (forked from each model's loader), from its log. */
const scorerPids = (server: Server) =>
  [...server.stderr().matchAll(/start scorer \(uvicorn, \d+ process(?:es)?(?:, preload)?\): pids? ([\d, ]+)/g)].flatMap((m) =>
    m[1]!.split(', ').map(Number),
  )
/** The environments' loaders and the models' loaders forked from them. */
const loaderPids = (server: Server) =>
  [...server.stderr().matchAll(/(?:loader ready in \d+ ms \(pid|the model is loaded once in pid) (\d+)/g)].map((m) => Number(m[1]))

async function compareRoute(t: Test, reference: Server, ours: Server, name: string, cases: readonly Case[]) {
  for (const c of cases) {
    // eslint-disable-next-line no-await-in-loop
    const [expected, actual] = await Promise.all([exchange(reference, c), exchange({url: `${ours.url}/models/${name}`}, c)])
    t.same(actual, expected, `${name}: ${c.name}: /models/${name}/invocations answers as mlflow models serve's /invocations`)
    if (c.expect) t.equal(actual.status, c.expect.status, `${name}: ${c.name}: status`)
    if (c.expect?.body !== undefined) t.match(actual.body, c.expect.body, `${name}: ${c.name}: body`)
  }
}

t.test('two models and one that fails to load, from one mlserve; Ctrl-C leaves no process', async (t) => {
  const [sumRef, echoRef, ours] = await Promise.all([
    startMlflowServe(fixtureModel('sum')),
    startMlflowServe(fixtureModel('echo')),
    startMlserve(['-m', fixtureModel('sum'), '-m', `echo=${fixtureModel('echo')}`, '-m', `broken=${fixtureModel('broken')}`]),
  ])
  t.teardown(async () => {
    await Promise.all([sumRef.stop('SIGTERM'), echoRef.stop('SIGTERM'), ours.stop('SIGKILL')])
  })
  await ours.waitForOutput(/ready: serving 2 of 3 models .*; not served: broken/)
  t.match(ours.stderr(), /model broken \(.*broken\) cannot be served: .*UnpicklingError/, 'the failed model is logged with its error')

  await compareRoute(t, sumRef, ours, 'sum', SUM_CASES)
  await compareRoute(t, echoRef, ours, 'echo', ECHO_CASES)
  t.ok(frameConnections(ours) >= 2, "the models' forked scorers (-w 1) are asked through frames, as one model's are")

  const list = (await (await fetch(`${ours.url}/models`)).json()) as {models: Array<Record<string, unknown>>}
  t.match(list.models, [
    {name: 'sum', state: 'loaded', environment: {manager: 'local'}, scorers: {ready: 1}, route: '/models/sum/invocations'},
    {name: 'echo', state: 'loaded', uri: 'echo' /* a local model by its directory's name, never a host path */},
    {name: 'broken', state: 'failed', error: /UnpicklingError/},
  ])
  t.match(await (await fetch(`${ours.url}/models/echo`)).json(), {name: 'echo', state: 'loaded'})

  const failed = await fetch(`${ours.url}/models/broken/invocations`, {method: 'POST', headers: {'content-type': JSON_TYPE}, body: '{}'})
  t.equal(failed.status, 503)
  t.match(await failed.json(), {error_code: 'TEMPORARILY_UNAVAILABLE', message: /The model broken failed to load: .*UnpicklingError/})

  const unknown = await fetch(`${ours.url}/models/nope/invocations`, {method: 'POST', body: '{}'})
  t.equal(unknown.status, 404)
  t.equal(
    await unknown.text(),
    '{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No model named \\"nope\\" is served here. Served models: sum, echo, broken."}',
  )

  const noDefault = await fetch(`${ours.url}/invocations`, {method: 'POST', headers: {'content-type': JSON_TYPE}, body: '{}'})
  t.equal(noDefault.status, 404)
  t.match(await noDefault.json(), {
    error_code: 'ENDPOINT_NOT_FOUND',
    message: /POST \/models\/<name>\/invocations, with <name> one of: sum, echo, broken/,
  })

  t.equal((await fetch(`${ours.url}/ping`)).status, 200, '/ping: 200 while one model serves')
  const ready = await fetch(`${ours.url}/readyz`)
  t.equal(ready.status, 200)
  t.match(await ready.json(), {status: 'ready', models: [{name: 'sum', state: 'loaded'}, {name: 'echo'}, {name: 'broken', state: 'failed'}]})
  const metrics = await (await fetch(`${ours.url}/metrics`)).text()
  t.match(
    metrics,
    /mlserve_http_requests_total\{model="sum",route="\/invocations",method="POST",status="200"\} 2\n/,
    'per-request series carry the model',
  )
  t.match(metrics, /mlserve_model_state\{model="broken",state="failed"\} 1\n/)

  const pids = scorerPids(ours)
  t.equal(pids.length, 3, 'three scorers were started (the broken one exited)')
  pids.push(...loaderPids(ours))
  const exit = await ours.stop('SIGINT')
  t.same(exit, {code: 0, signal: null}, 'Ctrl-C: exit 0')
  for (const pid of pids) t.ok(await gone(pid), `scorer ${pid} is gone`) // eslint-disable-line no-await-in-loop
})

t.test('--models file with per-model settings and --default-model: /invocations goes to that model', async (t) => {
  const file = path.join(scratch, 'models.yaml')
  writeFileSync(file, `- name: adder\n  uri: ${fixtureModel('sum')}\n  workers: 2\n- uri: ${fixtureModel('echo')}\n  timeout: 5\n`)
  const [sumRef, ours] = await Promise.all([startMlflowServe(fixtureModel('sum')), startMlserve(['--models', file, '--default-model', 'adder'])])
  t.teardown(async () => {
    await Promise.all([sumRef.stop('SIGTERM'), ours.stop('SIGKILL')])
  })
  await ours.waitForOutput(/ready: serving 2 of 2 models/)
  for (const c of SUM_CASES) {
    // eslint-disable-next-line no-await-in-loop
    const [expected, actual] = await Promise.all([exchange(sumRef, c), exchange(ours, c)])
    t.same(actual, expected, `${c.name}: /invocations answers as the default model's own server`)
  }
  t.ok(frameConnections(ours) >= 1, "the model's preloaded scorers (-w 2) are asked through frames")

  t.match(await (await fetch(`${ours.url}/models`)).json(), {
    models: [
      {name: 'adder', scorers: {configured: 2}},
      {name: 'echo', scorers: {configured: 1}},
    ],
    default_model: 'adder',
  })
  t.same(await ours.stop('SIGINT'), {code: 0, signal: null})
})

t.test('the front door guards every model: API keys (and the prefix) apply to /models/<name>/...; --no-fast-path: no frames', async (t) => {
  const ours = await startMlserve(
    ['--no-fast-path', '--static-prefix', '/p', '-m', `adder=${fixtureModel('sum')}`, '-m', `echo=${fixtureModel('echo')}`],
    {
      env: toolchainEnv({MLSERVE_AUTH_TOKENS: 'k3y'}),
    },
  )
  t.teardown(async () => {
    await ours.stop('SIGKILL')
  })
  t.match(ours.url, /\/p$/, 'the logged URL names the prefix')
  await ours.waitForOutput(/ready: serving 2 of 2 models/)
  const body = JSON.stringify({dataframe_split: {columns: ['a', 'b'], data: [[1, 2]]}})
  const post = (headers: Record<string, string>) =>
    fetch(`${ours.url}/models/adder/invocations`, {method: 'POST', headers: {'content-type': 'application/json', ...headers}, body})
  const refused = await post({})
  t.equal(refused.status, 401, 'no key: 401')
  t.match(await refused.json(), {error_code: 'UNAUTHENTICATED'})
  t.equal((await post({authorization: 'Bearer wrong'})).status, 401, 'a wrong key: 401')
  t.equal(await (await fetch(`${ours.url}/models`)).status, 401, 'GET /models needs a key too')
  const served = await post({'x-api-key': 'k3y'})
  t.equal(served.status, 200, 'the right key: 200')
  t.equal(frameSocketsOf(ours).length, 2, 'two scorers started')
  t.equal(frameConnections(ours), 0, '--no-fast-path: MLflow app over HTTP, no frame socket')
  t.equal(
    (await fetch(`${ours.url.replace(/\/p$/, '')}/models/adder/invocations`, {method: 'POST', body, headers: {'x-api-key': 'k3y'}})).status,
    404,
    'outside the prefix: 404',
  )
  t.equal((await fetch(`${ours.url}/ping`)).status, 200, '/ping stays open')
  t.same(await ours.stop('SIGINT'), {code: 0, signal: null})
})

t.test('--strict: one model that cannot be served fails the start, and nothing is left running', async (t) => {
  const server = await startMlserve(['--strict', '-m', `sum=${fixtureModel('sum')}`, '-m', `broken=${fixtureModel('broken')}`], {
    waitReady: false,
  })
  const exit = await server.exited
  t.equal(exit.code, 40, 'SCORER_START_FAILED')
  t.match(server.stderr(), /1 of 2 models could not be served \(--strict\): broken: .*UnpicklingError/)
  for (const pid of [...scorerPids(server), ...loaderPids(server)]) t.ok(await gone(pid), `process ${pid} is gone`) // eslint-disable-line no-await-in-loop

  const none = await startMlserve(['-m', 'a=/nonexistent/a', '-m', 'b=/nonexistent/b'], {waitReady: false})
  t.equal((await none.exited).code, 40, 'no model can be served: the start fails')
  t.match(none.stderr(), /No model could be served: a: Model path does not exist/)
})

t.test('usage errors exit 2 before any work', async (t) => {
  const dup = await runMlserve(['serve', '-m', `a=${fixtureModel('sum')}`, '-m', `a=${fixtureModel('echo')}`])
  t.equal(dup.code, 2)
  t.match(dup.stderr, /Two models are named "a"/)
  t.notMatch(dup.stderr, /resolve model/, 'nothing was resolved')
  const bad = path.join(scratch, 'bad.yaml')
  writeFileSync(bad, '- name: x\n')
  const badFile = await runMlserve(['serve', '--models', bad])
  t.equal(badFile.code, 2)
  t.match(badFile.stderr, /--models .*bad\.yaml: entry 1: uri is missing/)
  const badDefault = await runMlserve(['serve', '-m', `a=${fixtureModel('sum')}`, '--default-model', 'b'])
  t.equal(badDefault.code, 2)
  t.match(badDefault.stderr, /--default-model b is not one of the models served \(a\)/)
})
