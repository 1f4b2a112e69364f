// The Hono app in front of the scorers: a pure value built from its dependencies, plus its fast path.
import type {IncomingMessage, ServerResponse} from 'node:http'

import type {HttpBindings} from '@hono/node-server'
import {RESPONSE_ALREADY_SENT} from '@hono/node-server/utils/response'
import {Hono} from 'hono'

import {forward, type ForwardOptions, type ForwardOutcome, type Upstreams} from './forward.js'
import {notReadyResponse, toWebResponse, type PlainResponse} from './responses.js'

export type ServerState = 'starting' | 'ready' | 'stopping'

export interface ProxyDeps {
  /** Where requests go once the server is ready. */
  readonly upstreams: Upstreams
  readonly state: () => ServerState
  readonly timeoutMs: number
  /** Request bodies above this many bytes get a 413 envelope (default: no limit). */
  readonly maxBodyBytes?: number
  /** Called after every forwarded exchange. */
  readonly onForwarded?: (outcome: ForwardOutcome) => void
  /**
   * mlserve's own GET routes (/livez, /readyz, /metrics), answered in every state and never forwarded.
   * Each is called per request for its current response.
   */
  readonly operational?: Readonly<Record<string, () => PlainResponse>>
  /** Routes the scorer lacks, answered by mlserve once ready (e.g. /version for the R scorer). */
  readonly ownRoutes?: Readonly<Record<string, PlainResponse>>
  /** Paths forwarded to another path of the scorer (e.g. /health to /ping). */
  readonly rewrites?: Readonly<Record<string, string>>
}

/**
 * Takes a raw Node request before Hono sees it: forwards it to the scorer and returns true when the
 * server is ready and the route is the scorer's, returns false (and touches nothing) otherwise.
 */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean

/** The app, carrying the fast path that ProxyServer installs in front of it. */
export type ProxyApp = Hono<{Bindings: HttpBindings}> & {readonly fastPath: FastPath}

export function createProxyApp(deps: ProxyDeps): ProxyApp {
  const app = new Hono<{Bindings: HttpBindings}>()
  const options: ForwardOptions = {
    timeoutMs: deps.timeoutMs,
    maxBodyBytes: deps.maxBodyBytes,
    rewrites: deps.rewrites ? new Map(Object.entries(deps.rewrites)) : undefined,
  }
  /** Paths that never take the fast path. */
  const local = new Set([...Object.keys(deps.operational ?? {}), ...Object.keys(deps.ownRoutes ?? {})])

  for (const [route, respond] of Object.entries(deps.operational ?? {})) {
    app.get(route, () => toWebResponse(respond()))
  }

  // Until the first scorer is ready (warm-up included), and while draining, every other route answers
  // 503. Once ready, every route (/ping, /health, /version, /invocations, unknown ones) is the scorer's
  // to answer; the server hands those to the fast path, so this route forwards only what reaches Hono
  // anyway (and answers mlserve's own routes for scorers that lack them).
  app.all('*', async (c) => {
    const state = deps.state()
    if (state !== 'ready') return toWebResponse(notReadyResponse(state))
    const own = deps.ownRoutes?.[c.req.path]
    if (own) return toWebResponse(own)
    const outcome = await forward(deps.upstreams, c.env.incoming, c.env.outgoing, options)
    deps.onForwarded?.(outcome)
    return RESPONSE_ALREADY_SENT
  })

  const fastPath: FastPath = (req, res) => {
    if (deps.state() !== 'ready') return false
    if (local.size > 0 && local.has(pathOf(req.url ?? '/'))) return false
    const forwarding = forward(deps.upstreams, req, res, options)
    if (deps.onForwarded) forwarding.then(deps.onForwarded).catch(reportHookError)
    return true
  }

  return Object.assign(app, {fastPath})
}

/** The path of a request target, without its query. */
export function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query < 0 ? url : url.slice(0, query)
}

/** What Hono does with an error thrown by a handler (here, by onForwarded): log it and carry on. */
function reportHookError(error: unknown): void {
  console.error(error)
}
