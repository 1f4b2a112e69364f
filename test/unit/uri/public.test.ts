// What identifies the model on the public port (/readyz, mlserve_model_info) and in image labels: its name,
// version and run, never a path of the host it was started on nor credentials.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {environmentLabels} from '../../../src/docker/image.js'
import {LABELS, modelLabels} from '../../../src/docker/prepare.js'
import type {ResolvedModel} from '../../../src/load-model.js'
import {Observer} from '../../../src/proxy/observe.js'
import {servedModelOf} from '../../../src/serve/generation.js'

const resolved = (uri: string, localDir: string, extra: {registered?: {name: string; version: string}; runId?: string} = {}) =>
  ({ref: {uri, localDir, ...extra}, mlmodel: {path: path.join(localDir, 'MLmodel')}, flavor: 'pyfunc'}) as unknown as ResolvedModel

t.test('a local model is named by its directory, other URIs as given without credentials', async (t) => {
  for (const uri of ['/home/alice/models/iris', './iris/', '.', 'file:///home/alice/models/iris']) {
    t.equal(servedModelOf(resolved(uri, '/home/alice/models/iris'), 1).uri, 'iris', uri)
  }

  t.match(servedModelOf(resolved('runs:/abc/model', '/home/alice/.cache/mlserve/models/k', {runId: 'abc'}), 2), {
    uri: 'runs:/abc/model',
    runId: 'abc',
  })
  t.match(servedModelOf(resolved('models:/fraud@champion', '/home/alice/.cache/x', {registered: {name: 'fraud', version: '7'}}), 1), {
    uri: 'models:/fraud@champion',
    version: '7',
    label: '7',
  })
  t.equal(servedModelOf(resolved('https://u:pw@host/artifacts/model', '/home/alice/.cache/y'), 1).uri, 'https://***@host/artifacts/model')
})

t.test('/readyz and mlserve_model_info show no host path for a local model', async (t) => {
  const served = servedModelOf(resolved('/home/alice/models/iris', '/home/alice/models/iris'), 1)
  const observer = new Observer({
    state: () => 'ready',
    scorers: () => ({counts: () => ({starting: 0, ready: 1, retiring: 0}), queueDepth: 0, outstanding: 0, unhealthy: undefined}),
    inFlight: () => 0,
    workers: 1,
    logFormat: 'text',
    model: () => served,
  })
  const routes = observer.routes()
  const readyz = routes['/readyz']!().body
  const metrics = routes['/metrics']!().body
  t.same(JSON.parse(readyz).model, {uri: 'iris', version: null, run_id: null, generation: 1})
  t.match(metrics, /\nmlserve_model_info\{uri="iris",version="",run_id="",generation="1"\} 1\n/)
  t.notMatch(readyz + metrics, '/home/alice')
})

t.test("image labels: the model's directory name and the environment's key, not the host's paths", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-public-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  writeFileSync(path.join(dir, 'MLmodel'), 'flavors: {}\n')
  const labels = await modelLabels(dir, path.join(dir, 'MLmodel'), dir)
  t.equal(labels[LABELS.modelUri], path.basename(dir))
  const env = environmentLabels({envKey: 'virtualenv-0123abcd'})
  t.equal(env[LABELS.environment], 'virtualenv-0123abcd')
  t.notMatch(JSON.stringify({...labels, ...env}), tmpdir())
})
