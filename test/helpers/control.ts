// Talks to the `control` fixture model, which answers an action (e.g. "pid": the scorer's own pid), so each
// response tells which scorer process served it.
import {Agent, fetch} from 'undici'

import type {Server} from './servers.js'

/** One dispatcher without pipelining, so every request is its own exchange; closed when the test file ends. */
export const controlClient = new Agent({pipelining: 0})

/** POST /invocations with the control model's action; never throws (a failure is status 0). */
export async function act(server: Server, action: string, headers: Record<string, string> = {}) {
  try {
    const res = await fetch(`${server.url}/invocations`, {
      dispatcher: controlClient,
      method: 'POST',
      headers: {'content-type': 'application/json', ...headers},
      body: JSON.stringify({dataframe_split: {columns: ['action'], data: [[action]]}}),
      // A hung request fails the test instead of hanging it (the scorer side has no limit this long).
      signal: AbortSignal.timeout(60_000),
    })
    const body = await res.text()
    const pid = res.status === 200 ? (JSON.parse(body) as {predictions: number[]}).predictions[0]! : undefined
    return {status: res.status, body, pid, headers: res.headers}
  } catch (error) {
    return {status: 0, body: String(error), pid: undefined, headers: new Headers()}
  }
}

/** Pids of the scorers that are serving now: asks until `count` distinct ones answered. */
export async function servingPids(server: Server, count: number): Promise<Set<number>> {
  const pids = new Set<number>()
  for (let i = 0; i < 50 && pids.size < count; i++) {
    // eslint-disable-next-line no-await-in-loop
    const {pid} = await act(server, 'pid')
    if (pid !== undefined) pids.add(pid)
  }

  return pids
}

/** `clients` loops sending the action "pid" until stop(): every status, in order (0: no answer). */
export function loadLoop(server: Server, clients: number) {
  let stopped = false
  const statuses: number[] = []
  const loops = Array.from({length: clients}, async () => {
    while (!stopped) {
      // eslint-disable-next-line no-await-in-loop
      const {status} = await act(server, 'pid')
      statuses.push(status)
    }
  })
  return {
    statuses,
    async stop() {
      stopped = true
      await Promise.all(loops)
    },
  }
}
