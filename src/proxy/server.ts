// The listening HTTP server that owns host:port: binds, counts requests in flight, drains on close.
import type {AddressInfo} from 'node:net'
import {createServer, type Server} from 'node:http'

import {getRequestListener} from '@hono/node-server'
import type {Hono} from 'hono'

import {MlserveError} from '../errors.js'
import {sleep} from '../util/abort.js'
import type {FastPath} from './app.js'

export class ProxyServer {
  private readonly server: Server
  private inFlight = 0
  private idleWaiters: Array<() => void> = []

  /** Each request goes to the app's fast path first (when it has one), and to Hono when that declines. */
  constructor(app: Hono<any> & {readonly fastPath?: FastPath}) {
    const viaHono = getRequestListener(app.fetch)
    const {fastPath} = app
    this.server = createServer((req, res) => {
      this.inFlight++
      res.once('close', this.onResponseClosed)
      if (fastPath === undefined || !fastPath(req, res)) void viaHono(req, res)
    })
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
