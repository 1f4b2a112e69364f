// The routes of a multi-model server, without scorers: which model a path goes to and as what path,
// GET /models, the 404s for unknown names and for /invocations without --default-model, /ping.
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'

import t, {type Test} from 'tap'

import {createModelRouter, splitModelPath, splitV2Path} from '../../../src/serve/model-routes.js'
import type {ServedEntry} from '../../../src/serve/models.js'
import type {RequestRecord} from '../../../src/proxy/server.js'

t.test('/models/<name>/<rest>: the name, and the path its own handler sees', async (t) => {
  t.same(splitModelPath('/models/iris/invocations'), {name: 'iris', rest: '/invocations'})
  t.same(splitModelPath('/models/iris'), {name: 'iris', rest: ''})
  t.same(splitModelPath('/models/iris/'), {name: 'iris', rest: '/'})
  t.same(splitModelPath('/models/'), {name: '', rest: ''})
  t.equal(splitModelPath('/invocations'), undefined)
  t.equal(splitModelPath('/modelsx/a'), undefined)
})

/** A stand-in model: answers with the path and query its handler was given. */
function entry(name: string, state: ServedEntry['state'], error?: string): ServedEntry {
  return {
    name,
    state,
    error,
    uri: `./${name}`,
    options: {workers: 1},
    handle: (req: IncomingMessage, res: ServerResponse) => {
      req.resume()
      res.end(`${name} got ${req.url}`)
    },
  } as unknown as ServedEntry
}

async function serve(t: Test, defaultModel?: string) {
  const records: RequestRecord[] = []
  const router = createModelRouter({
    entries: [entry('a', 'loaded'), entry('b', 'failed', 'no such file'), entry('c', 'loading')],
    defaultModel,
    state: () => 'ready',
    operational: {'/livez': () => ({status: 200, contentType: 'application/json', body: '{}'})},
  })
  const server: Server = createServer((req, res) => {
    const record = {req, res} as unknown as RequestRecord
    records.push(record)
    router(req, res, record)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const call = async (path: string, method = 'POST') => {
    const res = await fetch(base + path, {method, body: method === 'POST' ? '{}' : undefined})
    return {status: res.status, body: await res.text()}
  }

  return {call, records}
}

t.test('each model gets its own requests, as the paths its own server has; the record names the model', async (t) => {
  const {call, records} = await serve(t)
  t.same(await call('/models/a/invocations?x=1'), {status: 200, body: 'a got /invocations?x=1'})
  t.match(records.at(-1), {model: 'a', target: '/models/a/invocations?x=1'})
  t.same(await call('/models/a/version', 'GET'), {status: 200, body: 'a got /version'})
  const failed = await call('/models/b/invocations')
  t.equal(failed.status, 503)
  t.equal(failed.body, '{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "The model b failed to load: no such file"}')
  t.equal((await call('/models/c/invocations')).body, 'c got /invocations', 'a loading model answers through its own (not ready) handler')
})

t.test('unknown names, /invocations without a default, GET /models, /ping', async (t) => {
  const {call} = await serve(t)
  t.same(await call('/models/zz/invocations'), {
    status: 404,
    body: '{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No model named \\"zz\\" is served here. Served models: a, b, c."}',
  })
  const none = await call('/invocations')
  t.equal(none.status, 404)
  t.match(none.body, /"ENDPOINT_NOT_FOUND".*POST \/models\/<name>\/invocations, with <name> one of: a, b, c/)
  t.same(await call('/elsewhere', 'GET'), {status: 404, body: '{"detail":"Not Found"}'})
  const list = JSON.parse((await call('/models', 'GET')).body) as {models: Array<{name: string; state: string; error?: string}>}
  t.match(list.models, [
    {name: 'a', state: 'loaded'},
    {name: 'b', state: 'failed', error: 'no such file'},
    {name: 'c', state: 'loading'},
  ])
  t.equal((await call('/models', 'POST')).status, 405)
  t.equal((await call('/ping', 'GET')).status, 200, 'one model is loaded')
  t.equal((await call('/livez', 'GET')).status, 200, "mlserve's own routes")
})

t.test('--default-model: /invocations and other paths go to it', async (t) => {
  const {call} = await serve(t, 'a')
  t.same(await call('/invocations'), {status: 200, body: 'a got /invocations'})
  t.same(await call('/version', 'GET'), {status: 200, body: 'a got /version'})
})

t.test("MLServer's V2 per-model paths go to that model unchanged; an unknown name is a V2 404", async (t) => {
  t.equal(splitV2Path('/v2/models/a/infer'), 'a')
  t.equal(splitV2Path('/v2/models/a'), 'a')
  t.equal(splitV2Path('/v2/models/a/versions/3/ready'), 'a')
  t.equal(splitV2Path('/v2/models/'), undefined)
  t.equal(splitV2Path('/v2/health/ready'), undefined)
  const {call, records} = await serve(t)
  t.same(await call('/v2/models/a/infer'), {status: 200, body: 'a got /v2/models/a/infer'})
  t.same(await call('/v2/models/a/versions/1/ready', 'GET'), {status: 200, body: 'a got /v2/models/a/versions/1/ready'})
  t.equal(records.at(-1)!.model, 'a')
  t.same(await call('/v2/models/nope/infer'), {status: 404, body: '{"error":"Model nope not found. Served models: a, b, c."}'})
  t.equal((await call('/v2/health/ready', 'GET')).status, 200, 'a model is loaded')
})
