// Proxies under test: the real handler and server in front of a stand-in scorer on a Unix socket (no
// Python), and a raw TCP client for what fetch cannot send.
import {mkdtemp} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import type {Test} from 'tap'
import {Pool} from 'undici'

import {createProxyHandler, type ProxyDeps, type ServerState} from '../../src/proxy/app.js'
import {singleUpstream} from '../../src/proxy/forward.js'
import {ProxyServer} from '../../src/proxy/server.js'
import type {Acquired, ExchangeOutcome, Lease, Upstreams} from '../../src/upstream.js'

export type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface Harness {
  url: string
  received: Array<{method?: string; url?: string; headers: IncomingMessage['headers']; body: Buffer}>
  setState(state: ServerState): void
  proxy: ProxyServer
  setHandler(handler: Handler): void
  pool: Pool
  /** How each forwarded exchange ended (its request record's outcome), in order. */
  outcomes: ExchangeOutcome[]
  /** Resolves once `count` forwarded exchanges have ended in all. */
  outcomesAfter(count: number): Promise<ExchangeOutcome[]>
}

export async function harness(t: Test, timeoutMs = 2000, poolOptions: Pool.Options = {}): Promise<Harness> {
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
  const pool = new Pool('http://localhost', {socketPath, keepAliveTimeout: 4000, ...poolOptions})
  let state: ServerState = 'ready'
  const outcomes: ExchangeOutcome[] = []
  const proxy = new ProxyServer(createProxyHandler({upstreams: singleUpstream(pool), state: () => state, timeoutMs}), {
    onResponse(record) {
      if (record.outcome) outcomes.push(record.outcome)
    },
  })
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
    pool,
    outcomes,
    async outcomesAfter(count) {
      while (outcomes.length < count) await new Promise((resolve) => setTimeout(resolve, 10)) // eslint-disable-line no-await-in-loop
      return outcomes
    },
    setState: (next) => {
      state = next
    },
    setHandler: (next) => {
      handler = next
    },
  }
}

export interface Received {
  url?: string
  headers: IncomingMessage['headers']
  body: Buffer
}

/** A stand-in scorer behind the real handler and server; the upstreams count leases and releases. */
export async function leasingHarness(t: Test, deps: Partial<ProxyDeps> = {}) {
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
export async function raw(port: number) {
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
