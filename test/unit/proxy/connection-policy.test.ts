// The proxy's connection policy, shared by a request sent alone and a merged --batch call: hop-by-hop
// headers never cross it in either direction, and a stale connection is replayed once, never after the
// scorer's answer began.
import t from 'tap'

import {ReplayOnce, forwardedRequestHeaders, forwardedResponseHeaders} from '../../../src/proxy/connection-policy.js'

const failure = (code: string) => Object.assign(new Error(code), {code})

t.test("hop-by-hop headers are dropped both ways; the rest pass, Host and the client's case kept", async (t) => {
  t.same(
    forwardedRequestHeaders([
      'Host',
      'x',
      'Connection',
      'keep-alive',
      'TE',
      'trailers',
      'Expect',
      '100-continue',
      'X-Client',
      'A',
      'Proxy-Connection',
      'y',
    ]),
    ['Host', 'x', 'X-Client', 'A'],
  )
  t.same(
    forwardedResponseHeaders({
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
      'proxy-connection': 'keep-alive',
      te: 'x',
      'x-s': ['1', '2'],
      gone: undefined,
    }),
    {
      'content-type': 'application/json',
      'x-s': ['1', '2'],
    },
  )
})

t.test('a stale connection is replayed once, and only before any answer', async (t) => {
  for (const code of ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']) {
    const replay = new ReplayOnce()
    t.ok(replay.allows(failure(code), false), `${code}: replayed`)
    t.notOk(replay.allows(failure(code), false), `${code}: once`)
  }

  t.notOk(new ReplayOnce().allows(failure('ECONNRESET'), true), 'not once the answer began: the prediction ran')
  t.notOk(new ReplayOnce().allows(failure('UND_ERR_HEADERS_TIMEOUT'), false), 'another failure is not replayed')
  t.notOk(new ReplayOnce().allows(new Error('no code'), false))
  const replay = new ReplayOnce()
  t.notOk(replay.allows(failure('ECONNRESET'), true))
  t.ok(replay.allows(failure('ECONNRESET'), false), 'a refusal does not use up the replay')
})
