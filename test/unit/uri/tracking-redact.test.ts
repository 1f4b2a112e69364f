// Credentials in a model URI or --url never reach what mlserve writes: image labels, manifests, smoke's reports.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import t from 'tap'

import {smokeServeOptions} from '../../../src/cli/smoke-options.js'
import {LABELS, modelLabels} from '../../../src/docker/prepare.js'
import {renderDockerfile} from '../../../src/docker/dockerfile.js'
import {createLogger} from '../../../src/log.js'
import {toJunit} from '../../../src/smoke/junit.js'
import {formatSummary, toJson} from '../../../src/smoke/report.js'
import {runSmoke} from '../../../src/smoke/smoke.js'
import {redactText, redactUri} from '../../../src/uri/tracking.js'
import {MLSERVE_BIN} from '../../helpers/servers.js'

const SECRET = 's3cret'
const MODEL_URI = `https://alice:${SECRET}@127.0.0.1:1/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/model`

const tempDir = (t: {teardown(fn: () => void): void}) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-redact-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  return dir
}

t.test('the userinfo ends at the last @ of the authority', async (t) => {
  t.equal(redactUri('https://u:p@ss@host:1/x@y'), 'https://***@host:1/x@y')
  t.equal(redactUri('http://host/path@x'), 'http://host/path@x', 'an @ in the path is not userinfo')
  t.equal(redactUri('./models/iris'), './models/iris')
  t.equal(redactText('fetch https://u:p@ss@h/x failed'), 'fetch https://***@h/x failed')
})

t.test('image labels and the Dockerfile: the model URI without its credentials', async (t) => {
  const dir = tempDir(t)
  writeFileSync(path.join(dir, 'MLmodel'), 'run_id: abc123\nflavors: {}\n')
  const labels = await modelLabels(MODEL_URI, path.join(dir, 'MLmodel'), dir)
  t.equal(labels[LABELS.modelUri], 'https://***@127.0.0.1:1/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/model')
  t.equal(labels[LABELS.runId], 'abc123')
  const dockerfile = renderDockerfile({baseImage: 'python:3.11-slim', pythonVersion: '3.11', soabi: 'cpython-311', serveFlags: [], labels})
  t.notMatch(dockerfile, SECRET)
  t.match(dockerfile, 'https://***@127.0.0.1:1/')
})

t.test('generate-k8s: the model-uri annotation and the derived name hold no credentials', async (t) => {
  for (const uri of [MODEL_URI, `https://alice:${SECRET}@mlflow.example.com`]) {
    // eslint-disable-next-line no-await-in-loop
    const result = await execa('node', [MLSERVE_BIN, 'generate-k8s', '-m', uri, '--image', 'iris:1'], {reject: false})
    t.equal(result.exitCode, 0, result.stderr)
    t.notMatch(result.stdout + result.stderr, SECRET, uri)
    t.match(result.stdout, 'mlserve.dev/model-uri: https://***@')
  }
})

t.test("smoke's summary, --json and JUnit: -m and --url without their credentials", async (t) => {
  const dir = tempDir(t)
  const lines: string[] = []
  const log = createLogger({write: (chunk: string) => lines.push(chunk)})
  const serve = smokeServeOptions({
    'model-uri': MODEL_URI,
    'env-manager': 'local',
    'no-conda': false,
    'install-mlflow': false,
    speedups: true,
    'build-timeout': 0,
    python: 'python3',
    timeout: 5,
    'load-timeout': 5,
    'enable-mlserver': false,
  })
  const stop = new AbortController()
  // Nothing listens on port 1: the model cannot be read, and the report still names it and the URL.
  const outcome = await runSmoke(
    {
      serve: {...serve, cwd: dir, env: {...process.env, MLSERVE_MODEL_ROOT: path.join(dir, 'models'), MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0'}},
      url: `http://bob:${SECRET}@127.0.0.1:1`,
      timeoutMs: 5000,
    },
    {log, stderr: {write: () => true}, stop: stop.signal, force: stop.signal},
  )
  const {report} = outcome
  t.ok(outcome.startupError, 'start-up failed: nothing answers')
  const outputs = {summary: formatSummary(report), json: toJson(report), junit: toJunit(report), log: lines.join('')}
  for (const [name, text] of Object.entries(outputs)) t.notMatch(text, SECRET, name)
  t.match(outputs.summary, 'https://***@127.0.0.1:1/')
  t.match(outputs.summary, 'http://***@127.0.0.1:1')
  t.match(JSON.parse(outputs.json), {model: {uri: /^https:\/\/\*\*\*@/}})
  t.match(outputs.junit, 'http://***@127.0.0.1:1')
})
