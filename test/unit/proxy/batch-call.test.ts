// --batch's merged call against a stand-in scorer: the connection policy it shares with a request sent
// alone (a stale connection replayed once, but never once the scorer's answer began; hop-by-hop headers
// dropped) and each member's cut of the answer.
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'

import t, {type Test} from 'tap'
import {Pool} from 'undici'

import {runMergedCall} from '../../../src/proxy/batch-call.js'
import {BatchMember, type MemberSink} from '../../../src/proxy/batch-member.js'
import {readRows} from '../../../src/proxy/batch-rows.js'
import type {ExchangeOutcome, Lease, Upstreams} from '../../../src/upstream.js'

interface Seen {
  answers: Array<{status: number; headers: Readonly<Record<string, string | string[]>>; body: string}>
  failures: string[]
  alone: number
}

function member(body: string, seen: Seen): BatchMember {
  const sink: MemberSink = {
    settled: false,
    outcome: undefined,
    answer: (status, headers, answer) => seen.answers.push({status, headers, body: answer.toString()}),
    send: () => seen.alone++,
    fail: (message) => seen.failures.push(message),
    refuse: (refusal) => seen.failures.push(refusal.detail),
  }
  return new BatchMember(readRows(Buffer.from(body))!, sink, 100)
}

/** Runs one merged call of two requests against `handler`; resolves with what the members and the scorer saw. */
async function mergedCall(t: Test, handler: (req: IncomingMessage, res: ServerResponse, count: number) => void) {
  let requests = 0
  const scorer = createServer((req, res) => {
    req.resume()
    req.on('end', () => handler(req, res, ++requests))
  })
  await new Promise<void>((resolve) => scorer.listen(0, '127.0.0.1', resolve))
  const pool = new Pool(`http://127.0.0.1:${(scorer.address() as AddressInfo).port}`)
  t.teardown(async () => {
    await pool.close()
    scorer.closeAllConnections()
    await new Promise((resolve) => scorer.close(resolve))
  })
  const seen: Seen = {answers: [], failures: [], alone: 0}
  const leader = member('{"inputs": [1]}', seen)
  t.ok(leader.join(member('{"inputs": [2]}', seen)), 'the two requests merge')
  const released = await new Promise<ExchangeOutcome>((resolve) => {
    const upstreams: Upstreams = {acquire: () => lease, release: (_lease, outcome) => resolve(outcome)}
    const lease: Lease = {dispatcher: pool, slot: 0}
    runMergedCall(upstreams, lease, leader, {path: '/invocations', headers: ['content-type', 'application/json']}, {onNotRowAligned() {}})
  })
  return {seen, released, requests}
}

t.test('a scorer that breaks off its answer to a merged call is not sent the call again', async (t) => {
  const {seen, released, requests} = await mergedCall(t, (_req, res) => {
    // The head and part of the body, then the connection drops: the prediction ran.
    res.writeHead(200, {'content-type': 'application/json', 'content-length': '100'})
    res.write('{"predictions": [')
    setTimeout(() => res.socket?.destroy(), 20)
  })
  t.equal(requests, 1, 'the scorer got the merged call once (it was replayed, running the prediction twice)')
  t.equal(seen.failures.length, 2, 'each member gets its 502')
  t.equal(released, 'upstream-error')
})

t.test('a merged call on a connection the scorer dropped before answering goes once more, on a fresh one', async (t) => {
  const {seen, released, requests} = await mergedCall(t, (req, res, count) => {
    if (count === 1) {
      req.socket.destroy()
      return
    }

    res.writeHead(200, {'content-type': 'application/json'})
    res.end('{"predictions": [10, 20]}')
  })
  t.equal(requests, 2, 'replayed once')
  t.same(
    seen.answers.map((a) => a.body),
    ['{"predictions": [10]}', '{"predictions": [20]}'],
    'each member gets its own rows',
  )
  t.equal(released, 'ok')
})

t.test("hop-by-hop headers of the scorer's answer reach no member, as for a request sent alone", async (t) => {
  const {seen} = await mergedCall(t, (_req, res) => {
    res.writeHead(200, {'content-type': 'application/json', 'proxy-connection': 'keep-alive', 'x-scorer': 'kept'})
    res.end('{"predictions": [10, 20]}')
  })
  t.equal(seen.answers.length, 2)
  for (const answer of seen.answers) {
    t.equal(answer.headers['proxy-connection'], undefined, 'Proxy-Connection is dropped')
    t.equal(answer.headers['x-scorer'], 'kept', 'the rest pass')
  }
})
