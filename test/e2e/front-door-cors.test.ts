// CORS end to end with MLflow's real scorer: preflights answered by mlserve, the Access-Control-* headers on
// answers to allowed origins only, with API keys too; without --cors-origin, OPTIONS is answered as mlflow does.
import t from 'tap'

import {startMlflowServe, startMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const model = fixtureModel('sum')
const BODY = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
const APP = 'https://app.example'

async function call(url: string, method: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(`${url}/invocations`, {method, headers, body})
  return {status: res.status, body: await res.text(), headers: Object.fromEntries(res.headers)}
}

const preflight = (url: string, origin: string) =>
  call(url, 'OPTIONS', {origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-api-key'})

t.test('without --cors-origin a preflight gets what mlflow models serve answers', async (t) => {
  const mlflow = await startMlflowServe(model)
  t.teardown(() => mlflow.stop())
  const mlserve = await startMlserve(['-m', model])
  t.teardown(() => mlserve.stop())
  const reference = await preflight(mlflow.url, APP)
  const ours = await preflight(mlserve.url, APP)
  t.equal(ours.status, reference.status, `status ${reference.status}`)
  t.equal(ours.body, reference.body)
  t.equal(ours.headers['access-control-allow-origin'], undefined)
})

t.test('--cors-origin: preflights, headers on answers, other origins left without', async (t) => {
  const server = await startMlserve(['-m', model, '--cors-origin', APP, '--cors-origin', 'https://other.example'], {
    env: toolchainEnv({MLSERVE_AUTH_TOKENS: 'cors-key'}),
  })
  t.teardown(() => server.stop())

  const allowed = await preflight(server.url, APP)
  t.equal(allowed.status, 204, 'a preflight is answered by mlserve, without a key')
  t.equal(allowed.headers['access-control-allow-origin'], APP)
  t.match(allowed.headers['access-control-allow-methods'], /POST/)
  t.match(allowed.headers['access-control-allow-headers'], /X-API-Key/)
  t.match(allowed.headers['access-control-allow-headers'], /Content-Type/)
  t.equal(allowed.headers.vary, 'Origin')

  const answered = await call(server.url, 'POST', {origin: APP, 'content-type': 'application/json', 'x-api-key': 'cors-key'}, BODY)
  t.equal(answered.body, '{"predictions": [3, 7]}', "the scorer's answer")
  t.equal(answered.headers['access-control-allow-origin'], APP)
  t.match(answered.headers['access-control-expose-headers'], /X-Request-ID/)

  const refused = await call(server.url, 'POST', {origin: APP, 'content-type': 'application/json'}, BODY)
  t.equal(refused.status, 401)
  t.equal(refused.headers['access-control-allow-origin'], APP, 'a page can read the 401')

  const stranger = await preflight(server.url, 'https://evil.example')
  t.equal(stranger.status, 204)
  t.equal(stranger.headers['access-control-allow-origin'], undefined, 'an origin not listed gets no CORS header')
  const strangerPost = await call(
    server.url,
    'POST',
    {origin: 'https://evil.example', 'content-type': 'application/json', 'x-api-key': 'cors-key'},
    BODY,
  )
  t.equal(strangerPost.headers['access-control-allow-origin'], undefined)
})

t.test('--cors-origin "*" allows any origin', async (t) => {
  const server = await startMlserve(['-m', model, '--cors-origin', '*'])
  t.teardown(() => server.stop())
  const allowed = await preflight(server.url, 'https://anywhere.example')
  t.equal(allowed.headers['access-control-allow-origin'], '*')
  const answered = await call(server.url, 'POST', {origin: 'https://anywhere.example', 'content-type': 'application/json'}, BODY)
  t.equal(answered.status, 200)
  t.equal(answered.headers['access-control-allow-origin'], '*')
})
