// The pieces a reload relies on, without processes: what a URI names (moving or fixed, its key), the
// environment's in-use mark shared by two generations, and what /metrics and /readyz say is served.
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {Pool, fetch} from 'undici'

import {markInUse} from '../../src/env/cache.js'
import {createProxyHandler, type ServerState} from '../../src/proxy/app.js'
import {ProxyServer} from '../../src/proxy/server.js'
import {Observer} from '../../src/proxy/observe.js'
import {isMovingUri, lookUpModelTarget, targetKeyOf} from '../../src/uri/resolve.js'

t.test('moving references, fixed ones, and the key of what was resolved', async (t) => {
  for (const uri of ['models:/fraud@champion', 'models:/fraud/Production', 'models:/fraud/latest']) t.ok(isMovingUri(uri), uri)
  for (const uri of ['models:/fraud/7', 'runs:/abc/model', './model', 'models:/m-0123abcd', 's3://bucket/model']) t.notOk(isMovingUri(uri), uri)

  t.equal(targetKeyOf({uri: 'models:/fraud@champion', localDir: '/cache/x', registered: {name: 'fraud', version: '7'}}), 'models:/fraud/7')
  t.equal(targetKeyOf({uri: './model', localDir: '/srv/model'}), '/srv/model', 'a directory: its path')
  t.equal(targetKeyOf({uri: 'runs:/abc/model', localDir: '/cache/y', runId: 'abc'}), 'runs:/abc/model')

  // Fixed references and directories are named without asking any server.
  t.same(await lookUpModelTarget('./model', {cwd: '/srv'}), {key: '/srv/model', fixedUri: './model', moving: false, local: true})
  t.same(await lookUpModelTarget('models:/fraud/7', {cwd: '/srv', env: {}}), {
    key: 'models:/fraud/7',
    fixedUri: 'models:/fraud/7',
    moving: false,
    local: false,
    registered: {name: 'fraud', version: '7'},
  })
})

t.test("two generations on one environment: the first one's release keeps the in-use mark of the second", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-in-use-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const mark = path.join(dir, '.mlserve-in-use', String(process.pid))
  const releaseOld = await markInUse(dir)
  const releaseNew = await markInUse(dir)
  await releaseOld()
  t.ok(existsSync(mark), 'still marked in use: env prune leaves it alone')
  await releaseOld()
  t.ok(existsSync(mark), 'a release counts once')
  await releaseNew()
  t.notOk(existsSync(mark), 'the last release removes the mark')
})

t.test('/metrics and /readyz name the model the serving generation serves; reloads are counted by outcome', async (t) => {
  let generation = 1
  const observer = new Observer({
    state: () => 'ready',
    scorers: () => ({counts: () => ({starting: 0, ready: 1, retiring: 0}), queueDepth: 0, outstanding: 0, unhealthy: undefined}),
    inFlight: () => 0,
    workers: 1,
    logFormat: 'text',
    model: () => ({uri: 'models:/fraud@champion', version: String(5 + generation), runId: 'r1', generation}),
  })
  const routes = observer.routes()
  t.match(routes['/metrics']!().body, /\nmlserve_model_info\{uri="models:\/fraud@champion",version="6",run_id="r1",generation="1"\} 1\n/)
  t.match(routes['/metrics']!().body, /\nmlserve_reloads_total\{outcome="switched"\} 0\n/)
  generation = 2
  observer.recordReload('switched')
  observer.recordReload('unchanged')
  observer.recordReloadCheckFailure()
  const text = routes['/metrics']!().body
  t.match(text, /\nmlserve_model_info\{uri="models:\/fraud@champion",version="7",run_id="r1",generation="2"\} 1\n/)
  t.notMatch(text, /generation="1"/, 'only the serving generation')
  t.match(
    text,
    /\nmlserve_reloads_total\{outcome="switched"\} 1\nmlserve_reloads_total\{outcome="failed"\} 0\nmlserve_reloads_total\{outcome="unchanged"\} 1\n/,
  )
  t.match(text, /\nmlserve_reload_check_failures_total 1\n/)
  t.same(JSON.parse(routes['/readyz']!().body), {
    status: 'ready',
    scorers: {starting: 0, ready: 1, retiring: 0, configured: 1},
    model: {uri: 'models:/fraud@champion', version: '7', run_id: 'r1', generation: 2},
  })
})

t.test('X-MLServe-Model-Version: the version of the scorer that answered, else the serving one', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-header-'))
  const socketPath = path.join(dir, 'upstream.sock')
  const upstream = createServer((_req, res) => res.end('{"predictions": [3]}'))
  await new Promise<void>((resolve) => upstream.listen(socketPath, resolve))
  const pool = new Pool('http://localhost', {socketPath})
  let state: ServerState = 'ready'
  // A request still lent to the replaced generation's scorer while the new generation serves.
  const proxy = new ProxyServer(
    createProxyHandler({
      upstreams: {acquire: () => ({dispatcher: pool, slot: 0, modelVersion: '6'}), release() {}},
      state: () => state,
      timeoutMs: 5000,
      modelVersion: () => '7',
    }),
  )
  const port = await proxy.listen('127.0.0.1', 0)
  t.teardown(async () => {
    await proxy.close(0)
    await pool.close()
    await new Promise((resolve) => upstream.close(resolve))
    rmSync(dir, {recursive: true, force: true})
  })

  const answered = await fetch(`http://127.0.0.1:${port}/invocations`, {
    method: 'POST',
    body: '{}',
    headers: {'content-type': 'application/json'},
  })
  t.equal(await answered.text(), '{"predictions": [3]}')
  t.equal(answered.headers.get('x-mlserve-model-version'), '6', "the scorer's version")
  state = 'starting'
  const refused = await fetch(`http://127.0.0.1:${port}/invocations`, {method: 'POST', body: '{}'})
  await refused.arrayBuffer()
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('x-mlserve-model-version'), '7', "mlserve's own answer: the serving version")
})
