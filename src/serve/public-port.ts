// The public port, for one model or several: the proxy server behind the front door, bound before any
// slow work, re-reading keys and certificates on SIGHUP, and drained once whichever exit comes first.
import type {ServeOptions} from '../config.js'
import type {Logger} from '../log.js'
import type {FrontDoor} from '../proxy/front-door.js'
import type {ProxyServer, RequestHandler, RequestRecord} from '../proxy/server.js'
import type {CleanupStack} from '../util/cleanup.js'

export const urlOf = (host: string, port: number, https = false): string =>
  `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`

export interface PublicPort {
  /** The URL clients call, the front door's prefix included. */
  readonly url: string
  readonly server: ProxyServer
  /** Stops accepting connections and lets requests in flight finish (up to --grace-period); runs once. */
  close(): Promise<void>
}

export interface PublicPortIo {
  readonly log: Logger
  /** Aborts on the second signal: the drain gets no grace. */
  readonly force: AbortSignal
  readonly onReloadRequest?: (listener: () => void) => () => void
  /** Called once per answered request (access log, metrics). */
  readonly onResponse: (record: RequestRecord) => void
  /** Called when the drain begins (the server state becomes "stopping"). */
  readonly onClosing: () => void
}

type PortOptions = Pick<ServeOptions, 'host' | 'port' | 'headerTimeoutMs' | 'bodyTimeoutMs' | 'gracePeriodMs'>

/** Binds the port (a port in use fails here, in milliseconds) and defers its drain onto `cleanup`. */
export async function openPublicPort(
  handle: RequestHandler,
  door: FrontDoor | undefined,
  options: PortOptions,
  io: PublicPortIo,
  cleanup: CleanupStack,
): Promise<PublicPort> {
  const {ProxyServer} = await import('../proxy/server.js')
  const server = new ProxyServer(handle, {
    onResponse: io.onResponse,
    headersTimeoutMs: options.headerTimeoutMs,
    requestTimeoutMs: options.headerTimeoutMs + options.bodyTimeoutMs,
    guard: door?.guard,
    tls: door?.tls,
  })
  const port = await server.listen(options.host, options.port)
  const url = urlOf(options.host, port, Boolean(door?.tls)) + (door?.prefix ?? '')
  const stopDoorReload = door && io.onReloadRequest?.(() => void door.reload(server, io.log))
  if (stopDoorReload) cleanup.defer('stop re-reading keys and certificates', async () => stopDoorReload())
  // On a signal the drain runs first (before the scorers stop), on other exits as the last cleanup step.
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      io.onClosing()
      const abandoned = await server.close(io.force.aborted ? 0 : options.gracePeriodMs, io.force)
      if (abandoned > 0) io.log.warn(`${abandoned} request(s) were still running when the grace period ended.`)
    })()
    return closing
  }

  cleanup.defer('close the proxy', close)
  return {url, server, close}
}
