// mlserve's own answers and the handler's routing: 503 before ready (and /ping, /health while draining),
// a request target that is not a path, X-MLServe-Model-Version, and the global Request and Response left alone.
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {Pool, fetch} from 'undici'

import {createProxyApp, createProxyHandler, type ServerState} from '../../../src/proxy/app.js'
import {singleUpstream} from '../../../src/proxy/forward.js'
import {ProxyServer} from '../../../src/proxy/server.js'
import {harness, leasingHarness, raw} from '../../helpers/proxy.js'

/** Node's own, before any proxy was created in this process. */
const GLOBALS = {Request: globalThis.Request, Response: globalThis.Response}

const post = (url: string, body = '{}', signal?: AbortSignal) =>
  fetch(url, {method: 'POST', headers: {'content-type': 'application/json'}, body, signal})

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

t.test('before the scorer is ready every route is a 503 envelope with Retry-After', async (t) => {
  const app = createProxyApp({upstreams: singleUpstream(undefined), state: () => 'starting', timeoutMs: 1000})
  for (const [method, route] of [
    ['GET', '/ping'],
    ['GET', '/health'],
    ['POST', '/invocations'],
  ] as const) {
    // eslint-disable-next-line no-await-in-loop
    const res = await app.request(route, {method})
    t.equal(res.status, 503, `${method} ${route}`)
    t.equal(res.headers.get('content-type'), 'application/json')
    t.equal(res.headers.get('retry-after'), '1')
    // eslint-disable-next-line no-await-in-loop
    t.same(JSON.parse(await res.text()), {
      error_code: 'TEMPORARILY_UNAVAILABLE',
      message: 'The model server is not ready to serve requests (starting).',
    })
  }
})

t.test('through the server: 503 until ready, forwarded once ready and while draining', async (t) => {
  const h = await harness(t)
  h.setHandler((_req, res) => res.end('{"from": "scorer"}'))
  for (const [state, status, body] of [
    ['starting', 503, 'The model server is not ready to serve requests (starting).'],
    ['ready', 200, undefined],
    ['stopping', 200, undefined],
  ] as const) {
    h.setState(state)
    // eslint-disable-next-line no-await-in-loop
    const res = await post(`${h.url}/invocations`)
    t.equal(res.status, status, state)
    // eslint-disable-next-line no-await-in-loop
    const text = await res.text()
    if (body === undefined) {
      t.equal(text, '{"from": "scorer"}')
    } else {
      t.equal(res.headers.get('retry-after'), '1')
      t.same(JSON.parse(text), {error_code: 'TEMPORARILY_UNAVAILABLE', message: body})
    }
  }

  for (const route of ['/ping', '/health']) {
    // eslint-disable-next-line no-await-in-loop
    const res = await fetch(`${h.url}${route}`)
    t.equal(res.status, 503, `${route} while draining`)
    // eslint-disable-next-line no-await-in-loop
    await res.text()
  }

  t.same(h.outcomes, ['ok', 'ok'], 'only the forwarded requests have an outcome')
  t.equal(h.received.length, 2)
})

t.test("mlserve's own Hono app leaves the global Request and Response alone", async (t) => {
  const h = await harness(t)
  h.setState('starting')
  const res = await post(`${h.url}/invocations`)
  t.equal(res.status, 503)
  await res.text()
  t.equal(globalThis.Request, GLOBALS.Request)
  t.equal(globalThis.Response, GLOBALS.Response)
})

t.test('OPTIONS * gets a 400 envelope from the proxy, without a scorer', async (t) => {
  const h = await leasingHarness(t)
  const client = await raw(h.port)
  client.socket.write('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await client.closed
  t.match(client.text(), /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(
    client.text(),
    /\r\n\r\n\{"error_code": "BAD_REQUEST", "message": "The request target must be a path starting with \\"\/\\", not \\"\*\\"\."\}$/,
  )
  t.equal(h.leases.acquired, 0)
  t.equal(h.received.length, 0)
})

t.test('an own route may be a function: its current answer on each request (what follows a reload), 503 before ready', async (t) => {
  let version = '1'
  let state: ServerState = 'starting'
  const app = createProxyApp({
    upstreams: singleUpstream(undefined),
    state: () => state,
    timeoutMs: 1000,
    ownRoutes: {'/doc': async () => ({status: 200, contentType: 'application/json', body: `{"version": "${version}"}`})},
  })
  t.equal((await app.request('/doc')).status, 503)
  state = 'ready'
  t.equal(await (await app.request('/doc')).text(), '{"version": "1"}')
  version = '2'
  t.equal(await (await app.request('/doc')).text(), '{"version": "2"}')
})
