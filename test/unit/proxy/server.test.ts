// The listening server: draining on close() (requests in flight finish within the grace, then are given up),
// a port in use, an observer that throws, and a CONNECT answered before the connection closes.
import t from 'tap'

import {createProxyHandler} from '../../../src/proxy/app.js'
import {singleUpstream} from '../../../src/proxy/forward.js'
import {ProxyServer} from '../../../src/proxy/server.js'
import {harness, leasingHarness, raw} from '../../helpers/proxy.js'

const post = (url: string, body = '{}', signal?: AbortSignal) =>
  fetch(url, {method: 'POST', headers: {'content-type': 'application/json'}, body, signal})

t.test('close() lets a request in flight finish, then refuses new connections', async (t) => {
  const h = await harness(t, 10_000)
  h.setHandler((_req, res) => {
    setTimeout(() => {
      res.writeHead(200, {'content-type': 'application/json'})
      res.end('{"done": true}')
    }, 300)
  })
  const inFlight = fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'})
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(h.proxy.requestsInFlight, 1)
  const closing = h.proxy.close(5000)
  const res = await inFlight
  t.equal(res.status, 200)
  t.equal(await res.text(), '{"done": true}')
  t.equal(await closing, 0, 'nothing was abandoned')
  await t.rejects(fetch(`${h.url}/ping`), 'new connections are refused')
})

t.test('close() gives up on requests that outlast the grace period', async (t) => {
  const h = await harness(t, 10_000)
  h.setHandler(() => {})
  const inFlight = fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'}).catch(
    (error: Error) => error,
  )
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(await h.proxy.close(200), 1)
  t.type(await inFlight, Error)
})

t.test('listening on a port in use is LISTEN_FAILED with a suggestion', async (t) => {
  const h = await harness(t)
  const port = Number(new URL(h.url).port)
  const other = new ProxyServer(createProxyHandler({upstreams: singleUpstream(undefined), state: () => 'starting', timeoutMs: 1}))
  await t.rejects(other.listen('127.0.0.1', port), {
    code: 'LISTEN_FAILED',
    exitCode: 30,
    message: `Port ${port} on 127.0.0.1 is already in use.`,
  })
})

t.test('an onResponse hook that throws is logged and the proxy carries on', async (t) => {
  const h = await harness(t)
  const logged = t.capture(console, 'error', () => {})
  const server = new ProxyServer(createProxyHandler({upstreams: singleUpstream(h.pool), state: () => 'ready', timeoutMs: 2000}), {
    onResponse() {
      throw new Error('metrics are broken')
    },
  })
  const port = await server.listen('127.0.0.1', 0)
  t.teardown(() => server.close(0))
  for (let i = 0; i < 2; i++) {
    // eslint-disable-next-line no-await-in-loop
    const res = await post(`http://127.0.0.1:${port}/invocations`)
    t.equal(res.status, 200)
    // eslint-disable-next-line no-await-in-loop
    t.equal(await res.text(), 'ok')
  }

  await new Promise((resolve) => setTimeout(resolve, 20))
  const calls = logged()
  t.equal(calls.length, 2)
  t.match(String(calls[0]!.args[0]), /metrics are broken/)
})

t.test('CONNECT gets a 405 answer before the connection closes', async (t) => {
  const h = await leasingHarness(t)
  const client = await raw(h.port)
  client.socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  await client.closed
  t.match(client.text(), /^HTTP\/1\.1 405 Method Not Allowed\r\n/)
  t.match(client.text(), /"message": "CONNECT is not supported by this server\."/)
  t.equal(h.leases.acquired, 0)
})
