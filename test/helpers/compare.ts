// Sends the same requests to the reference `mlflow models serve` and to `mlserve serve` on one model and
// asserts the answers match (status, media type, Allow header, body bytes), plus absolute expectations.
import type {Test} from 'tap'
import {Agent, fetch} from 'undici'

import {startMlflowServe, startMlserve, type Server} from './servers.js'
import type {ToolchainName} from './toolchain.js'

export interface Case {
  readonly name: string
  readonly method?: string
  readonly path?: string
  /** Sent as given; no content-type is added when absent. */
  readonly contentType?: string
  readonly body?: string
  readonly expect?: {status: number; body?: string | RegExp; contentType?: string}
}

interface Answer {
  status: number
  contentType: string | null
  allow: string | null
  body: string
}

// A connection per request: uvicorn closes a connection after its own 500, and a reused socket would
// then fail in the test client, which is not what is under test.
const freshConnections = new Agent({pipelining: 0})

export async function exchange(server: Pick<Server, 'url'>, c: Case): Promise<Answer> {
  const method = c.method ?? 'POST'
  const res = await fetch(server.url + (c.path ?? '/invocations'), {
    dispatcher: freshConnections,
    method,
    headers: c.contentType === undefined ? {} : {'content-type': c.contentType},
    // A Buffer body makes fetch add no content-type of its own.
    body: method === 'GET' || method === 'HEAD' ? undefined : Buffer.from(c.body ?? ''),
  })
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    allow: res.headers.get('allow'),
    body: await res.text(),
  }
}

export const JSON_TYPE = 'application/json'
export const split = (columns: string[], data: unknown[][]) => JSON.stringify({dataframe_split: {columns, data}})
export const PROTOCOL_NOTE = /IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2\.0/

/** Serves modelDir with both servers and runs every case against both. */
export async function compareModel(
  t: Test,
  modelDir: string,
  cases: readonly Case[],
  /** serveArgs go to both servers, mlserveArgs to mlserve only (e.g. --preload). */
  options: {serveArgs?: readonly string[]; mlserveArgs?: readonly string[]; toolchain?: ToolchainName} = {},
) {
  const {serveArgs = [], mlserveArgs = [], toolchain = 'main'} = options
  const model = modelDir.split('/').at(-1)
  const [reference, ours] = await Promise.all([
    startMlflowServe(modelDir, serveArgs, toolchain),
    startMlserve(['-m', modelDir, ...serveArgs, ...mlserveArgs], {toolchain}),
  ])
  t.teardown(async () => {
    await Promise.all([reference.stop('SIGTERM'), ours.stop('SIGINT')])
  })
  for (const c of cases) {
    // eslint-disable-next-line no-await-in-loop
    const [expected, actual] = await Promise.all([exchange(reference, c), exchange(ours, c)])
    t.same(actual, expected, `${model}: ${c.name}: same answer as mlflow models serve`)
    if (c.expect) {
      t.equal(actual.status, c.expect.status, `${model}: ${c.name}: status`)
      if (c.expect.body !== undefined) t.match(actual.body, c.expect.body, `${model}: ${c.name}: body`)
      if (c.expect.contentType !== undefined) t.equal(actual.contentType, c.expect.contentType, `${model}: ${c.name}: media type`)
    }
  }
}
