// Fault injection on what a model URI and a tracking server bring: `..` in artifact paths, artifact roots a
// store does not own, credentials in artifact URIs.
import {mkdirSync, readdirSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import path from 'node:path'

import t, {type Test} from 'tap'

import {parseModelUri} from '../../../src/uri/parse.js'
import {resolveModelUri} from '../../../src/uri/resolve.js'
import {checkLocalArtifactLocation} from '../../../src/uri/safe-path.js'
import {credentialsOf, redactText, redactUri} from '../../../src/uri/tracking.js'

const RUN = '0123456789abcdef0123456789abcdef'

t.test('runs:/ paths with .. segments are refused before any lookup', async (t) => {
  for (const uri of [`runs:/${RUN}/model/../../..`, `runs:/${RUN}/..`, `runs:/${RUN}/a/%2e%2e/b`, `runs:/${RUN}/model/..%2F..`]) {
    t.throws(() => parseModelUri(uri), {code: 'UNSAFE_ARTIFACT_PATH', exitCode: 63}, uri)
  }

  t.match(parseModelUri(`runs:/${RUN}/model/sub`), {kind: 'run', runId: RUN, path: 'model/sub'})
  t.throws(() => parseModelUri('runs:/../model'), {code: 'INVALID_MODEL_URI'})
})

t.test('a local artifact location must be a run or model artifacts directory mlflow would make', async (t) => {
  const ok: Array<[string, string?]> = [
    [`file:///srv/mlruns/0/${RUN}/artifacts`, RUN],
    [`/srv/mlruns/0/${RUN}/artifacts`, RUN],
    [`./mlruns/0/${RUN}/artifacts`, RUN],
    ['file:///srv/mlruns/0/models/m-abc/artifacts', 'm-abc'],
    [`file:///srv/mlruns/0/${RUN}/artifacts/model`],
    ['s3://bucket/anything', RUN],
    ['mlflow-artifacts:/0/x', RUN],
  ]
  for (const [uri, owner] of ok) t.doesNotThrow(() => checkLocalArtifactLocation(uri, 'the run', owner), uri)
  const refused: Array<[string, string?]> = [
    ['file:///', RUN],
    ['file:///etc', RUN],
    ['/home/user', RUN],
    [`file:///srv/mlruns/0/${RUN}/artifacts/../../..`, RUN],
    ['file:///srv/mlruns/0/otherrun/artifacts', RUN],
    ['file:///'],
    ['file:///srv/artifacts'],
    [`file:///srv/mlruns/0/${RUN}/artifacts/%2e%2e/%2e%2e`],
  ]
  for (const [uri, owner] of refused) t.throws(() => checkLocalArtifactLocation(uri, 'the run', owner), {code: 'UNSAFE_ARTIFACT_PATH'}, uri)
})

/** A tracking server that answers runs/get with `artifactUri` and has no logged models. */
async function fakeTracking(t: Test, artifactUri: string): Promise<string> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    if (req.url?.startsWith('/api/2.0/mlflow/runs/get')) {
      res.end(JSON.stringify({run: {info: {artifact_uri: artifactUri, experiment_id: '0'}}}))
    } else if (req.url?.startsWith('/api/2.0/mlflow/logged-models/search')) {
      res.end(JSON.stringify({models: []}))
    } else {
      res.writeHead(404).end(JSON.stringify({error_code: 'ENDPOINT_NOT_FOUND', message: 'no'}))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as {port: number}).port}`
}

t.test('a tracking server cannot make mlserve copy a local directory it does not own into the model cache', async (t) => {
  const dir = t.testdir({victim: {MLmodel: 'flavors: {python_function: {loader_module: x}}\n', 'secret.txt': 'local data'}, cache: {}})
  const victim = path.join(dir, 'victim')
  const env = (tracking: string) => ({
    MLFLOW_TRACKING_URI: tracking,
    MLSERVE_MODEL_ROOT: path.join(dir, 'cache'),
    MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0',
  })

  const root = await fakeTracking(t, `file://${victim}`)
  await t.rejects(resolveModelUri(`runs:/${RUN}/.`, {cwd: dir, env: env(root)}), {
    code: 'UNSAFE_ARTIFACT_PATH',
    message: new RegExp(`Refusing to copy file://${victim}`),
  })
  await t.rejects(resolveModelUri(`runs:/${RUN}`, {cwd: dir, env: env(root)}), {code: 'UNSAFE_ARTIFACT_PATH'})

  // A plausible artifact root, and a runs:/ path that climbs out of it.
  mkdirSync(path.join(dir, 'store', '0', RUN, 'artifacts'), {recursive: true})
  writeFileSync(path.join(dir, 'store', 'MLmodel'), 'flavors: {python_function: {loader_module: x}}\n')
  const plausible = await fakeTracking(t, `file://${path.join(dir, 'store', '0', RUN, 'artifacts')}`)
  await t.rejects(resolveModelUri(`runs:/${RUN}/model/../../../..`, {cwd: dir, env: env(plausible)}), {code: 'UNSAFE_ARTIFACT_PATH'})

  const copied = readdirSync(path.join(dir, 'cache')).filter((name) => !name.endsWith('.lock'))
  t.same(copied, [], 'nothing was copied into the model cache')
})

t.test('credentials in a URI: redacted in text, sent as Basic auth, never in the URL', async (t) => {
  t.equal(redactUri('http://user:s3cret@host/api'), 'http://***@host/api')
  t.equal(
    redactText("Downloading 'https://u:p%40ss@h:1/x' failed; see http://other/y"),
    "Downloading 'https://***@h:1/x' failed; see http://other/y",
  )
  t.same(credentialsOf('http://user:p%40ss@host:8/api?x=1'), {
    url: 'http://host:8/api?x=1',
    authorization: `Basic ${Buffer.from('user:p@ss').toString('base64')}`,
  })
  t.same(credentialsOf('http://host/api'), {url: 'http://host/api'})
})
