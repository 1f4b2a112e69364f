// The proxy's edges against a stand-in upstream on a Unix socket: slow and stalled uploads never hold a
// scorer, bodies beyond the memory budget wait in a file, the client's Host reaches the scorer, and
// request targets and methods no scorer can answer get their answer from the proxy.
import {mkdtemp, readdir} from 'node:fs/promises'
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'
import {Pool} from 'undici'

import {createProxyHandler, type ProxyDeps} from '../../../src/proxy/app.js'
import {ProxyServer} from '../../../src/proxy/server.js'
import type {Acquired, ExchangeOutcome, Lease, Upstreams} from '../../../src/upstream.js'

interface Received {
  url?: string
  headers: IncomingMessage['headers']
  body: Buffer
}

/** A stand-in scorer behind the real handler and server; the upstreams count leases and releases. */
async function harness(t: Test, deps: Partial<ProxyDeps> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'mlserve-hardening-'))
  const socketPath = path.join(dir, 'upstream.sock')
  const received: Received[] = []
  const upstream = createServer((req, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({url: req.url, headers: req.headers, body: Buffer.concat(chunks)})
      if (req.url === '/big') {
        res.writeHead(200, {'content-type': 'application/octet-stream'})
        res.end(Buffer.alloc(64 * 1024 * 1024))
        return
      }

      res.writeHead(200, {'content-type': 'application/json'})
      res.end(`{"bytes": ${Buffer.concat(chunks).length}}`)
    })
  })
  await new Promise<void>((resolve) => upstream.listen(socketPath, resolve))
  const pool = new Pool('http://localhost', {socketPath})
  const lease: Lease = {dispatcher: pool, slot: 0}
  const leases = {acquired: 0, released: [] as ExchangeOutcome[]}
  const upstreams: Upstreams = {
    acquire(): Acquired {
      leases.acquired++
      return lease
    },
    release(_lease, outcome) {
      leases.released.push(outcome)
    },
  }
  const spillDir = path.join(dir, 'spill')
  await import('node:fs/promises').then(async (fs) => fs.mkdir(spillDir))
  const proxy = new ProxyServer(createProxyHandler({upstreams, state: () => 'ready', timeoutMs: 10_000, spillDir, ...deps}), {
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
  })
  const port = await proxy.listen('127.0.0.1', 0)
  t.teardown(async () => {
    await proxy.close(0)
    await pool.destroy()
    upstream.closeAllConnections()
    await new Promise((resolve) => upstream.close(resolve))
  })
  return {port, url: `http://127.0.0.1:${port}`, received, leases, spillDir}
}

/** A raw connection: write what you like, read everything the server sends. */
async function raw(port: number) {
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  let data = ''
  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => resolve())
  })
  socket.on('data', (chunk) => {
    data += chunk.toString('latin1')
  })
  socket.on('error', () => {})
  return {
    socket,
    text: () => data,
    closed,
    /** Waits until the answer so far matches; fails (instead of hanging) if it never does. */
    async waitFor(pattern: RegExp) {
      for (let i = 0; i < 2000 && !pattern.test(data); i++) await new Promise((resolve) => setTimeout(resolve, 10)) // eslint-disable-line no-await-in-loop
      if (!pattern.test(data)) throw new Error(`no ${pattern} in ${JSON.stringify(data.slice(0, 300))}`)
    },
  }
}

const sleep = (ms: number) =>
  new Promise((resolve) => {
    setTimeout(resolve, ms)
  })

t.test("a stalled large upload takes no scorer, and its deadline is not the scorer's fault", async (t) => {
  const h = await harness(t, {timeoutMs: 3000})
  const client = await raw(h.port)
  // More than the 16 MiB that used to be buffered before a scorer was leased, then nothing.
  const size = 34 * 1024 * 1024
  client.socket.write(`POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: ${size}\r\n\r\n`)
  client.socket.write(Buffer.alloc(size / 2, 'a'))
  // Well past the request timeout: the half-sent body is still the client's to finish.
  await sleep(3500)
  t.equal(h.leases.acquired, 0, 'no scorer was leased while the body was still arriving')
  t.same(h.leases.released, [], 'and no timeout was charged to one')
  t.equal(h.received.length, 0)

  // Another client is served meanwhile.
  const other = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'})
  t.equal(other.status, 200)
  t.same(h.leases.released, ['ok'])

  // The stalled client finishes: its request is forwarded whole, with its own deadline from now.
  client.socket.write(Buffer.alloc(size / 2, 'b'))
  await client.waitFor(/\{"bytes": \d+\}/)
  t.match(client.text(), /^HTTP\/1\.1 200 /)
  t.match(client.text(), `{"bytes": ${size}}`)
  t.equal(h.received.at(-1)!.body.length, size)
  t.ok(
    h.received
      .at(-1)!
      .body.subarray(size / 2 - 1, size / 2 + 1)
      .equals(Buffer.from('ab')),
  )
  client.socket.destroy()
})

t.test('a client too slow to read its answer past the deadline is not charged to the scorer', async (t) => {
  const h = await harness(t, {timeoutMs: 1000})
  // A socket nobody reads from: the answer backs up in the kernel and in the proxy.
  const socket = connect(h.port, '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => socket.destroy())
  socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
  for (let i = 0; i < 1000 && h.leases.released.length === 0; i++) await sleep(20) // eslint-disable-line no-await-in-loop
  t.equal(h.leases.acquired, 1)
  t.same(h.leases.released, ['client-timeout'], 'the scorer had answered; the client was not reading')
})

t.test('a body beyond the memory budget waits in a file, which is removed once it is sent', async (t) => {
  const h = await harness(t, {bodyBudgetBytes: 1024 * 1024})
  const size = 3 * 1024 * 1024
  const client = await raw(h.port)
  client.socket.write(`POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n`)
  const half = Buffer.alloc(size / 2, 'c')
  client.socket.write(`${half.length.toString(16)}\r\n`)
  client.socket.write(half)
  client.socket.write('\r\n')
  let files: string[] = []
  for (let i = 0; i < 100 && files.length === 0; i++) {
    // eslint-disable-next-line no-await-in-loop
    await sleep(20)
    // eslint-disable-next-line no-await-in-loop
    files = await readdir(h.spillDir)
  }

  t.equal(files.length, 1, 'the part received so far is in a file, not in memory')
  client.socket.write(`${half.length.toString(16)}\r\n`)
  client.socket.write(half)
  client.socket.write('\r\n0\r\n\r\n')
  await client.waitFor(/\{"bytes": \d+\}/)
  t.match(client.text(), `{"bytes": ${size}}`)
  t.equal(h.received.at(-1)!.headers['content-length'], String(size), 'a chunked body goes on with its length')
  await sleep(50)
  t.same(await readdir(h.spillDir), [], 'the file is gone')
  client.socket.destroy()
})

t.test("the scorer sees the client's Host, and X-Forwarded-For, -Proto and -Host", async (t) => {
  const h = await harness(t)
  const res = await fetch(`${h.url}/invocations/?a=1`, {
    method: 'POST',
    headers: {'content-type': 'application/json', 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'https'},
    body: '{}',
  })
  t.equal(res.status, 200)
  const {headers} = h.received.at(-1)!
  t.equal(headers.host, `127.0.0.1:${h.port}`)
  t.equal(headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1', "the client's address is appended")
  t.equal(headers['x-forwarded-proto'], 'http', 'the proxy says what the client actually spoke')
  t.equal(headers['x-forwarded-host'], `127.0.0.1:${h.port}`)
})

t.test('OPTIONS * gets a 400 envelope from the proxy, without a scorer', async (t) => {
  const h = await harness(t)
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

t.test('CONNECT gets a 405 answer before the connection closes', async (t) => {
  const h = await harness(t)
  const client = await raw(h.port)
  client.socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  await client.closed
  t.match(client.text(), /^HTTP\/1\.1 405 Method Not Allowed\r\n/)
  t.match(client.text(), /"message": "CONNECT is not supported by this server\."/)
  t.equal(h.leases.acquired, 0)
})

t.test('Expect: 100-continue: a declared length over the limit gets its 413 at once, no 100 Continue', async (t) => {
  const h = await harness(t, {maxBodyBytes: 1000})
  const client = await raw(h.port)
  client.socket.write('POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n')
  await client.waitFor(/\r\n\r\n\{[^}]*\}/)
  t.match(client.text(), /^HTTP\/1\.1 413 Payload Too Large\r\n/, 'the first thing the client hears is the 413')
  t.notMatch(client.text(), /100 Continue/)
  t.equal(h.leases.acquired, 0)
  client.socket.destroy()
})

t.test('Expect: 100-continue within the limit: 100 Continue, then the body is forwarded', async (t) => {
  const h = await harness(t, {maxBodyBytes: 1000})
  const client = await raw(h.port)
  client.socket.write('POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n')
  await client.waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/)
  client.socket.write('a,b')
  await client.waitFor(/\{"bytes": 3\}/)
  t.match(client.text(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
  t.equal(h.received.at(-1)!.body.toString(), 'a,b')
  client.socket.destroy()
})
