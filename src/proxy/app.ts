// The proxy's request handler: mlserve's own routes in a pure Hono app, every scorer route forwarded.
import type {IncomingMessage, ServerResponse} from 'node:http'

import {getRequestListener} from '@hono/node-server'
import {Hono} from 'hono'

import {MODEL_VERSION_HEADER, type Upstreams} from '../upstream.js'
import {Batcher, batching, type BatchOptions} from './batch.js'
import {MEMORY_BODY_BUDGET, MemoryBudget} from './body.js'
import {forward, type ForwardOptions} from './forward.js'
import {composeLending} from './lending.js'
import {StreamGate} from './streams.js'
import {badTargetResponse, notReadyResponse, sendPlain, toWebResponse, type PlainResponse} from './responses.js'
import type {RequestHandler, RequestRecord} from './server.js'

export type ServerState = 'starting' | 'ready' | 'stopping'

/** One of mlserve's own routes: a fixed answer, or a function making the current one. */
export type OwnRoute = PlainResponse | (() => PlainResponse | Promise<PlainResponse>)

export interface ProxyDeps {
  /** Where requests go once the server is ready. */
  readonly upstreams: Upstreams
  readonly state: () => ServerState
  readonly timeoutMs: number
  /** Request bodies above this many bytes get a 413 envelope (default: no limit). */
  readonly maxBodyBytes?: number
  /**
   * mlserve's own GET routes (/livez, /readyz, /metrics), answered in every state and never forwarded.
   * Each is called per request, with the request's query string ('' or '?...'), for its current response.
   */
  readonly operational?: Readonly<Record<string, (search: string) => PlainResponse>>
  /**
   * Routes the scorer lacks, answered by mlserve once ready (e.g. /version for the R scorer): an answer,
   * or what makes it per request (what follows a reload, such as /openapi.model.json).
   */
  readonly ownRoutes?: Readonly<Record<string, OwnRoute>>
  /** Paths forwarded to another path of the scorer (e.g. /health to /ping). */
  readonly rewrites?: Readonly<Record<string, string>>
  /** Request bodies held in memory by all requests together (default MEMORY_BODY_BUDGET); the rest spill to files. */
  readonly bodyBudgetBytes?: number
  /** Where spilled request bodies go (default: the system's temporary directory). */
  readonly spillDir?: string
  /** --batch: merge queued /invocations requests (undefined: never). */
  readonly batch?: BatchOptions
  /** --max-streams: requests asking for a stream beyond this many running get 503 (undefined or 0: no bound). */
  readonly maxStreams?: number
  /**
   * The version the serving generation serves (X-MLServe-Model-Version on every response; a forwarded
   * one says the version of the scorer that answered it). undefined: no header.
   */
  readonly modelVersion?: () => string | undefined
}

/**
 * mlserve's own answers, a pure value: the operational routes in every state, the 503 before ready (and
 * for /ping, /health while draining), and the routes the scorer lacks. Scorer routes never get here once ready.
 */
export function createProxyApp(deps: ProxyDeps): Hono {
  const app = new Hono()
  for (const [route, respond] of Object.entries(deps.operational ?? {})) {
    app.get(route, (c) => toWebResponse(respond(new URL(c.req.url).search)))
  }

  app.all('*', async (c) => {
    const state = deps.state()
    const own = state === 'ready' ? deps.ownRoutes?.[c.req.path] : undefined
    return toWebResponse((typeof own === 'function' ? await own() : own) ?? notReadyResponse(state))
  })
  return app
}

/**
 * The server's handler: a request target that is not a path gets a 400; once ready, every route but
 * mlserve's own is forwarded to a scorer from the raw Node request; the rest goes to the Hono app.
 */
export function createProxyHandler(deps: ProxyDeps): RequestHandler {
  const viaHono = getRequestListener(createProxyApp(deps).fetch, {overrideGlobalObjects: false})
  const options: ForwardOptions = {
    timeoutMs: deps.timeoutMs,
    maxBodyBytes: deps.maxBodyBytes,
    rewrites: deps.rewrites ? new Map(Object.entries(deps.rewrites)) : undefined,
    bodyBudget: new MemoryBudget(deps.bodyBudgetBytes ?? MEMORY_BODY_BUDGET),
    spillDir: deps.spillDir,
    lend: composeLending(deps.batch ? [batching(new Batcher(deps.batch))] : []),
    streams: deps.maxStreams ? new StreamGate(deps.maxStreams) : undefined,
  }
  /** Paths that are never forwarded. */
  const local = new Set([...Object.keys(deps.operational ?? {}), ...Object.keys(deps.ownRoutes ?? {})])

  return (req: IncomingMessage, res: ServerResponse, record: RequestRecord) => {
    const url = req.url ?? '/'
    const version = deps.modelVersion?.()
    if (version !== undefined) res.setHeader(MODEL_VERSION_HEADER, version)
    if (!url.startsWith('/')) {
      // `OPTIONS *` and absolute targets: no scorer route can answer them; the body (if any) is dropped.
      req.resume()
      sendPlain(res, badTargetResponse(url))
      return
    }

    const path = pathOf(url)
    const state = deps.state()
    // While draining ('stopping'), a request that still comes on an open connection is served (the
    // scorers stop only after the proxy has closed), so no client fails mid-rollout; the health
    // checks (/ping, /health) answer 503 then, as /readyz does.
    const serving = state === 'ready' || (state === 'stopping' && !DRAIN_HEALTH_ROUTES.has(path))
    if (serving && !local.has(path)) {
      void forward(deps.upstreams, req, res, record, options)
      return
    }

    if (state !== 'ready' && !deps.operational?.[path]) record.refusal = 'not_ready'
    void viaHono(req, res)
  }
}

/** mlflow's health routes: 503 while draining, so load balancers take the server out. */
const DRAIN_HEALTH_ROUTES = new Set(['/ping', '/health'])

/** The path of a request target, without its query. */
export function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query < 0 ? url : url.slice(0, query)
}
