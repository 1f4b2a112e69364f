// What /metrics and /readyz say is served across a reload: the serving generation's model, reloads by outcome.
import t from 'tap'

import {createProxyHandler} from '../../../src/proxy/app.js'
import {singleUpstream} from '../../../src/proxy/forward.js'
import {Observer} from '../../../src/proxy/observe.js'
import {ProxyServer} from '../../../src/proxy/server.js'
import {pageRoutes} from '../../../src/proxy/try-page.js'
import {harness} from '../../helpers/proxy.js'

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

t.test('GET /ui is counted under its own route label', async (t) => {
  const h = await harness(t)
  const observer = new Observer({
    state: () => 'ready',
    scorers: () => ({counts: () => ({starting: 0, ready: 1, retiring: 0}), queueDepth: 0, outstanding: 0, unhealthy: undefined}),
    inFlight: () => 0,
    workers: 1,
    logFormat: 'text',
  })
  const operational = {...observer.routes(), ...(await pageRoutes())}
  const server = new ProxyServer(createProxyHandler({upstreams: singleUpstream(h.pool), state: () => 'ready', timeoutMs: 2000, operational}), {
    onResponse: observer.onResponse,
  })
  const url = `http://127.0.0.1:${await server.listen('127.0.0.1', 0)}`
  t.teardown(() => server.close(0))
  const page = await fetch(`${url}/ui`)
  t.equal(page.status, 200)
  await page.text()
  const text = await (await fetch(`${url}/metrics`)).text()
  t.match(text, /\nmlserve_http_requests_total\{route="\/ui",method="GET",status="200"\} 1\n/)
  t.notMatch(text, /route="other"/, 'not as other')
})
