import t from 'tap'

import {joinArtifactUri, mlflowArtifactsUrl, parseModelUri, splitProxyUrl} from '../../../src/uri/parse.js'
import {isSafeRelativePath, safeJoin} from '../../../src/uri/safe-path.js'
import {authorizationFrom, storeKind} from '../../../src/uri/tracking.js'

t.test('every models:/ form', async (t) => {
  t.match(parseModelUri('models:/churn/3'), {kind: 'model-version', name: 'churn', version: '3'})
  t.match(parseModelUri('models:/churn/Production'), {kind: 'model-stage', name: 'churn', stage: 'Production'})
  t.match(parseModelUri('models:/churn/None'), {kind: 'model-stage', stage: 'None'}, 'even None is a stage')
  t.match(parseModelUri('models:/churn/LATEST'), {kind: 'model-latest', name: 'churn'})
  t.match(parseModelUri('models:/churn@champion'), {kind: 'model-alias', name: 'churn', alias: 'champion'})
  t.match(parseModelUri('models:/a@b@c'), {kind: 'model-alias', name: 'a@b', alias: 'c'}, 'split on the last @')
  t.match(parseModelUri('models:/m-0123abcd'), {kind: 'logged-model', modelId: 'm-0123abcd'})
  t.match(parseModelUri('models:churn/1'), {kind: 'model-version', name: 'churn'})
})

t.test("malformed models:/ URIs get mlflow's message", async (t) => {
  for (const uri of ['models:/', 'models:/a/b/c', 'models:/churn/', 'models:/@x', 'models:/churn@', 'models:/ /1']) {
    t.throws(
      () => parseModelUri(uri),
      {code: 'INVALID_MODEL_URI', exitCode: 13, message: `Not a proper models:/ URI: ${uri}. Models URIs must be of the form`},
      uri,
    )
  }
})

t.test('runs:/ URIs', async (t) => {
  t.match(parseModelUri('runs:/abc/model'), {kind: 'run', runId: 'abc', path: 'model'})
  t.match(parseModelUri('runs:/abc/model/sub/'), {kind: 'run', runId: 'abc', path: 'model/sub'})
  t.match(parseModelUri('runs:/abc'), {kind: 'run', runId: 'abc', path: ''})
  for (const uri of ['runs:/', 'runs:', 'runs://host/abc/model']) {
    t.throws(
      () => parseModelUri(uri),
      {
        code: 'INVALID_MODEL_URI',
        message: `Not a proper runs:/ URI: ${uri}. Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'`,
      },
      uri,
    )
  }
})

t.test('local and artifact URIs', async (t) => {
  t.match(parseModelUri('./model'), {kind: 'local'})
  t.match(parseModelUri('file:///abs/model'), {kind: 'local'})
  t.match(parseModelUri('mlflow-artifacts:/0/abc/artifacts/model'), {kind: 'artifact', scheme: 'mlflow-artifacts'})
  t.match(parseModelUri('s3://bucket/model'), {kind: 'artifact', scheme: 's3'})
  t.throws(() => parseModelUri('  '), {code: 'INVALID_MODEL_URI'})
})

t.test('mlflow-artifacts: resolves against the tracking URI', async (t) => {
  t.equal(
    mlflowArtifactsUrl('mlflow-artifacts:/0/abc/artifacts/model', 'http://host:5000'),
    'http://host:5000/api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/model',
  )
  t.equal(mlflowArtifactsUrl('mlflow-artifacts:/x', 'https://host/prefix/'), 'https://host/prefix/api/2.0/mlflow-artifacts/artifacts/x')
  t.equal(
    mlflowArtifactsUrl('mlflow-artifacts://other:9/x/y', 'http://host:5000'),
    'http://other:9/api/2.0/mlflow-artifacts/artifacts/x/y',
    'an explicit netloc wins',
  )
  t.throws(() => mlflowArtifactsUrl('mlflow-artifacts:/1/abc/artifacts/model', 'sqlite:///mlflow.db'), {
    code: 'TRACKING_URI_INVALID',
    exitCode: 50,
    message:
      /^When an mlflow-artifacts URI was supplied, the tracking URI must be a valid http or https URI, but it was currently set to sqlite:\/\/\/mlflow.db/,
  })
  t.same(splitProxyUrl('http://h:1/p/api/2.0/mlflow-artifacts/artifacts/0/a%20b/'), {base: 'http://h:1/p', root: '0/a b'})
  t.equal(splitProxyUrl('http://h/other/path'), undefined)
  t.equal(joinArtifactUri('mlflow-artifacts:/0/r/artifacts/', '/model/'), 'mlflow-artifacts:/0/r/artifacts/model')
  t.equal(joinArtifactUri('s3://b/x', ''), 's3://b/x')
})

t.test('listed paths must stay inside the destination', async (t) => {
  t.ok(isSafeRelativePath('MLmodel'))
  t.ok(isSafeRelativePath('code/module.py'))
  for (const bad of ['', '..', '../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\\..\\b', 'C:/x', 'a\0b']) {
    t.notOk(isSafeRelativePath(bad), JSON.stringify(bad))
    t.throws(() => safeJoin('/tmp/dest', bad), {code: 'UNSAFE_ARTIFACT_PATH', exitCode: 63})
  }

  t.equal(safeJoin('/tmp/dest', 'a/b'), '/tmp/dest/a/b')
})

t.test('credentials and store kinds', async (t) => {
  t.equal(authorizationFrom({MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p'}), 'Basic dTpw')
  t.equal(authorizationFrom({MLFLOW_TRACKING_TOKEN: 't'}), 'Bearer t')
  t.equal(
    authorizationFrom({MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_TOKEN: 't'}),
    'Basic dTpw',
    'Basic wins',
  )
  t.equal(authorizationFrom({}), undefined)
  t.equal(storeKind('http://h:5000'), 'rest')
  t.equal(storeKind('file:///x/mlruns'), 'file')
  t.equal(storeKind('./mlruns'), 'file')
  t.equal(storeKind('sqlite:///mlflow.db'), 'delegate')
  t.equal(storeKind('databricks'), 'delegate')
})

t.test('a registry pattern is refused where one model is meant, naming serve', async (t) => {
  for (const uri of ['models:/*@champion', 'models:/fraud-?/Production', 'models:/*/latest']) {
    t.throws(
      () => parseModelUri(uri),
      {code: 'INVALID_MODEL_URI', message: /is a registry pattern: .*only `mlserve serve` serves patterns/},
      uri,
    )
  }

  t.match(parseModelUri('models:/fraud@c*'), {kind: 'model-alias', name: 'fraud', alias: 'c*'}, 'only the name can be a pattern')
})
