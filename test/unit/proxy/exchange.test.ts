// A forwarded exchange against a real upstream HTTP server on a Unix socket (no Python): what passes
// through unchanged, the deadline (504), a dead upstream (502), a stale connection replayed once, a client
// that goes away, the request record's outcome, and server-sent events.
import {request as httpRequest} from 'node:http'
import {connect} from 'node:net'

import t from 'tap'

import {createProxyHandler} from '../../../src/proxy/app.js'
import {singleUpstream} from '../../../src/proxy/forward.js'
import {ProxyServer} from '../../../src/proxy/server.js'
import {harness} from '../../helpers/proxy.js'

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
    const req = httpRequest(
      `${h.url}/x`,
      {method: 'GET', headers: {connection: 'keep-alive', te: 'trailers', 'proxy-authorization': 'secret'}},
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode!))
        t.not(res.headers['keep-alive'], 'timeout=99')
      },
    )
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
  const post = (body: string) => fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body})
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

const post = (url: string, body = '{}', signal?: AbortSignal) =>
  fetch(url, {method: 'POST', headers: {'content-type': 'application/json'}, body, signal})

t.test('the request record says how every forwarded exchange ended', async (t) => {
  const h = await harness(t, 300)
  h.setHandler((req, res) => {
    if (req.url === '/dies') req.socket.destroy()
    else if (req.url === '/ok') res.end('{}')
    // '/slow' and '/gone' never answer.
  })
  t.equal((await post(`${h.url}/ok`)).status, 200)
  t.same(await h.outcomesAfter(1), ['ok'])
  t.equal((await post(`${h.url}/slow`)).status, 504)
  t.same(await h.outcomesAfter(2), ['ok', 'timeout'])
  t.equal((await post(`${h.url}/dies`)).status, 502)
  t.same(await h.outcomesAfter(3), ['ok', 'timeout', 'upstream-error'])
  const abort = new AbortController()
  const gone = post(`${h.url}/gone`, '{}', abort.signal).catch((error: Error) => error)
  await new Promise((resolve) => setTimeout(resolve, 100))
  abort.abort()
  await gone
  t.same(await h.outcomesAfter(4), ['ok', 'timeout', 'upstream-error', 'client-closed'])
})

t.test('a response that outlasts the deadline after its head is cut off, and the scorer aborted', async (t) => {
  const h = await harness(t, 300)
  let upstreamSawClose = false
  h.setHandler((req, res) => {
    req.socket.on('close', () => {
      upstreamSawClose = true
    })
    res.writeHead(200, {'content-type': 'application/json'})
    res.write('{"predictions": [')
  })
  const res = await post(`${h.url}/invocations`)
  t.equal(res.status, 200, 'the head went out before the deadline')
  await t.rejects(res.text(), 'the body never completes: the connection is destroyed')
  t.same(await h.outcomesAfter(1), ['timeout'])
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(upstreamSawClose)
})

t.test('a scorer that dies after its head destroys the client connection', async (t) => {
  const h = await harness(t, 10_000)
  h.setHandler((req, res) => {
    res.writeHead(200, {'content-type': 'application/json'})
    res.write('{"predictions": [', () => setTimeout(() => req.socket.destroy(), 50))
  })
  const res = await post(`${h.url}/invocations`)
  t.equal(res.status, 200)
  await t.rejects(res.text())
  t.same(await h.outcomesAfter(1), ['upstream-error'])
})

t.test("the proxy's deadline decides, not the pool's shorter headersTimeout", async (t) => {
  // undici checks headersTimeout on a coarse (~0.5 s) clock: answer well after it.
  const h = await harness(t, 3000, {headersTimeout: 100})
  h.setHandler((_req, res) => {
    setTimeout(() => res.end('{"late": true}'), 1600)
  })
  const res = await post(`${h.url}/invocations`)
  t.equal(res.status, 200)
  t.equal(await res.text(), '{"late": true}')
})

t.test('a request still queued in the pool when its deadline passes is never sent', async (t) => {
  // One connection, held by a slow request through a patient proxy; the impatient proxy's request
  // waits behind it in the pool and times out there.
  const h = await harness(t, 10_000, {connections: 1})
  const impatient = new ProxyServer(createProxyHandler({upstreams: singleUpstream(h.pool), state: () => 'ready', timeoutMs: 200}))
  const port = await impatient.listen('127.0.0.1', 0)
  t.teardown(() => impatient.close(0))
  h.setHandler((_req, res) => {
    setTimeout(() => res.end('{"slow": true}'), 600)
  })
  const slow = post(`${h.url}/invocations`, '{"slow": 1}')
  await new Promise((resolve) => setTimeout(resolve, 50))
  const queued = await post(`http://127.0.0.1:${port}/invocations`, '{"queued": 1}')
  t.equal(queued.status, 504)
  t.equal(await queued.text(), 'Request processing time exceeded limit')
  t.equal((await slow).status, 200)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(
    h.received.map((r) => r.body.toString()),
    ['{"slow": 1}'],
    'the queued request did not reach the scorer',
  )
})

t.test('a client that goes away while sending its body never reaches the scorer', async (t) => {
  const h = await harness(t, 10_000)
  const {port} = new URL(h.url)
  const socket = connect(Number(port), '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"part')
  await new Promise((resolve) => setTimeout(resolve, 100))
  socket.destroy()
  t.same(await h.outcomesAfter(1), ['client-closed'])
  t.equal(h.received.length, 0)
  t.equal(h.proxy.requestsInFlight, 0)
})

t.test('a client that reads slowly still gets every byte of a large response', async (t) => {
  const h = await harness(t, 10_000)
  const big = Buffer.alloc(32 * 1024 * 1024)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
  h.setHandler((_req, res) => {
    res.writeHead(200, {'content-type': 'application/octet-stream'})
    res.end(big)
  })
  const received = await new Promise<Buffer>((resolve, reject) => {
    const req = httpRequest(`${h.url}/big`, (res) => {
      res.pause()
      const chunks: Buffer[] = []
      setTimeout(() => {
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve(Buffer.concat(chunks)))
        res.resume()
      }, 300)
    })
    req.on('error', reject)
    req.end()
  })
  t.ok(received.equals(big))
  t.same(await h.outcomesAfter(1), ['ok'])
})

t.test('a server-sent events answer passes through as it comes, and -t bounds each gap, not the whole', async (t) => {
  const h = await harness(t, 400)
  let sentLast = 0
  h.setHandler((_req, res) => {
    res.writeHead(200, {'content-type': 'text/event-stream; charset=utf-8'})
    let i = 0
    const tick = setInterval(() => {
      res.write(`data: {"i": ${i}}\n\n`)
      if (++i === 5) {
        clearInterval(tick)
        sentLast = performance.now()
        res.end('data: [DONE]\n\n')
      }
    }, 150)
  })
  const started = performance.now()
  const res = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'})
  const reader = res.body!.getReader()
  let text = ''
  let firstAt = 0
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const {value, done} = await reader.read()
    if (done) break
    firstAt ||= performance.now()
    text += Buffer.from(value).toString()
  }

  t.ok(firstAt < sentLast, 'the first event arrived before the upstream sent its last')
  t.ok(performance.now() - started > 400, 'the whole stream took longer than -t')
  t.equal(text, 'data: {"i": 0}\n\ndata: {"i": 1}\n\ndata: {"i": 2}\n\ndata: {"i": 3}\n\ndata: {"i": 4}\n\ndata: [DONE]\n\n', 'not cut')
  t.same(await h.outcomesAfter(1), ['ok'])

  // A gap longer than -t: the stream ends with an error event and [DONE], and the scorer is blamed.
  h.setHandler((_req, res) => {
    res.writeHead(200, {'content-type': 'text/event-stream; charset=utf-8'})
    res.write('data: {"i": 0}\n\n')
  })
  const stalled = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'})
  t.equal(
    await stalled.text(),
    'data: {"i": 0}\n\ndata: {"error": {"error_code": "DEADLINE_EXCEEDED", "message": "Request processing time exceeded limit"}}\n\ndata: [DONE]\n\n',
  )
  t.same(await h.outcomesAfter(2), ['ok', 'timeout'])
})
