// Model URIs without a tracking server: a ./mlruns file store read natively, and mlflow >= 3.7's
// default sqlite:///mlflow.db read through the real mlflow client (MLSERVE_PYTHON).
import {mkdtemp, readdir} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {mapConcurrent} from '../helpers/pool.js'
import {runMlserve, startMlserve} from '../helpers/servers.js'
import {toolchainEnv, toolchainPython} from '../helpers/toolchain.js'
import {logModels} from '../helpers/tracking.js'

const modelRoot = await mkdtemp(path.join(tmpdir(), 'mlserve-models-local-'))
// No MLFLOW_TRACKING_URI: mlflow's default applies, from the cwd.
const env = (extra: Record<string, string> = {}) =>
  toolchainEnv({MLFLOW_TRACKING_URI: '', MLFLOW_REGISTRY_URI: '', MLSERVE_MODEL_ROOT: modelRoot, MLSERVE_PYTHON: toolchainPython(), ...extra})

async function serveAndPredict(uri: string, cwd: string, extra: Record<string, string> = {}): Promise<{predictions: unknown; stderr: string}> {
  const mlserve = await startMlserve(['-m', uri], {env: env(extra), cwd})
  try {
    const res = await fetch(`${mlserve.url}/invocations`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({dataframe_split: {columns: ['a', 'b'], data: [[1, 2]]}}),
    })
    return {predictions: await res.json(), stderr: mlserve.stderr()}
  } finally {
    await mlserve.stop()
  }
}

const fileCwd = await mkdtemp(path.join(tmpdir(), 'mlserve-filestore-'))
const sqliteCwd = await mkdtemp(path.join(tmpdir(), 'mlserve-sqlite-'))
const [fileLogged, sqliteLogged] = await Promise.all([
  // mlflow 3.17 refuses a new file store unless MLFLOW_ALLOW_FILE_STORE=true; reading one needs nothing.
  logModels(`file://${path.join(fileCwd, 'mlruns')}`, 'filer', fileCwd, {MLFLOW_ALLOW_FILE_STORE: 'true'}),
  logModels('sqlite:///mlflow.db', 'sq', sqliteCwd),
])

t.test('a ./mlruns file store in the cwd is the default, read natively', async (t) => {
  const forms: Array<[string, number]> = [
    [`runs:/${fileLogged.runs[0]}/model`, 3],
    [`models:/filer/${fileLogged.versions[1]}`, 30],
    ['models:/filer@champion', 3],
    ['models:/filer/Production', 3],
    ['models:/filer/latest', 30],
    [`models:/${fileLogged.models[0]}`, 3],
  ]
  // A few servers at a time, and the failing start next to them.
  const [served, missing] = await Promise.all([
    mapConcurrent(forms, 3, async ([uri]) => serveAndPredict(uri, fileCwd)),
    runMlserve(['serve', '-p', '0', '-m', 'models:/filer@nosuch'], {env: env(), cwd: fileCwd}),
  ])
  for (const [index, [uri, expected]] of forms.entries()) {
    const {predictions, stderr} = served[index]!
    t.same(predictions, {predictions: [expected]}, uri)
    t.notMatch(stderr, /mlflow client/, 'no Python client involved')
  }

  t.equal(missing.code, 54)
})

t.test('sqlite:///mlflow.db (the default without ./mlruns) goes through the mlflow client', async (t) => {
  const forms: Array<[string, number]> = [
    ['models:/sq@champion', 3],
    [`models:/sq/${sqliteLogged.versions[1]}`, 30],
    [`runs:/${sqliteLogged.runs[0]}/model`, 3],
  ]
  // The servers (all on the mlflow client) and the failing starts, all at once: none depends on another.
  const [served, alias, noClient, flagWins] = await Promise.all([
    Promise.all(forms.map(async ([uri]) => serveAndPredict(uri, sqliteCwd))),
    runMlserve(['serve', '-p', '0', '-m', 'models:/sq@nosuch'], {env: env(), cwd: sqliteCwd}),
    runMlserve(['serve', '-p', '0', '-m', 'models:/sq/1'], {
      env: env({MLSERVE_PYTHON: '/nonexistent/python3', MLSERVE_MODEL_ROOT: await mkdtemp(path.join(tmpdir(), 'mlserve-empty-'))}),
      cwd: sqliteCwd,
    }),
    runMlserve(['serve', '-p', '0', '-m', 'models:/sq/1', '--python', '/nonexistent/python3'], {
      env: env({MLSERVE_MODEL_ROOT: await mkdtemp(path.join(tmpdir(), 'mlserve-empty-'))}),
      cwd: sqliteCwd,
    }),
  ])
  for (const [index, [uri, expected]] of forms.entries()) t.same(served[index]!.predictions, {predictions: [expected]}, uri)

  t.equal(alias.code, 54, 'a delegated failure keeps its exit code')
  t.equal(noClient.code, 61)
  t.match(noClient.stderr, /code: MLFLOW_CLIENT_NOT_FOUND/)
  t.equal(flagWins.code, 61, 'the mlflow client runs with the --python interpreter')
  t.match(flagWins.stderr, /\/nonexistent\/python3 has no mlflow/)
  const names = await readdir(modelRoot)
  t.notOk(
    names.some((name) => name.startsWith('.tmp-')),
    'no temporary directories left',
  )
})
