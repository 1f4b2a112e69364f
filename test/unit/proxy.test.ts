// The proxy against a real upstream HTTP server on a Unix socket (no Python): what passes through
// unchanged, and what the proxy answers itself (503 before ready, 504 on timeout, 502 on a dead upstream).
import {mkdtemp} from 'node:fs/promises'
import {createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'
import {Pool} from 'undici'

import {createProxyApp, type ServerState} from '../../src/proxy/app.js'
import {errorEnvelope, pythonJsonString} from '../../src/proxy/responses.js'
import {ProxyServer} from '../../src/proxy/server.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface Harness {
  url: string
  received: Array<{method?: string; url?: string; headers: IncomingMessage['headers']; body: Buffer}>
  setState(state: ServerState): void
  proxy: ProxyServer
  setHandler(handler: Handler): void
}

async function harness(t: Test, timeoutMs = 2000): Promise<Harness> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mlserve-proxy-test-'))
  const socketPath = path.join(dir, 'upstream.sock')
  const received: Harness['received'] = []
  let handler: Handler = (_req, res) => res.end('ok')
  const upstream: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks)})
      handler(req, res)
    })
  })
  await new Promise<void>((resolve) => upstream.listen(socketPath, resolve))
  const pool = new Pool('http://localhost', {socketPath, keepAliveTimeout: 4000})
  let state: ServerState = 'ready'
  const proxy = new ProxyServer(createProxyApp({upstream: () => pool, state: () => state, timeoutMs}))
  const port = await proxy.listen('127.0.0.1', 0)
  t.teardown(async () => {
    await proxy.close(0)
    await pool.destroy()
    upstream.closeAllConnections()
    await new Promise((resolve) => upstream.close(resolve))
  })
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    proxy,
    setState: (next) => {
      state = next
    },
    setHandler: (next) => {
      handler = next
    },
  }
}


t.test('python-style JSON envelopes', async (t) => {
  t.equal(pythonJsonString('a "b" é\n'), '"a \\"b\\" \\u00e9\\n"')
  t.same(errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', 'not yet'), {
    status: 503,
    contentType: 'application/json',
    body: '{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "not yet"}',
    headers: undefined,
  })
})

t.test('before the scorer is ready every route is a 503 envelope with Retry-After', async (t) => {
  const app = createProxyApp({upstream: () => undefined, state: () => 'starting', timeoutMs: 1000})
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

t.test('status, media type and body bytes pass through unchanged (bare NaN included)', async (t) => {
  const h = await harness(t)
  const body = '{"predictions": [NaN, Infinity, 1.5]}'
  h.setHandler((_req, res) => {
    res.writeHead(200, {'content-type': 'application/json', server: 'uvicorn', 'x-extra': 'kept'})
    res.end(body)
  })
  const res = await fetch(`${h.url}/invocations?x=1`, {
    method: 'POST',
    headers: {'content-type': 'application/json; charset=UTF-8', 'x-client': 'yes'},
    body: '{"inputs": [1]}',
  })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'application/json')
  t.equal(res.headers.get('server'), 'uvicorn')
  t.equal(res.headers.get('x-extra'), 'kept')
  t.equal(await res.text(), body)

  const seen = h.received.at(-1)!
  t.equal(seen.method, 'POST')
  t.equal(seen.url, '/invocations?x=1')
  t.equal(seen.headers['content-type'], 'application/json; charset=UTF-8')
  t.equal(seen.headers['x-client'], 'yes')
  t.equal(seen.body.toString(), '{"inputs": [1]}')
})

t.test('error statuses and odd media types pass through too', async (t) => {
  const h = await harness(t)
  h.setHandler((_req, res) => {
    res.writeHead(415, {'content-type': 'text/plain; charset=utf-8'})
    res.end('The scoring server only supports UTF-8')
  })
  const res = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'text/csv; charset=latin-1'}, body: 'a\n1'})
  t.equal(res.status, 415)
  t.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(await res.text(), 'The scoring server only supports UTF-8')
})

t.test('large request and response bodies stream through byte for byte', async (t) => {
  const h = await harness(t)
  const big = Buffer.alloc(8 * 1024 * 1024, 'x')
  h.setHandler((req, res) => {
    res.writeHead(200, {'content-type': 'application/octet-stream'})
    res.end(h.received.at(-1)!.body)
  })
  const res = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'text/csv'}, body: big})
  t.equal(res.status, 200)
  t.ok(Buffer.from(await res.arrayBuffer()).equals(big))
  t.equal(h.received.at(-1)!.body.length, big.length)
})

t.test('an empty POST body reaches the scorer as an empty body', async (t) => {
  const h = await harness(t)
  const res = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: ''})
  t.equal(res.status, 200)
  t.equal(h.received.at(-1)!.body.length, 0)
  t.equal(h.received.at(-1)!.method, 'POST')
})

t.test('hop-by-hop headers are not forwarded', async (t) => {
  const h = await harness(t)
  h.setHandler((_req, res) => {
    res.writeHead(200, {'content-type': 'application/json', 'keep-alive': 'timeout=99'})
    res.end('{}')
  })
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${h.url}/x`, {method: 'GET', headers: {connection: 'keep-alive', te: 'trailers', 'proxy-authorization': 'secret'}}, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
      t.not(res.headers['keep-alive'], 'timeout=99')
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(status, 200)
  const seen = h.received.at(-1)!.headers
  t.equal(seen.te, undefined)
  t.equal(seen['proxy-authorization'], undefined)
})

t.test("a scorer that does not answer in time gets MLflow's 504 from the proxy", async (t) => {
  const h = await harness(t, 300)
  let upstreamSawClose = false
  h.setHandler((req) => {
    req.socket.on('close', () => {
      upstreamSawClose = true
    })
  })
  const res = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'})
  t.equal(res.status, 504)
  t.equal(res.headers.get('content-type'), 'application/json')
  t.equal(await res.text(), 'Request processing time exceeded limit')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(upstreamSawClose, 'the abandoned upstream request is aborted')
})

t.test('a scorer that dies mid-request gives a 502 envelope at once, never a hang', async (t) => {
  const h = await harness(t, 10_000)
  h.setHandler((req) => req.socket.destroy())
  const res = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'})
  t.equal(res.status, 502)
  t.equal(res.headers.get('content-type'), 'application/json')
  const body = JSON.parse(await res.text())
  t.equal(body.error_code, 'INTERNAL_ERROR')
  t.match(body.message, /^The model scoring process failed while handling the request/)
})

t.test('a kept-alive connection the scorer dropped is replayed on a fresh one (uvicorn after a 500)', async (t) => {
  const h = await harness(t, 10_000)
  // Like uvicorn after its own 500: answer without `connection: close`, then drop the connection the
  // next time it is used.
  const answered = new WeakSet<object>()
  h.setHandler((req, res) => {
    if (answered.has(req.socket)) {
      req.socket.destroy()
      return
    }

    answered.add(req.socket)
    res.writeHead(500, {'content-type': 'text/plain; charset=utf-8'})
    res.end('Internal Server Error')
  })
  const post = (body: string) =>
    fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body})
  const first = await post('{"first": 1}')
  t.equal(first.status, 500)
  await first.text()
  const second = await post('{"second": 2}')
  t.equal(second.status, 500, 'answered on a fresh connection, not a 502')
  t.equal(await second.text(), 'Internal Server Error')
  t.same(
    h.received.map((r) => r.body.toString()),
    ['{"first": 1}', '{"second": 2}', '{"second": 2}'],
    'the second request was sent again, with the same body',
  )
})

t.test('a client that goes away aborts the upstream request', async (t) => {
  const h = await harness(t, 10_000)
  let upstreamSawClose = false
  h.setHandler((req) => {
    req.socket.on('close', () => {
      upstreamSawClose = true
    })
  })
  const abort = new AbortController()
  const pending = fetch(`${h.url}/slow`, {signal: abort.signal}).catch((error: Error) => error)
  await new Promise((resolve) => setTimeout(resolve, 100))
  abort.abort()
  t.type(await pending, Error)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(upstreamSawClose)
})

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
  const other = new ProxyServer(createProxyApp({upstream: () => undefined, state: () => 'starting', timeoutMs: 1}))
  await t.rejects(other.listen('127.0.0.1', port), {code: 'LISTEN_FAILED', exitCode: 30, message: `Port ${port} on 127.0.0.1 is already in use.`})
})
