// Draining with keep-alive clients (a rolling update): a request sent on an open keep-alive connection
// after SIGTERM is still served, with Connection: close, instead of the connection being cut under it.
import {connect, type Socket} from 'node:net'

import t from 'tap'
import {Agent, fetch} from 'undici'

import {startMlserve} from '../helpers/servers.js'
import {fixtureModel} from '../helpers/toolchain.js'

const body = (seconds: number) => JSON.stringify({dataframe_split: {columns: ['seconds'], data: [[seconds]]}})

/** One HTTP/1.1 exchange on an open socket: resolves with the raw response, or with how the socket ended. */
function exchange(socket: Socket, payload: string): Promise<{response?: string; ended?: string}> {
  return new Promise((resolve) => {
    let data = ''
    const done = (result: {response?: string; ended?: string}) => {
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onError)
      resolve(result)
    }

    const onData = (chunk: Buffer) => {
      data += chunk.toString('utf8')
      const headerEnd = data.indexOf('\r\n\r\n')
      const length = /content-length: (\d+)/i.exec(data)
      if (headerEnd >= 0 && length && data.length >= headerEnd + 4 + Number(length[1])) done({response: data})
    }

    const onClose = () => done({ended: `closed after ${JSON.stringify(data)}`})
    const onError = (error: Error) => done({ended: String(error)})
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.on('error', onError)
    socket.write(
      `POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
    )
  })
}

t.test('a request on an idle keep-alive connection after SIGTERM is answered, then the connection closes', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('slow'), '--grace-period', '30'])
  t.teardown(() => server.stop('SIGKILL'))
  const url = new URL(server.url)
  const socket = connect(Number(url.port), url.hostname)
  t.teardown(() => socket.destroy())
  await new Promise((resolve) => socket.once('connect', resolve))
  const first = await exchange(socket, body(0))
  t.match(first.response, /^HTTP\/1\.1 200 /, 'the first request on the connection')
  t.notMatch(first.response, /connection: close/i, 'the connection is kept alive')

  // a slow request in flight keeps the drain going while the idle connection sends its next request
  const other = new Agent()
  t.teardown(() => other.close())
  const slow = fetch(`${server.url}/invocations`, {
    dispatcher: other,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: body(3),
  })
  await server.waitForOutput(/slow model: sleeping 3\.0 s/)
  server.child.kill('SIGTERM')
  await server.waitForOutput(/received SIGTERM/)

  const second = await exchange(socket, body(0))
  t.equal(second.ended, undefined, 'the connection was not cut under the request')
  t.match(second.response, /^HTTP\/1\.1 200 /)
  t.match(second.response, /\r\nconnection: close\r\n/i, 'the answer tells the client to reconnect')
  t.match(second.response, /\{"predictions": \[0\.0\]\}$/)
  await new Promise((resolve) => (socket.closed ? resolve(undefined) : socket.once('close', resolve)))
  t.ok(socket.closed, 'the server closed the connection after that answer')

  const slowResponse = await slow
  t.equal(slowResponse.status, 200, 'the request in flight finished')
  await slowResponse.text()
  t.equal((await server.exited).code, 0)
})

t.test('SIGTERM with an idle keep-alive client and nothing in flight still exits 0', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('slow')])
  const client = new Agent()
  t.teardown(() => client.close())
  const res = await fetch(`${server.url}/invocations`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: body(0),
  })
  t.equal(res.status, 200)
  await res.text()
  const exit = await server.stop('SIGTERM')
  t.equal(exit.code, 0)
})
