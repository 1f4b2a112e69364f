// The listening HTTP server that owns host:port: binds, names and counts requests, drains on close.
import {Server as NetServer, type AddressInfo, type Socket} from 'node:net'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createServer as createSecureServer, type Server as HttpsServer, type ServerOptions as HttpsOptions} from 'node:https'
import type {SecureContextOptions} from 'node:tls'
import type {Duplex} from 'node:stream'

import {MlserveError} from '../errors.js'
import type {ExchangeOutcome} from '../upstream.js'
import {sleep} from '../util/abort.js'
import {isValidRequestId, newRequestId} from './access-log.js'
import {connectRefusal} from './responses.js'

/**
 * One request as the server saw it: created by the server, filled by the handler (how the exchange
 * ended, which scorer, why it was refused), read by onResponse when the response has closed.
 */
export interface RequestRecord {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** The X-Request-ID of the response: the client's own when it is sane, else a new one. */
  readonly id: string
  /** performance.now() when the request arrived. */
  readonly start: number
  /** The client sent `Expect: 100-continue`: the handler sends 100 Continue once it wants the body. */
  readonly expectsContinue: boolean
  /** How a forwarded exchange ended; unset for a response the proxy wrote itself. */
  outcome?: ExchangeOutcome
  /** The slot of the scorer that was lent to the request. */
  scorer?: number
  /** Why the proxy refused the request itself (a metrics reason, e.g. "queue_full"). */
  refusal?: string
  /** Several models: the model that answered, and the request target as sent when a route rewrote req.url. */
  model?: string
  target?: string
  /** A server-sent events answer: when its first body byte went out (performance.now()), and its bytes. */
  stream?: {firstByteAt?: number; bytes: number}
  /** The short hash of the API key the request presented (front-door.ts), for the access log. */
  key?: string
}

/** Handles one request; the server has set its X-Request-ID already. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse, record: RequestRecord) => void

export interface ProxyServerOptions {
  /** Called once per request when its response has closed (completed or cut off): access logs, metrics. */
  readonly onResponse?: (record: RequestRecord) => void
  /** A client must send its request headers within this many ms (else 408). */
  readonly headersTimeoutMs?: number
  /** A client must send its whole request, body included, within this many ms (else 408). */
  readonly requestTimeoutMs?: number
  /** The front door (front-door.ts): wraps every request's handling (prefix, CORS, API keys). */
  readonly guard?: (handler: RequestHandler) => RequestHandler
  /** Serve HTTPS with these (HTTP/1.1); undefined: plain HTTP. */
  readonly tls?: HttpsOptions
}

/**
 * How long a draining server keeps its idle keep-alive connections open: a client may be sending its
 * next request on one right now, and closing it under that request fails it ("socket hang up").
 * Within this window each such request is still served, with `Connection: close`.
 */
export const DRAIN_LINGER_MS = 1000

export class ProxyServer {
  private readonly server: Server | HttpsServer
  private inFlight = 0
  private draining = false
  private readonly sockets = new Set<Socket>()
  private readonly responses = new Set<ServerResponse>()
  private idleWaiters: Array<() => void> = []
  private readonly onResponse: ((record: RequestRecord) => void) | undefined

  /** Every response carries an X-Request-ID: the client's own when it is sane, else a new one. */
  constructor(plainHandler: RequestHandler, options: ProxyServerOptions = {}) {
    const {onResponse} = options
    this.onResponse = onResponse
    const handler = options.guard ? options.guard(plainHandler) : plainHandler
    const headersTimeout = options.headersTimeoutMs ?? 60_000
    const handle = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
      this.inFlight++
      const sent = req.headers['x-request-id']
      const id = typeof sent === 'string' && isValidRequestId(sent) ? sent : newRequestId()
      res.setHeader('x-request-id', id)
      // While draining, every response ends its connection, so the client reconnects (elsewhere).
      if (this.draining) res.setHeader('connection', 'close')
      this.responses.add(res)
      const record: RequestRecord = {req, res, id, start: onResponse ? performance.now() : 0, expectsContinue}
      try {
        handler(req, res, record)
      } finally {
        // One listener per request, after the handler's own 'close' listener, so the record is complete by then.
        res.once('close', () => this.onResponseClosed(record))
      }
    }

    const serverOptions = {
      headersTimeout,
      requestTimeout: Math.max(options.requestTimeoutMs ?? 300_000, headersTimeout),
      // How often Node checks those two deadlines (default 30 s, too coarse for a 10 s limit).
      connectionsCheckingInterval: Math.min(1000, headersTimeout),
    }
    const onRequest = (req: IncomingMessage, res: ServerResponse) => handle(req, res, false)
    this.server = options.tls ? createSecureServer({...serverOptions, ...options.tls}, onRequest) : createServer(serverOptions, onRequest)
    // Node would answer 100 Continue at once; the handler does it only once it wants the body (a
    // declared length over the limit gets its 413 straight away).
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handle(req, res, true))
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
    // Without a listener Node closes the socket without a word.
    this.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => {})
      socket.end(connectRefusal())
    })
  }

  /** A response closed (completed or cut off): it is done, then observed (access log, metrics). */
  private onResponseClosed(record: RequestRecord): void {
    this.responses.delete(record.res)
    this.inFlight--
    if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake()
    if (!this.onResponse) return
    try {
      this.onResponse(record)
    } catch (error) {
      // The observer (metrics, access log) failing must not take the server down: report it and go on.
      // eslint-disable-next-line no-console
      console.error(error)
    }
  }

  /** Swaps the TLS certificate (SIGHUP): new connections use it, open ones go on undisturbed. */
  setSecureContext(options: SecureContextOptions): void {
    if ('setSecureContext' in this.server) this.server.setSecureContext(options)
  }

  get requestsInFlight(): number {
    return this.inFlight
  }

  /** Binds host:port (0 = any free port) and resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(listenError(error, host, port))
      }

      this.server.once('error', onError)
      this.server.listen(port, host, () => {
        this.server.off('error', onError)
        resolve((this.server.address() as AddressInfo).port)
      })
    })
  }

  /**
   * Stops accepting connections, lets requests in flight finish for up to graceMs, then closes every
   * connection. Resolves with the number of requests that were still running when the grace ran out.
   * Open keep-alive connections are not cut at once: a request a client sends on one while the drain
   * runs is served with Connection: close (see lingerIdle), so clients move to another server unharmed.
   */
  async close(graceMs: number, cutShort?: AbortSignal): Promise<number> {
    const start = performance.now()
    this.draining = true
    for (const res of this.responses) if (!res.headersSent) res.setHeader('connection', 'close')
    // Stop listening only: http's close() would also close the idle keep-alive connections at once.
    const closed = new Promise<void>((resolve) => {
      NetServer.prototype.close.call(this.server, () => resolve())
    })
    await this.lingerIdle(start, graceMs, cutShort)
    this.server.closeIdleConnections()
    if (this.inFlight > 0) {
      const wait = new AbortController()
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        sleep(Math.max(0, graceMs - (performance.now() - start)), AbortSignal.any([wait.signal, ...(cutShort ? [cutShort] : [])])),
      ])
      wait.abort()
    }

    const abandoned = this.inFlight
    this.server.closeAllConnections()
    await closed
    return abandoned
  }

  /**
   * Keeps the open connections while they may still carry a request (answered with Connection: close):
   * until they have all ended, or no request is in flight any more after DRAIN_LINGER_MS, or the grace is over.
   */
  private async lingerIdle(start: number, graceMs: number, cutShort?: AbortSignal): Promise<void> {
    for (;;) {
      const elapsed = performance.now() - start
      if (this.sockets.size === 0 || cutShort?.aborted || elapsed >= graceMs) return
      if (elapsed >= DRAIN_LINGER_MS && this.inFlight === 0) return
      // eslint-disable-next-line no-await-in-loop -- polls until one of the conditions holds
      await sleep(25, cutShort)
    }
  }
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): MlserveError {
  const where = `${host}:${port}`
  const reasons: Record<string, string> = {
    EADDRINUSE: `Port ${port} on ${host} is already in use.`,
    EACCES: `No permission to listen on ${where}.`,
    EADDRNOTAVAIL: `The address ${host} is not available on this machine.`,
    ENOTFOUND: `The host name ${host} cannot be resolved.`,
  }
  return new MlserveError('LISTEN_FAILED', reasons[error.code ?? ''] ?? `Cannot listen on ${where}: ${error.message}`, {
    cause: error,
    suggestions: ['Choose another port with -p/--port (or MLFLOW_PORT), or another address with -h/--host (or MLFLOW_HOST).'],
  })
}
