// models:/ and runs:/ with no tracking store to read: a clear error naming what was looked for, before
// any Python runs, and never an empty mlflow.db left behind by the mlflow client.
import {existsSync, readdirSync} from 'node:fs'

import t from 'tap'

import {runMlserve} from '../helpers/servers.js'
import {toolchainEnv} from '../helpers/toolchain.js'

/** The toolchain's environment (a python3 with mlflow on PATH) without any tracking URI. */
function envWithoutTracking(extra: Record<string, string> = {}): Record<string, string> {
  const env = toolchainEnv()
  delete env.MLFLOW_TRACKING_URI
  delete env.MLFLOW_REGISTRY_URI
  return {...env, ...extra}
}

t.test('models:/ with no MLFLOW_TRACKING_URI and no ./mlruns or ./mlflow.db: says so, creates nothing', async (t) => {
  const cwd = t.testdir({})
  const result = await runMlserve(['predict', '-m', 'models:/iris@champion'], {env: envWithoutTracking(), cwd, stdin: '{}'})
  t.equal(result.code, 66)
  t.match(result.stderr, /MLFLOW_TRACKING_URI is not set/)
  t.match(result.stderr, /no \.\/mlruns and no \.\/mlflow\.db in /)
  t.match(result.stderr, /hint: .*export MLFLOW_TRACKING_URI=sqlite:\/\/\/.*mlflow\.db/)
  t.match(result.stderr, /hint: .*http:\/\//)
  t.notMatch(result.stderr, /has no mlflow|not found in|Traceback/, 'the cause, not a symptom')
  t.same(readdirSync(cwd), [], 'no mlflow.db (or anything else) was created')
})

t.test('runs:/ with MLFLOW_TRACKING_URI naming a sqlite file that does not exist: names it, creates nothing', async (t) => {
  const cwd = t.testdir({})
  const result = await runMlserve(['predict', '-m', 'runs:/0123456789abcdef/model'], {
    env: envWithoutTracking({MLFLOW_TRACKING_URI: 'sqlite:///nowhere/mlflow.db'}),
    cwd,
    stdin: '{}',
  })
  t.equal(result.code, 66)
  t.match(result.stderr, /sqlite:\/\/\/nowhere\/mlflow\.db.*no such file/)
  t.notOk(existsSync(`${cwd}/nowhere`), 'nothing created')
})
