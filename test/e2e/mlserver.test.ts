// --enable-mlserver end to end: mlserve installs mlserver and mlserver-mlflow into the model's own env
// (built for real from PyPI), runs one MLServer per slot behind the proxy, and answers mlflow's
// /invocations as mlflow's own scorer does, plus MLServer's V2 protocol.
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {fetch} from 'undici'

import {runMlserve, startMlflowServe, startMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-mlserver-'))
// Real environments are hundreds of MB: leave none behind.
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))

// One cache root for the file: the second start must find the env the first one built. uv's own
// download cache stays the user's, so its wheels are warm across runs.
const root = path.join(scratch, 'envs')
const env = toolchainEnv({MLSERVE_ENV_ROOT: root})
const iris = fixtureModel('iris')
const serveArgs = ['-m', iris, '--enable-mlserver', '--env-manager', 'virtualenv']

const rows = [
  [5.1, 3.5, 1.4, 0.2],
  [5, 2, 3.5, 1],
  [6.9, 3.2, 5.7, 2.3],
]
const columns = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width']
const split = JSON.stringify({dataframe_split: {columns, data: rows}})
/** The same rows as V2 tensors, one per column. */
const v2 = JSON.stringify({
  inputs: columns.map((name, i) => ({name, shape: [rows.length], datatype: 'FP64', data: rows.map((row) => row[i])})),
})

async function post(url: string, body: string) {
  const res = await fetch(url, {method: 'POST', headers: {'content-type': 'application/json'}, body})
  return {status: res.status, contentType: res.headers.get('content-type'), body: await res.text()}
}

async function status(url: string): Promise<number> {
  const res = await fetch(url)
  await res.arrayBuffer()
  return res.status
}

t.test("an sklearn model served by MLServer in its own env: /ping waits for the model, mlflow's answers, V2 infer", async (t) => {
  const server = await startMlserve(serveArgs, {env, waitReady: false})
  t.teardown(() => server.stop())

  // Until the model has loaded, /ping says 503; its first 200 means the model answers.
  const before = new Set<number>()
  let exited = false
  void server.exited.then(() => {
    exited = true
  })
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const code = await status(`${server.url}/ping`)
    if (code === 200) break
    before.add(code)
    if (exited) throw new Error(`mlserve exited before it was ready:\n${server.stderr()}`)
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 200))
  }

  // The env build and MLServer's model load take seconds: the first /ping comes long before.
  t.same([...before], [503], '/ping was 503, and only 503, before the model loaded')
  t.equal(await status(`${server.url}/v2/models/mlflow-model/ready`), 200, 'the model is ready by then')

  const stderr = server.stderr()
  t.match(stderr, /building environment \w+ in /)
  t.match(
    stderr,
    /installing mlserver>=1\.2\.0,!=1\.3\.1,<2\.0\.0, mlserver-mlflow>=1\.2\.0,!=1\.3\.1,<2\.0\.0, uvloop<0\.22, uvloop>=0\.19, httptools>=0\.6 \(/,
  )
  t.match(stderr, /start scorer \(mlserver, 1 process\)/)
  t.notMatch(stderr, /Timeout is not yet supported in MLServer/, 'the timeout is enforced by mlserve, so no such warning')

  const reference = await startMlflowServe(iris)
  t.teardown(() => reference.stop('SIGTERM'))
  const [expected, actual] = await Promise.all([post(`${reference.url}/invocations`, split), post(`${server.url}/invocations`, split)])
  t.same(actual, expected, '/invocations: the same status, media type and body as mlflow models serve')
  t.same(JSON.parse(actual.body), {predictions: [0, 1, 2]})

  const infer = await post(`${server.url}/v2/models/mlflow-model/infer`, v2)
  t.equal(infer.status, 200)
  const answer = JSON.parse(infer.body) as {model_name: string; outputs: Array<{datatype: string; data: number[]}>}
  t.equal(answer.model_name, 'mlflow-model')
  t.same(
    answer.outputs.map((output) => output.data),
    [[0, 1, 2]],
    'V2 infer predicts what /invocations does',
  )

  const bad = await post(`${server.url}/invocations`, '{"dataframe_split": {"columns": ["nope"], "data": [[1]]}}')
  t.equal(bad.status, 400, 'a bad request is a 400 from MLServer, not a proxy error')
})

t.test('two workers: two MLServer processes side by side (no shared port), the env from the cache', async (t) => {
  const server = await startMlserve([...serveArgs, '-w', '2'], {env})
  t.teardown(() => server.stop())
  t.match(server.stderr(), /using cached environment/)
  t.match(server.stderr(), /start scorer \(mlserver, 2 processes\)/)
  const answers = await Promise.all(Array.from({length: 8}, async () => post(`${server.url}/invocations`, split)))
  for (const answer of answers) t.same(JSON.parse(answer.body), {predictions: [0, 1, 2]})
  t.equal(await status(`${server.url}/v2/models/mlflow-model/ready`), 200)
})

t.test('prepare-env --enable-mlserver finds the same environment serve --enable-mlserver built', async (t) => {
  const result = await runMlserve(['prepare-env', '-m', iris, '--enable-mlserver', '--env-manager', 'virtualenv'], {env})
  t.equal(result.code, 0, result.stderr)
  t.match(result.stderr, /using cached environment/)
  t.match(result.stdout.trim(), new RegExp(`^${root.replaceAll('/', '\\/')}/.+/bin/python`))
})

t.test('MLSERVER_MODEL_NAME names the model, as under mlflow', async (t) => {
  const server = await startMlserve(serveArgs, {env: {...env, MLSERVER_MODEL_NAME: 'iris'}})
  t.teardown(() => server.stop())
  t.equal((await post(`${server.url}/v2/models/iris/infer`, v2)).status, 200)
  t.equal(await status(`${server.url}/v2/models/mlflow-model/ready`), 404)
})

t.test("several models: MLServer's V2 per-model paths (/v2/models/<name>/...) go to that model", async (t) => {
  const server = await startMlserve(['-m', `setosa=${iris}`, '-m', `virginica=${iris}`, '--enable-mlserver', '--env-manager', 'virtualenv'], {
    env,
  })
  t.teardown(() => server.stop())
  await server.waitForOutput(/ready: serving 2 of 2 models/)
  for (const name of ['setosa', 'virginica']) {
    /* eslint-disable no-await-in-loop */
    const infer = await post(`${server.url}/v2/models/${name}/infer`, v2)
    t.equal(infer.status, 200, `${name}: V2 infer`)
    t.equal((JSON.parse(infer.body) as {model_name: string}).model_name, name, `${name}: answered by its own MLServer, under its name`)
    t.equal(await status(`${server.url}/v2/models/${name}/ready`), 200, `${name}: V2 ready`)
    t.equal(await status(`${server.url}/v2/models/${name}`), 200, `${name}: V2 metadata`)
    t.same(JSON.parse((await post(`${server.url}/models/${name}/invocations`, split)).body), {predictions: [0, 1, 2]})
    /* eslint-enable no-await-in-loop */
  }

  const unknown = await post(`${server.url}/v2/models/nope/infer`, v2)
  t.equal(unknown.status, 404)
  t.same(JSON.parse(unknown.body), {error: 'Model nope not found. Served models: setosa, virginica.'})
  t.match(server.stdout(), /"POST \/v2\/models\/setosa\/infer" 200/)
})

t.test('the local manager installs nothing: an interpreter without mlserver is refused, naming the pip command', async (t) => {
  const python = toolchainPython()
  const result = await runMlserve(['serve', '-m', iris, '-p', '0', '--enable-mlserver', '--env-manager', 'local', '--python', python], {env})
  t.equal(result.code, 22)
  t.match(result.stderr, 'code: SCORER_DEPENDENCY_MISSING (exit 22)')
  t.match(result.stderr, `${python} -m pip install 'mlserver>=1.2.0,!=1.3.1,<2.0.0' 'mlserver-mlflow>=1.2.0,!=1.3.1,<2.0.0'`)
})

t.test('an R crate model with --enable-mlserver is refused (MLServer cannot serve it)', async (t) => {
  const dir = path.join(scratch, 'crate')
  mkdirSync(dir, {recursive: true})
  writeFileSync(path.join(dir, 'MLmodel'), 'flavors:\n  crate: {version: 0.1.0, model: crate.bin}\n')
  const result = await runMlserve(['serve', '-m', dir, '-p', '0', '--enable-mlserver'], {env})
  t.equal(result.code, 18)
  t.match(result.stderr, 'code: BACKEND_UNSUPPORTED (exit 18)')
})
