// --static-prefix end to end with MLflow's real scorer: every route under the prefix and none outside it,
// with API keys too; generate-k8s passes it on and points the probes and the scrape annotation under it.
import t from 'tap'

import {runMlserve, startMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const model = fixtureModel('sum')
const BODY = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
const GET_ROUTES = ['/ping', '/health', '/version', '/livez', '/readyz', '/metrics']

async function call(base: string, route: string, init: RequestInit = {}) {
  const res = await fetch(`${base}${route}`, init)
  return {status: res.status, body: await res.text()}
}

const invoke = (headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: {'content-type': 'application/json', ...headers},
  body: BODY,
})

t.test('every route under --static-prefix, none outside it', async (t) => {
  const server = await startMlserve(['-m', model, '--static-prefix', '/models/sum/'])
  t.teardown(() => server.stop())
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/models\/sum$/, 'the log names the URL with its prefix')
  const origin = new URL(server.url).origin

  t.same(await call(server.url, '/invocations', invoke()), {status: 200, body: '{"predictions": [3, 7]}'}, 'POST /models/sum/invocations')
  t.same(await call(server.url, '/invocations?x=1', invoke()), {status: 200, body: '{"predictions": [3, 7]}'}, 'with a query')
  for (const route of GET_ROUTES) {
    // eslint-disable-next-line no-await-in-loop
    t.equal((await call(server.url, route)).status, 200, `GET /models/sum${route}`)
  }

  const outside = ['/invocations', '/ping', '/metrics', '/models/summary/ping', '/models/ping', '/']
  for (const route of outside) {
    // eslint-disable-next-line no-await-in-loop
    t.same(await call(origin, route), {status: 404, body: '{"detail":"Not Found"}'}, `${route} is outside the prefix`)
  }

  const slash = await fetch(`${server.url}/invocations/`, {...invoke(), redirect: 'manual'})
  await slash.arrayBuffer()
  t.same(
    {status: slash.status, location: slash.headers.get('location')},
    {status: 307, location: `${server.url}/invocations`},
    "the scorer's redirect stays under the prefix",
  )

  const metrics = await call(server.url, '/metrics')
  t.match(
    metrics.body,
    /mlserve_http_requests_total\{route="\/invocations",method="POST",status="200"\} 2/,
    'routes are counted without the prefix',
  )
})

t.test('the prefix with API keys: the health checks under it stay public', async (t) => {
  const server = await startMlserve(['-m', model, '--static-prefix', '/p'], {env: toolchainEnv({MLSERVE_AUTH_TOKENS: 'prefix-key'})})
  t.teardown(() => server.stop())
  t.equal((await call(server.url, '/ping')).status, 200)
  t.equal((await call(server.url, '/invocations', invoke())).status, 401)
  t.equal((await call(server.url, '/invocations', invoke({authorization: 'Bearer prefix-key'}))).status, 200)
})

t.test('a prefix that is not a path is refused at start (exit 2)', async (t) => {
  for (const prefix of ['p', '/a/../b', '/p?x', '/p q']) {
    // eslint-disable-next-line no-await-in-loop
    const result = await runMlserve(['serve', '-m', model, '--env-manager', 'local', '-p', '0', '--static-prefix', prefix])
    t.equal(result.code, 2, `${JSON.stringify(prefix)}: exit 2`)
    t.match(result.stderr, /is not a path prefix/)
  }
})

t.test('generate-k8s --static-prefix passes it to serve and puts the probes and /metrics under it', async (t) => {
  const result = await runMlserve([
    'generate-k8s',
    '-m',
    model,
    '--image',
    'sum:1',
    '--static-prefix',
    '/p',
    '--cors-origin',
    'https://a.example',
  ])
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /- "--static-prefix"\n\s+- \/p\n/, 'passed to serve')
  t.match(result.stdout, /- "--cors-origin"\n\s+- https:\/\/a\.example\n/, '--cors-origin passed to serve')
  t.match(result.stdout, /path: \/p\/readyz/)
  t.match(result.stdout, /path: \/p\/livez/)
  t.match(result.stdout, /prometheus\.io\/path: \/p\/metrics/)
})
