// Every model URI form served end to end from a real `mlflow server` (sqlite, proxied artifacts),
// the model cache, the error codes, and credentials through an authenticating front.
import {mkdtemp, readFile, readdir} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {mapConcurrent} from '../helpers/pool.js'
import {freePort, runMlserve, startMlserve} from '../helpers/servers.js'
import {toolchainEnv, toolchainPython} from '../helpers/toolchain.js'
import {logModels, startAuthFront, startTrackingServer, type LoggedModels} from '../helpers/tracking.js'

// The groups of tests below are independent of each other (their own cache roots): two run at a time.
t.jobs = 2

const server = await startTrackingServer()
t.teardown(() => server.proc.stop('SIGTERM'))
const cwd = await mkdtemp(path.join(tmpdir(), 'mlserve-uri-cwd-'))
const logged: LoggedModels = await logModels(server.url, 'summer', cwd)
const modelRoot = await mkdtemp(path.join(tmpdir(), 'mlserve-models-'))

const envFor = (extra: Record<string, string> = {}) => toolchainEnv({MLFLOW_TRACKING_URI: server.url, MLSERVE_MODEL_ROOT: modelRoot, ...extra})

async function predict(url: string): Promise<unknown> {
  const res = await fetch(`${url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({dataframe_split: {columns: ['a', 'b'], data: [[1, 2]]}}),
  })
  return res.json()
}

async function serveAndPredict(uri: string, env = envFor()): Promise<{predictions: unknown; stderr: string}> {
  const mlserve = await startMlserve(['-m', uri], {env, cwd})
  try {
    return {predictions: await predict(mlserve.url), stderr: mlserve.stderr()}
  } finally {
    await mlserve.stop()
  }
}

/** Cache entries that are not complete models: temporary directories, locks, entries without a marker. */
async function cacheDebris(root: string): Promise<string[]> {
  const names = await readdir(root).catch(() => [] as string[])
  const debris: string[] = []
  for (const name of names) {
    // eslint-disable-next-line no-await-in-loop
    const entries = await readdir(path.join(root, name)).catch(() => [] as string[])
    if (name.startsWith('.tmp-') || name.endsWith('.lock') || !entries.includes('.mlserve-env.json')) debris.push(name)
  }

  return debris
}

const [v1, v2] = logged.versions
const [run1] = logged.runs
const [model1, model2] = logged.models
const forms: Array<[string, number]> = [
  [`runs:/${run1}/model`, 3],
  [`models:/summer/${v1}`, 3],
  [`models:/summer/${v2}`, 30],
  ['models:/summer@champion', 3],
  ['models:/summer/Production', 3],
  ['models:/summer/production', 3],
  ['models:/summer/latest', 30],
  [`models:/${model2}`, 30],
  [`mlflow-artifacts:/${logged.experiment_id}/models/${model1}/artifacts`, 3],
  [`${server.url}/api/2.0/mlflow-artifacts/artifacts/${logged.experiment_id}/models/${model2}/artifacts`, 30],
]

// One after the other (the second needs the cache the first fills), next to the groups below.
t.test('the registered models, served from the tracking server', async (t) => {
  t.test('every URI form serves the right model', async (t) => {
    // A few servers at a time, on one cache: forms naming the same version also share its fetch (under its lock).
    const served = await mapConcurrent(forms, 3, async ([uri]) => serveAndPredict(uri))
    for (const [index, [uri, expected]] of forms.entries()) t.same(served[index]!.predictions, {predictions: [expected]}, uri)

    t.same(await cacheDebris(modelRoot), [], 'only complete models in the cache')
  })

  t.test('immutable references are cached; aliases are looked up again and logged', async (t) => {
    const [again, alias] = await Promise.all([serveAndPredict(`models:/summer/${v1}`), serveAndPredict('models:/summer@champion')])
    t.match(again.stderr, /fetch models:\/summer\/1: cached in /)
    t.match(alias.stderr, new RegExp(`models:/summer@champion is version ${v1} of registered model 'summer'`))
    t.match(alias.stderr, /cached in /, 'the version it points to is the cached one')
    const [, dir] = /fetch models:\/summer\/1: cached in (\S+)/.exec(again.stderr) ?? []
    t.ok(dir)
    t.equal(await readFile(path.join(dir!, 'registered_model_meta'), 'utf8'), `model_name: summer\nmodel_version: '${v1}'\n`)
  })
})

const failures: Array<[string, string, number, Record<string, string>?]> = [
  ['models:/a/b/c', 'INVALID_MODEL_URI', 13],
  ['models:/', 'INVALID_MODEL_URI', 13],
  ['runs:/', 'INVALID_MODEL_URI', 13],
  ['runs:/0123456789abcdef0123456789abcdef/model', 'RUN_NOT_FOUND', 51],
  ['models:/nosuchmodel/1', 'REGISTERED_MODEL_NOT_FOUND', 52],
  ['models:/nosuchmodel@champion', 'REGISTERED_MODEL_NOT_FOUND', 52],
  ['models:/summer/99', 'MODEL_VERSION_NOT_FOUND', 53],
  ['models:/summer/Archived', 'MODEL_VERSION_NOT_FOUND', 53],
  ['models:/summer@nosuchalias', 'MODEL_ALIAS_NOT_FOUND', 54],
  ['models:/m-00000000000000000000000000000000', 'LOGGED_MODEL_NOT_FOUND', 55],
  [`runs:/${run1}/nothing`, 'ARTIFACT_NOT_FOUND', 56],
  ['mlflow-artifacts:/0/x/artifacts/model', 'TRACKING_URI_INVALID', 50, {MLFLOW_TRACKING_URI: 'sqlite:///mlflow.db'}],
]

t.test('errors: a clear message, a distinct exit code, nothing in the cache', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'mlserve-models-err-'))
  await Promise.all(
    failures.map(async ([uri, code, exit, extra]) => {
      const result = await runMlserve(['serve', '--env-manager', 'local', '--python', toolchainPython(), '-p', '0', '-m', uri], {
        env: envFor({MLSERVE_MODEL_ROOT: root, ...extra}),
        cwd,
      })
      t.equal(result.code, exit, `${uri}: exit ${exit}`)
      t.match(result.stderr, `code: ${code}`, uri)
    }),
  )
  const near = await runMlserve(['serve', '--env-manager', 'local', '--python', toolchainPython(), '-p', '0', '-m', 'models:/sumer@champion'], {
    env: envFor({MLSERVE_MODEL_ROOT: root}),
    cwd,
  })
  t.match(near.stderr, `Registered Model with name=sumer not found in the model registry at ${server.url}`, 'names the registry searched')
  t.match(near.stderr, 'hint: Registered models with a similar name: summer.', 'and the near names in it (REST search)')
  const models = await runMlserve(['serve', '-p', '0', '-m', 'models:/a/b/c'], {env: envFor(), cwd})
  t.match(models.stderr, "Error: Not a proper models:/ URI: models:/a/b/c. Models URIs must be of the form 'models:/name/suffix'")
  t.same(await cacheDebris(root), [], 'no debris')
  t.same(
    (await readdir(root).catch(() => [])).filter((name) => !name.endsWith('.lock')),
    [],
    'no entries',
  )
})

t.test('an unreachable server fails fast with its own exit code', async (t) => {
  const port = await freePort()
  const result = await runMlserve(['serve', '-p', '0', '-m', 'models:/summer@champion'], {
    env: envFor({MLFLOW_TRACKING_URI: `http://127.0.0.1:${port}`, MLFLOW_HTTP_REQUEST_MAX_RETRIES: '1'}),
    cwd,
  })
  t.equal(result.code, 59)
  t.match(result.stderr, /code: TRACKING_UNREACHABLE/)
  t.match(result.stderr, /ECONNREFUSED/)
  t.match(result.stderr, /\(after 2 tries\)/, 'bounded retries: the first try and MLFLOW_HTTP_REQUEST_MAX_RETRIES=1 more')
})

t.test('credentials: Basic or Bearer sent on every call, 401 and 403 reported, secrets never printed', async (t) => {
  const front = await startAuthFront(server.url, (auth) => auth === 'Basic dTpw' || auth === 'Bearer s3cret-token')
  t.teardown(() => front.close())
  const root = await mkdtemp(path.join(tmpdir(), 'mlserve-models-auth-'))
  const env = (extra: Record<string, string>) => envFor({MLFLOW_TRACKING_URI: front.url, MLSERVE_MODEL_ROOT: root, ...extra})

  const basic = await serveAndPredict(
    'models:/summer@champion',
    env({MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_TOKEN: 'ignored'}),
  )
  t.same(basic.predictions, {predictions: [3]})
  t.ok(front.seen.length > 2 && front.seen.every((auth) => auth === 'Basic dTpw'), 'Basic on every call (and it wins over the token)')
  t.notMatch(basic.stderr, /dTpw|ignored/)

  front.seen.length = 0
  const bearer = await serveAndPredict(`models:/summer/${v2}`, env({MLFLOW_TRACKING_TOKEN: 's3cret-token'}))
  t.same(bearer.predictions, {predictions: [30]})
  t.ok(front.seen.length > 2 && front.seen.every((auth) => auth === 'Bearer s3cret-token'), 'Bearer on every call')
  t.notMatch(bearer.stderr, /s3cret/)

  const anonymous = await runMlserve(['serve', '-p', '0', '-m', 'models:/summer@champion'], {env: env({}), cwd})
  t.equal(anonymous.code, 57)
  t.match(anonymous.stderr, /code: TRACKING_UNAUTHENTICATED/)
  const wrong = await runMlserve(['serve', '-p', '0', '-m', `runs:/${run1}/model`], {env: env({MLFLOW_TRACKING_TOKEN: 'wrong-token'}), cwd})
  t.equal(wrong.code, 58)
  t.match(wrong.stderr, /code: TRACKING_FORBIDDEN/)
  t.notMatch(wrong.stderr + wrong.stdout, /wrong-token/)
  t.same(await cacheDebris(root), [])
})
