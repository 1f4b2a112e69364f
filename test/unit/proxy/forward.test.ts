// Forwarding's admission and the request the scorer gets, against a stand-in upstream on a Unix socket:
// slow and stalled uploads never hold a scorer, bodies beyond the memory budget wait in a file, Expect:
// 100-continue, and the client's Host and X-Forwarded-* reach the scorer.
import {readdir} from 'node:fs/promises'
import {connect} from 'node:net'

import t from 'tap'

import {leasingHarness as harness, raw} from '../../helpers/proxy.js'

const sleep = (ms: number) =>
  new Promise((resolve) => {
    setTimeout(resolve, ms)
  })

t.test("a stalled large upload takes no scorer, and its deadline is not the scorer's fault", async (t) => {
  const h = await harness(t, {timeoutMs: 3000})
  const client = await raw(h.port)
  // More than the 16 MiB that used to be buffered before a scorer was leased, then nothing.
  const size = 34 * 1024 * 1024
  client.socket.write(`POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: ${size}\r\n\r\n`)
  client.socket.write(Buffer.alloc(size / 2, 'a'))
  // Well past the request timeout: the half-sent body is still the client's to finish.
  await sleep(3500)
  t.equal(h.leases.acquired, 0, 'no scorer was leased while the body was still arriving')
  t.same(h.leases.released, [], 'and no timeout was charged to one')
  t.equal(h.received.length, 0)

  // Another client is served meanwhile.
  const other = await fetch(`${h.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'})
  t.equal(other.status, 200)
  t.same(h.leases.released, ['ok'])

  // The stalled client finishes: its request is forwarded whole, with its own deadline from now.
  client.socket.write(Buffer.alloc(size / 2, 'b'))
  await client.waitFor(/\{"bytes": \d+\}/)
  t.match(client.text(), /^HTTP\/1\.1 200 /)
  t.match(client.text(), `{"bytes": ${size}}`)
  t.equal(h.received.at(-1)!.body.length, size)
  t.ok(
    h.received
      .at(-1)!
      .body.subarray(size / 2 - 1, size / 2 + 1)
      .equals(Buffer.from('ab')),
  )
  client.socket.destroy()
})

t.test('a client too slow to read its answer past the deadline is not charged to the scorer', async (t) => {
  const h = await harness(t, {timeoutMs: 1000})
  // A socket nobody reads from: the answer backs up in the kernel and in the proxy.
  const socket = connect(h.port, '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => socket.destroy())
  socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
  for (let i = 0; i < 1000 && h.leases.released.length === 0; i++) await sleep(20) // eslint-disable-line no-await-in-loop
  t.equal(h.leases.acquired, 1)
  t.same(h.leases.released, ['client-timeout'], 'the scorer had answered; the client was not reading')
})

t.test('a body beyond the memory budget waits in a file, which is removed once it is sent', async (t) => {
  const h = await harness(t, {bodyBudgetBytes: 1024 * 1024})
  const size = 3 * 1024 * 1024
  const client = await raw(h.port)
  client.socket.write(`POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n`)
  const half = Buffer.alloc(size / 2, 'c')
  client.socket.write(`${half.length.toString(16)}\r\n`)
  client.socket.write(half)
  client.socket.write('\r\n')
  let files: string[] = []
  for (let i = 0; i < 100 && files.length === 0; i++) {
    // eslint-disable-next-line no-await-in-loop
    await sleep(20)
    // eslint-disable-next-line no-await-in-loop
    files = await readdir(h.spillDir)
  }

  t.equal(files.length, 1, 'the part received so far is in a file, not in memory')
  client.socket.write(`${half.length.toString(16)}\r\n`)
  client.socket.write(half)
  client.socket.write('\r\n0\r\n\r\n')
  await client.waitFor(/\{"bytes": \d+\}/)
  t.match(client.text(), `{"bytes": ${size}}`)
  t.equal(h.received.at(-1)!.headers['content-length'], String(size), 'a chunked body goes on with its length')
  await sleep(50)
  t.same(await readdir(h.spillDir), [], 'the file is gone')
  client.socket.destroy()
})

t.test("the scorer sees the client's Host, and X-Forwarded-For, -Proto and -Host", async (t) => {
  const h = await harness(t)
  const res = await fetch(`${h.url}/invocations/?a=1`, {
    method: 'POST',
    headers: {'content-type': 'application/json', 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'https'},
    body: '{}',
  })
  t.equal(res.status, 200)
  const {headers} = h.received.at(-1)!
  t.equal(headers.host, `127.0.0.1:${h.port}`)
  t.equal(headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1', "the client's address is appended")
  t.equal(headers['x-forwarded-proto'], 'http', 'the proxy says what the client actually spoke')
  t.equal(headers['x-forwarded-host'], `127.0.0.1:${h.port}`)
})

t.test('Expect: 100-continue: a declared length over the limit gets its 413 at once, no 100 Continue', async (t) => {
  const h = await harness(t, {maxBodyBytes: 1000})
  const client = await raw(h.port)
  client.socket.write('POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n')
  await client.waitFor(/\r\n\r\n\{[^}]*\}/)
  t.match(client.text(), /^HTTP\/1\.1 413 Payload Too Large\r\n/, 'the first thing the client hears is the 413')
  t.notMatch(client.text(), /100 Continue/)
  t.equal(h.leases.acquired, 0)
  client.socket.destroy()
})

t.test('Expect: 100-continue within the limit: 100 Continue, then the body is forwarded', async (t) => {
  const h = await harness(t, {maxBodyBytes: 1000})
  const client = await raw(h.port)
  client.socket.write('POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n')
  await client.waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/)
  client.socket.write('a,b')
  await client.waitFor(/\{"bytes": 3\}/)
  t.match(client.text(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
  t.equal(h.received.at(-1)!.body.toString(), 'a,b')
  client.socket.destroy()
})
