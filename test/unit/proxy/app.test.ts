// The proxy's handler through a real server: X-MLServe-Model-Version names the scorer's version that
// answered, else the serving one.
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {Pool, fetch} from 'undici'

import {createProxyHandler, type ServerState} from '../../../src/proxy/app.js'
import {ProxyServer} from '../../../src/proxy/server.js'

t.test('X-MLServe-Model-Version: the version of the scorer that answered, else the serving one', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-header-'))
  const socketPath = path.join(dir, 'upstream.sock')
  const upstream = createServer((_req, res) => res.end('{"predictions": [3]}'))
  await new Promise<void>((resolve) => upstream.listen(socketPath, resolve))
  const pool = new Pool('http://localhost', {socketPath})
  let state: ServerState = 'ready'
  // A request still lent to the replaced generation's scorer while the new generation serves.
  const proxy = new ProxyServer(
    createProxyHandler({
      upstreams: {acquire: () => ({dispatcher: pool, slot: 0, modelVersion: '6'}), release() {}},
      state: () => state,
      timeoutMs: 5000,
      modelVersion: () => '7',
    }),
  )
  const port = await proxy.listen('127.0.0.1', 0)
  t.teardown(async () => {
    await proxy.close(0)
    await pool.close()
    await new Promise((resolve) => upstream.close(resolve))
    rmSync(dir, {recursive: true, force: true})
  })

  const answered = await fetch(`http://127.0.0.1:${port}/invocations`, {
    method: 'POST',
    body: '{}',
    headers: {'content-type': 'application/json'},
  })
  t.equal(await answered.text(), '{"predictions": [3]}')
  t.equal(answered.headers.get('x-mlserve-model-version'), '6', "the scorer's version")
  state = 'starting'
  const refused = await fetch(`http://127.0.0.1:${port}/invocations`, {method: 'POST', body: '{}'})
  await refused.arrayBuffer()
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('x-mlserve-model-version'), '7', "mlserve's own answer: the serving version")
})
