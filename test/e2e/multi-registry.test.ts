// Registry patterns and per-model reloads against a real `mlflow server`: -m 'models:/fraud-*@champion'
// serves every match under its registered name; with --reload-interval an alias move of one model
// switches only that model (zero failed requests on the other), a model that gains the alias is added
// and one that loses it removed (its metric series dropped); a bad pattern is exit 2, an empty one exit 40.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {Agent, fetch} from 'undici'

import {eventually, runMlserve, startMlserve, type Server} from '../helpers/servers.js'
import {logModels, startTrackingServer} from '../helpers/tracking.js'
import {toolchainEnv} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-multireg-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))
const client = new Agent({connections: 4})
t.teardown(() => client.close())
const ROW = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}'

async function predict(url: string, name: string) {
  const res = await fetch(`${url}/models/${name}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: ROW,
    dispatcher: client,
  })
  return {status: res.status, body: await res.text(), version: res.headers.get('x-mlserve-model-version') ?? undefined}
}

async function registry(url: string, method: 'POST' | 'DELETE', route: string, body: Record<string, unknown>) {
  const res = await fetch(`${url}/api/2.0/mlflow/${route}`, {
    method,
    headers: {'content-type': 'application/json'},
    body: JSON.stringify(body),
    dispatcher: client,
  })
  if (!res.ok) throw new Error(`${route}: ${res.status} ${await res.text()}`)
  return (await res.json()) as {model_version?: {version: string}}
}

/** Waits for a log line after `from` characters of stderr. */
async function logLine(server: Server, pattern: RegExp, from = 0): Promise<void> {
  if (!(await eventually(() => pattern.test(server.stderr().slice(from)), 300_000))) {
    throw new Error(`no ${pattern} in the log:\n${server.stderr().slice(from)}`)
  }
}

t.test('a bad pattern is a usage error (exit 2) before anything starts', async (t) => {
  for (const pattern of ['models:/fraud-*[ab]@champion', 'models:/*', 'models:/*/3', 'models:/*@c*', 'x=models:/*@champion']) {
    // eslint-disable-next-line no-await-in-loop
    const result = await runMlserve(['serve', '-m', pattern, '-p', '0'], {env: toolchainEnv({MLFLOW_TRACKING_URI: 'http://127.0.0.1:9'})})
    t.equal(result.code, 2, `${pattern}: exit 2`)
    t.match(result.stderr, /INVALID_ARGUMENT/, pattern)
    t.notMatch(result.stderr, /listening on/, `${pattern}: nothing started`)
  }

  writeFileSync(path.join(scratch, 'none.db'), '')
  const sqlite = await runMlserve(['serve', '-m', 'models:/*@champion', '-p', '0'], {
    env: toolchainEnv({MLFLOW_TRACKING_URI: `sqlite:///${path.join(scratch, 'none.db')}`}),
  })
  t.equal(sqlite.code, 14, 'a registry mlserve cannot search: exit 14, before the port is bound')
  t.match(sqlite.stderr, /needs a registry mlserve can search/)
  t.notMatch(sqlite.stderr, /listening on/)
})

t.test('models:/fraud-*@champion: each match served; alias moves, gains and losses per model', async (t) => {
  const tracking = await startTrackingServer()
  t.teardown(() => tracking.proc.stop('SIGTERM'))
  const env = {MLFLOW_TRACKING_URI: tracking.url}
  // Two versions each (a+b and 10*(a+b)), @champion on the first; "other" does not match the glob.
  const [a, b] = await Promise.all([logModels(tracking.url, 'fraud-a', scratch), logModels(tracking.url, 'fraud-b', scratch)])
  await registry(tracking.url, 'POST', 'registered-models/create', {name: 'other'})

  const nothing = await runMlserve(['serve', '-m', 'models:/nomatch-*@champion', '-p', '0'], {env: toolchainEnv(env)})
  t.equal(nothing.code, 40, 'a pattern that matches nothing, with nothing else to serve: exit 40')
  t.match(nothing.stderr, /models:\/nomatch-\*@champion matched no registered model/)

  const server = await startMlserve(['-m', 'models:/fraud-*@champion', '--env-manager', 'local', '--reload-interval', '1', '--no-access-log'], {
    env: toolchainEnv({...env, MLSERVE_MODEL_ROOT: path.join(scratch, 'models')}),
  })
  t.teardown(() => server.stop())
  await logLine(server, /ready: serving 2 of 2 models/)
  t.match(server.stderr(), /following models:\/fraud-\*@champion: searching the registry every 1 s/)
  const listed = (await (await fetch(`${server.url}/models`)).json()) as {models: Array<Record<string, unknown>>}
  t.match(listed.models, [
    {name: 'fraud-a', uri: 'models:/fraud-a@champion', version: a.versions[0], state: 'loaded'},
    {name: 'fraud-b', uri: 'models:/fraud-b@champion', version: b.versions[0], state: 'loaded'},
  ])
  t.equal(listed.models.length, 2, '"other" is not served')
  t.same(await predict(server.url, 'fraud-a'), {status: 200, body: '{"predictions": [3]}', version: a.versions[0]})
  t.same(await predict(server.url, 'fraud-b'), {status: 200, body: '{"predictions": [3]}', version: b.versions[0]})

  // The alias of fraud-a moves while a client calls fraud-b without a pause: only fraud-a switches.
  const answers: Array<Awaited<ReturnType<typeof predict>>> = []
  const errors: string[] = []
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      // eslint-disable-next-line no-await-in-loop
      await predict(server.url, 'fraud-b').then(
        (answer) => answers.push(answer),
        (error: unknown) => errors.push(String(error)),
      )
    }
  })()
  await eventually(() => answers.length > 20)
  let from = server.stderr().length
  await registry(tracking.url, 'POST', 'registered-models/alias', {name: 'fraud-a', alias: 'champion', version: a.versions[1]})
  await logLine(server, new RegExp(`fraud-a: serving fraud-a version ${a.versions[1]} \\(was ${a.versions[0]}\\)`), from)
  t.same(await predict(server.url, 'fraud-a'), {status: 200, body: '{"predictions": [30]}', version: a.versions[1]}, 'fraud-a switched')
  const seen = answers.length
  await eventually(() => answers.length > seen + 20)
  stopped = true
  await loop
  t.same(errors, [], 'no request to fraud-b failed')
  t.ok(
    answers.every((answer) => answer.status === 200 && answer.body === '{"predictions": [3]}' && answer.version === b.versions[0]),
    `all ${answers.length} answers of fraud-b came from its version ${b.versions[0]}`,
  )
  t.notMatch(server.stderr().slice(from), /fraud-b: reload: preparing/, 'fraud-b was not reloaded')

  // fraud-c is registered (from fraud-a's first version) without the alias: not served; then given it: added.
  const source = await fetch(`${tracking.url}/api/2.0/mlflow/model-versions/get?name=fraud-a&version=${a.versions[0]}`, {dispatcher: client})
  const {model_version: mv} = (await source.json()) as {model_version: {source: string; run_id: string; model_id?: string}}
  await registry(tracking.url, 'POST', 'registered-models/create', {name: 'fraud-c'})
  const created = await registry(tracking.url, 'POST', 'model-versions/create', {
    name: 'fraud-c',
    source: mv.source,
    run_id: mv.run_id,
    model_id: mv.model_id ?? /^models:\/(m-[0-9a-f]+)$/.exec(mv.source)?.[1],
  })
  const cVersion = String(created.model_version!.version)
  from = server.stderr().length
  await registry(tracking.url, 'POST', 'registered-models/alias', {name: 'fraud-c', alias: 'champion', version: cVersion})
  await logLine(server, /model fraud-c added \(models:\/fraud-c@champion\): loading/, from)
  await logLine(server, /model fraud-c is ready/, from)
  t.same(await predict(server.url, 'fraud-c'), {status: 200, body: '{"predictions": [3]}', version: cVersion}, 'the new match serves')
  t.match(
    await (await fetch(`${server.url}/metrics`)).text(),
    /mlserve_http_requests_total\{model="fraud-c",route="\/invocations",method="POST",status="200"\} 1/,
  )

  // Its alias is deleted: it stops matching and is removed, its series with it.
  from = server.stderr().length
  await registry(tracking.url, 'DELETE', 'registered-models/alias', {name: 'fraud-c', alias: 'champion'})
  await logLine(server, /model fraud-c stopped and released/, from)
  const gone = await fetch(`${server.url}/models/fraud-c/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: ROW,
  })
  t.equal(gone.status, 404, 'a removed model answers 404')
  t.match(await gone.text(), /No model named \\"fraud-c\\" is served here. Served models: fraud-a, fraud-b./)
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  t.notMatch(metrics, /model="fraud-c"/, "the removed model's series are dropped")
  t.match(metrics, /mlserve_http_requests_total\{model="fraud-b",route="\/invocations",method="POST",status="200"\} \d+/)

  const exit = await server.stop()
  t.equal(exit.code, 0, 'Ctrl-C: exit 0')
})
