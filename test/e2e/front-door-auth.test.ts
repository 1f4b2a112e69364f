// API keys end to end with MLflow's real scorer: without, with a wrong and with a right key on every
// route, the 401 envelope, the access log's key hash, /metrics counting 401s, SIGHUP re-reading the file,
// and a bad token file refused before anything starts (exit 31).
import {createHash} from 'node:crypto'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {eventually, runMlserve, startMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-auth-'))
t.teardown(() => rmSync(dir, {recursive: true, force: true}))
const model = fixtureModel('sum')
const BODY = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
const ROUTES: ReadonlyArray<[string, string]> = [
  ['POST', '/invocations'],
  ['GET', '/version'],
  ['GET', '/metrics'],
]
const PUBLIC = ['/ping', '/health', '/livez', '/readyz']

function tokenFile(name: string, text: string, mode = 0o600): string {
  const file = path.join(dir, name)
  writeFileSync(file, text)
  chmodSync(file, mode)
  return file
}

async function call(url: string, method: string, route: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: method === 'POST' ? {'content-type': 'application/json', ...headers} : headers,
    body: method === 'POST' ? BODY : undefined,
  })
  return {status: res.status, body: await res.text(), headers: res.headers}
}

const shortHash = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 8)

t.test('a bad token file fails the start with exit 31, before the model is even looked at', async (t) => {
  const missingModel = path.join(dir, 'no-such-model')
  const cases: Array<[string, string, RegExp]> = [
    ['missing', path.join(dir, 'absent'), /cannot be read: ENOENT/],
    ['empty', tokenFile('empty', '# only a comment\n\n'), /holds no token/],
    ['world-readable', tokenFile('open', 'tok\n', 0o644), /readable by others \(mode 644\)[\s\S]*chmod 600/],
    ['group-readable', tokenFile('group', 'tok\n', 0o640), /readable by others \(mode 640\)/],
  ]
  for (const [name, file, message] of cases) {
    // eslint-disable-next-line no-await-in-loop
    const result = await runMlserve(['serve', '-m', missingModel, '--env-manager', 'local', '-p', '0', '--auth-token-file', file])
    t.equal(result.code, 31, `${name}: exit 31`)
    t.match(result.stderr, /AUTH_TOKENS_INVALID/, name)
    t.match(result.stderr, message, name)
    t.notMatch(result.stderr, /listening on/, `${name}: nothing was started`)
  }

  const empty = await runMlserve(['serve', '-m', missingModel, '-p', '0'], {env: toolchainEnv({MLSERVE_AUTH_TOKENS: ' , '})})
  t.equal(empty.code, 31, 'MLSERVE_AUTH_TOKENS set to no token: exit 31')
})

t.test('every route but the health checks needs a key; the file is re-read on SIGHUP', async (t) => {
  const file = tokenFile('keys', '# the team\nalpha-key-1\n  beta-key-2  \n')
  const server = await startMlserve(['-m', model, '--auth-token-file', file])
  t.teardown(() => server.stop())

  for (const [method, route] of ROUTES) {
    /* eslint-disable no-await-in-loop */
    const none = await call(server.url, method, route)
    t.equal(none.status, 401, `${method} ${route} without a key`)
    t.equal(
      none.body,
      '{"error_code": "UNAUTHENTICATED", "message": "This server requires an API key: send \\"Authorization: Bearer <token>\\" or \\"X-API-Key: <token>\\"."}',
    )
    t.equal(none.headers.get('www-authenticate'), 'Bearer')
    t.equal(none.headers.get('content-type'), 'application/json')
    const wrong = await call(server.url, method, route, {authorization: 'Bearer alpha-key-2'})
    t.equal(wrong.status, 401, `${method} ${route} with a wrong key`)
    t.equal(wrong.body, '{"error_code": "UNAUTHENTICATED", "message": "The API key is not valid for this server."}')
    t.equal((await call(server.url, method, route, {authorization: 'Bearer alpha-key-1'})).status, 200, `${method} ${route} with Bearer`)
    t.equal((await call(server.url, method, route, {'x-api-key': 'beta-key-2'})).status, 200, `${method} ${route} with X-API-Key`)
    /* eslint-enable no-await-in-loop */
  }

  const predicted = await call(server.url, 'POST', '/invocations', {authorization: 'bearer alpha-key-1'})
  t.equal(predicted.body, '{"predictions": [3, 7]}', "the scorer's own answer, unchanged")
  for (const route of PUBLIC) {
    // eslint-disable-next-line no-await-in-loop
    t.equal((await call(server.url, 'GET', route)).status, 200, `${route} needs no key`)
  }

  const metrics = await call(server.url, 'GET', '/metrics', {'x-api-key': 'alpha-key-1'})
  t.match(metrics.body, /mlserve_http_requests_total\{route="\/invocations",method="POST",status="401"\} [1-9]/, '/metrics counts the 401s')
  t.match(metrics.body, /mlserve_requests_rejected_total\{reason="unauthenticated"\} [1-9]/)
  t.ok(await eventually(() => server.stdout().includes(`key=${shortHash('alpha-key-1')}`)), 'the access log names the key by its hash')
  t.notMatch(server.stdout() + server.stderr(), /alpha-key-1|beta-key-2/, 'no token is ever logged')

  writeFileSync(file, 'gamma-key-3\n')
  server.child.kill('SIGHUP')
  await server.waitForOutput(/re-read --auth-token-file \(1 key\(s\)\)/)
  // Re-reading the keys leaves the (unchanged) local model alone: no new generation of scorers.
  const check = await server.waitForOutput(/reload check: .* still names what is served|reload: preparing/)
  t.notMatch(check[0], /reload: preparing/, 'SIGHUP did not reload the unchanged local model')
  t.match(JSON.parse((await call(server.url, 'GET', '/readyz')).body), {model: {generation: 1}}, 'still generation 1')
  t.equal((await call(server.url, 'GET', '/version', {'x-api-key': 'gamma-key-3'})).status, 200, 'the new key is accepted')
  t.equal((await call(server.url, 'GET', '/version', {'x-api-key': 'alpha-key-1'})).status, 401, 'a removed key is refused')

  chmodSync(file, 0o644)
  server.child.kill('SIGHUP')
  await server.waitForOutput(/kept the previous keys and certificate: .*readable by others/)
  t.equal((await call(server.url, 'GET', '/version', {'x-api-key': 'gamma-key-3'})).status, 200, 'a bad file on SIGHUP keeps the keys')
})

t.test('MLSERVE_AUTH_TOKENS, with --metrics-public', async (t) => {
  const server = await startMlserve(['-m', model, '--metrics-public'], {env: toolchainEnv({MLSERVE_AUTH_TOKENS: 'one-token, two-token'})})
  t.teardown(() => server.stop())
  t.equal((await call(server.url, 'GET', '/metrics')).status, 200, '/metrics is public')
  t.equal((await call(server.url, 'POST', '/invocations')).status, 401)
  t.equal((await call(server.url, 'POST', '/invocations', {authorization: 'Bearer two-token'})).status, 200)
})
