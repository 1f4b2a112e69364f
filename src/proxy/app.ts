// The Hono app in front of the scorer: a pure value built from its dependencies, plus its fast path.
import type {IncomingMessage, ServerResponse} from 'node:http'

import type {HttpBindings} from '@hono/node-server'
import {RESPONSE_ALREADY_SENT} from '@hono/node-server/utils/response'
import {Hono} from 'hono'
import type {Dispatcher} from 'undici'

import {forward, type ForwardOptions, type ForwardOutcome} from './forward.js'
import {notReadyResponse, toWebResponse} from './responses.js'

export type ServerState = 'starting' | 'ready' | 'stopping'

export interface ProxyDeps {
  /** The scorer's connection pool; read per request, so it can be swapped. */
  readonly upstream: () => Dispatcher | undefined
  readonly state: () => ServerState
  readonly timeoutMs: number
  /** Called after every forwarded exchange (metrics, access logs). */
  readonly onForwarded?: (outcome: ForwardOutcome) => void
}

/**
 * Takes a raw Node request before Hono sees it: forwards it to the scorer and returns true when the
 * scorer is ready, returns false (and touches nothing) when the app should answer.
 */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean

/** The app, carrying the fast path that ProxyServer installs in front of it. */
export type ProxyApp = Hono<{Bindings: HttpBindings}> & {readonly fastPath: FastPath}

export function createProxyApp(deps: ProxyDeps): ProxyApp {
  const app = new Hono<{Bindings: HttpBindings}>()
  const options: ForwardOptions = {timeoutMs: deps.timeoutMs}

  // Until the scorer answered its own /ping, and while draining, every route answers 503. Once ready,
  // every route (/ping, /health, /version, /invocations, unknown ones) is the scorer's to answer; the
  // server hands those to the fast path, so this route forwards only what reaches Hono anyway.
  app.all('*', async (c) => {
    const state = deps.state()
    const upstream = deps.upstream()
    if (state !== 'ready' || upstream === undefined) return toWebResponse(notReadyResponse(state))

    const outcome = await forward(upstream, c.env.incoming, c.env.outgoing, options)
    deps.onForwarded?.(outcome)
    return RESPONSE_ALREADY_SENT
  })

  const fastPath: FastPath = (req, res) => {
    const upstream = deps.upstream()
    if (deps.state() !== 'ready' || upstream === undefined) return false
    const forwarding = forward(upstream, req, res, options)
    if (deps.onForwarded) forwarding.then(deps.onForwarded).catch(reportHookError)
    return true
  }

  return Object.assign(app, {fastPath})
}

/** What Hono does with an error thrown by a handler (here, by onForwarded): log it and carry on. */
function reportHookError(error: unknown): void {
  console.error(error)
}
