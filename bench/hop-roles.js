// The processes bench/hop.js measures, one per child: a trivial scorer on a Unix socket, a raw node:net
// pass-through to a scorer's socket, and mlserve's proxy (from a given build) assembled as `mlserve serve`
// assembles it with its default flags, lending the one scorer on that socket.
//
//   node bench/hop-roles.js trivial <socket>
//   node bench/hop-roles.js raw <port> <socket>
//   node bench/hop-roles.js mlserve <port> <socket> <mlserve root>
// Each prints "ready" on stderr once it listens. The access log of `mlserve` goes to stdout, as by default.
import {createServer as createHttpServer} from 'node:http'
import {createServer as createNetServer, connect} from 'node:net'
import {rmSync} from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

const [role, ...args] = process.argv.slice(2)
const ready = () => process.stderr.write('ready\n')

/** Answers every request, its body read, with a fixed JSON prediction: a scorer that costs nothing. */
function trivial(socket) {
  const answer = Buffer.from('{"predictions": [3, 7]}')
  rmSync(socket, {force: true})
  const server = createHttpServer({keepAliveTimeout: 60_000}, (req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, {'content-type': 'application/json', 'content-length': answer.length})
      res.end(answer)
    })
  })
  server.listen(socket, ready)
}

/** Bytes piped both ways, no parsing: one scorer connection per client connection. */
function raw(port, socket) {
  const server = createNetServer({noDelay: true}, (client) => {
    const upstream = connect(socket)
    client.pipe(upstream).pipe(client)
    const close = () => {
      client.destroy()
      upstream.destroy()
    }

    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  })
  server.listen(Number(port), '127.0.0.1', ready)
}

/**
 * mlserve's proxy as `mlserve serve` builds it with its default flags (src/serve/serve.ts, public-port.ts):
 * the Observer (metrics, text access log to stdout), the proxy handler, the ProxyServer; the scorer set is
 * the scheduler over one scorer's undici pool, as a Supervisor lends it. No front door (none by default).
 */
async function mlserve(port, socket, root) {
  const load = (file) => import(pathToFileURL(path.join(root, 'dist', file)).href)
  const [{createProxyHandler}, {Observer}, {ProxyServer}, {Scheduler}, {poolFor}] = await Promise.all([
    load('proxy/app.js'),
    load('proxy/observe.js'),
    load('proxy/server.js'),
    load('scorer/scheduler.js'),
    load('scorer/scorer.js'),
  ])
  const scorer = {dispatcher: poolFor({kind: 'unix', socketPath: socket}), slot: 0, ready: true, outstanding: 0, stuck: 0}
  Object.defineProperty(scorer, 'load', {get: () => scorer.outstanding + scorer.stuck})
  const scheduler = new Scheduler({members: () => [scorer], limit: 16, maxQueue: 256, unavailable: () => 'none'})
  const scorers = {
    acquire: (joinable) => scheduler.acquire(joinable),
    release: (lease) => scheduler.release(lease),
    share: (lease) => scheduler.share(lease),
    cancel: (pending) => scheduler.cancel(pending),
    counts: () => ({starting: 0, ready: 1, retiring: 0}),
    get queueDepth() {
      return scheduler.queueDepth
    },
    get outstanding() {
      return scorer.outstanding
    },
    unhealthy: undefined,
    mode: 'spawn',
  }
  let server
  const observer = new Observer({
    state: () => 'ready',
    scorers: () => scorers,
    model: () => ({uri: 'models/sum', generation: 1}),
    inFlight: () => server?.requestsInFlight ?? 0,
    workers: 1,
    accessLog: process.stdout,
    logFormat: 'text',
    batch: false,
  })
  const handle = createProxyHandler({
    upstreams: scorers,
    state: () => 'ready',
    modelVersion: () => undefined,
    timeoutMs: 60_000,
    maxBodyBytes: undefined,
    operational: observer.routes(),
    ownRoutes: {'/openapi.model.json': {status: 200, contentType: 'application/json', body: '{}'}},
    spillDir: path.dirname(socket),
    maxStreams: undefined,
    batch: undefined,
  })
  server = new ProxyServer(handle, {onResponse: observer.onResponse, headersTimeoutMs: 10_000, requestTimeoutMs: 70_000})
  await server.listen('127.0.0.1', Number(port))
  ready()
}

// A plain exit on SIGTERM, so --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0))
const roles = {trivial, raw, mlserve}
if (!roles[role]) throw new Error(`unknown role ${role}: trivial, raw or mlserve`)
await roles[role](...args)
