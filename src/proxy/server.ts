// The listening HTTP server that owns host:port: binds, names and counts requests, drains on close.
import type {AddressInfo} from 'node:net'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'

import {getRequestListener} from '@hono/node-server'
import type {Hono} from 'hono'

import {MlserveError} from '../errors.js'
import {sleep} from '../util/abort.js'
import {isValidRequestId, newRequestId} from './access-log.js'
import type {FastPath} from './app.js'

/** One request as the server saw it, handed to onResponse when its response has closed. */
export interface RequestRecord {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly requestId: string
  /** performance.now() when the request arrived. */
  readonly start: number
}

export interface ProxyServerOptions {
  /** Called once per request when its response has closed (completed or cut off): access logs, metrics. */
  readonly onResponse?: (record: RequestRecord) => void
  /** A client must send its request headers within this many ms (else 408). */
  readonly headersTimeoutMs?: number
  /** A client must send its whole request, body included, within this many ms (else 408). */
  readonly requestTimeoutMs?: number
}

export class ProxyServer {
  private readonly server: Server
  private inFlight = 0
  private idleWaiters: Array<() => void> = []

  /**
   * Each request goes to the app's fast path first (when it has one), and to Hono when that declines.
   * Every response carries an X-Request-ID: the client's own when it is sane, else a new one.
   */
  constructor(app: Hono<any> & {readonly fastPath?: FastPath}, options: ProxyServerOptions = {}) {
    const viaHono = getRequestListener(app.fetch)
    const {fastPath} = app
    const {onResponse} = options
    const headersTimeout = options.headersTimeoutMs ?? 60_000
    this.server = createServer(
      {
        headersTimeout,
        requestTimeout: Math.max(options.requestTimeoutMs ?? 300_000, headersTimeout),
        // How often Node checks those two deadlines (default 30 s, too coarse for a 10 s limit).
        connectionsCheckingInterval: Math.min(1000, headersTimeout),
      },
      (req, res) => {
        this.inFlight++
        const sent = req.headers['x-request-id']
        const requestId = typeof sent === 'string' && isValidRequestId(sent) ? sent : newRequestId()
        res.setHeader('x-request-id', requestId)
        const start = onResponse ? performance.now() : 0
        res.once('close', this.onResponseClosed)
        if (fastPath === undefined || !fastPath(req, res)) void viaHono(req, res)
        // After the exchange's own 'close' listener, so the record it keeps is complete by then.
        if (onResponse) {
          const record: RequestRecord = {req, res, requestId, start}
          res.once('close', () => {
            try {
              onResponse(record)
            } catch (error) {
              console.error(error)
            }
          })
        }
      },
    )
  }

  private readonly onResponseClosed = () => {
    this.inFlight--
    if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake()
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
   */
  async close(graceMs: number, cutShort?: AbortSignal): Promise<number> {
    const closed = new Promise<void>((resolve) => {
      this.server.close(() => resolve())
    })
    this.server.closeIdleConnections()
    if (this.inFlight > 0) {
      const wait = new AbortController()
      await Promise.race([new Promise<void>((resolve) => this.idleWaiters.push(resolve)), sleep(graceMs, AbortSignal.any([wait.signal, ...(cutShort ? [cutShort] : [])]))])
      wait.abort()
    }

    const abandoned = this.inFlight
    this.server.closeAllConnections()
    await closed
    return abandoned
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
