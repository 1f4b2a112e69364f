// The Hono app in front of the scorer: a pure value built from its dependencies.
import type {HttpBindings} from '@hono/node-server'
import {RESPONSE_ALREADY_SENT} from '@hono/node-server/utils/response'
import {Hono} from 'hono'
import type {Dispatcher} from 'undici'

import {forward, type ForwardOutcome} from './forward.js'
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

export function createProxyApp(deps: ProxyDeps): Hono<{Bindings: HttpBindings}> {
  const app = new Hono<{Bindings: HttpBindings}>()

  // Until the scorer answered its own /ping, and while draining, every route answers 503. Once ready,
  // every route (/ping, /health, /version, /invocations, unknown ones) is the scorer's to answer.
  app.all('*', async (c) => {
    const state = deps.state()
    const upstream = deps.upstream()
    if (state !== 'ready' || upstream === undefined) return toWebResponse(notReadyResponse(state))

    const outcome = await forward(upstream, c.env.incoming, c.env.outgoing, {timeoutMs: deps.timeoutMs})
    deps.onForwarded?.(outcome)
    return RESPONSE_ALREADY_SENT
  })

  return app
}
