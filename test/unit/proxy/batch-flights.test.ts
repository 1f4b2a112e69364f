// --batch with its defaults (a scorer free for 16 requests): batchable requests that arrive while a call
// of their kind is in flight wait and go together as the next call; a request that cannot merge goes at once.
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'

import t, {type Test} from 'tap'
import {Pool} from 'undici'

import {Flights} from '../../../src/proxy/batch-flights.js'
import {Observer} from '../../../src/proxy/observe.js'
import {BatchMember} from '../../../src/proxy/batch-member.js'
import {readRows} from '../../../src/proxy/batch-rows.js'
import {Batcher, batching} from '../../../src/proxy/batch.js'
import type {RequestBody} from '../../../src/proxy/body.js'
import {composeLending, type ExchangePort, type Lending} from '../../../src/proxy/lending.js'
import type {RequestRecord} from '../../../src/proxy/server.js'
import {Scheduler, type Schedulable} from '../../../src/scorer/scheduler.js'
import type {Lease, Upstreams} from '../../../src/upstream.js'

/** A stand-in scorer: answers each row's `x` as its prediction, once the test lets the call go. */
function standIn() {
  const calls: Array<{body: string; answer: () => void}> = []
  const waiters: Array<() => void> = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => {
      const rows = (JSON.parse(body) as {dataframe_split?: {data: number[][]}}).dataframe_split?.data
      const answer = () => {
        res.writeHead(200, {'content-type': 'application/json'})
        res.end(rows ? `{"predictions": [${rows.map((row) => row[0]).join(', ')}]}` : '{"predictions": "chat"}')
      }

      calls.push({body, answer})
      for (const wake of waiters.splice(0)) wake()
    })
  })
  /** Resolves once the scorer got `count` calls. */
  const seen = async (count: number) => {
    // eslint-disable-next-line no-await-in-loop -- woken on each call
    while (calls.length < count) await new Promise<void>((resolve) => waiters.push(resolve))
  }

  return {server, calls, seen}
}

/** The proxy's lending with --batch's defaults (16 requests at once per scorer) before `count` stand-in scorers. */
async function proxy(t: Test, count: number, onWaiting?: (delta: number) => void) {
  const scorers = Array.from({length: count}, () => standIn())
  const members: Schedulable[] = []
  for (const [slot, scorer] of scorers.entries()) {
    // eslint-disable-next-line no-await-in-loop
    await new Promise<void>((resolve) => scorer.server.listen(0, '127.0.0.1', resolve))
    const pool = new Pool(`http://127.0.0.1:${(scorer.server.address() as AddressInfo).port}`)
    t.teardown(async () => {
      await pool.close()
      scorer.server.closeAllConnections()
      await new Promise((resolve) => scorer.server.close(resolve))
    })
    members.push({
      dispatcher: pool,
      slot,
      ready: true,
      outstanding: 0,
      get load() {
        return this.outstanding
      },
    })
  }

  const scheduler = new Scheduler({members: () => members, limit: 16, maxQueue: 100, unavailable: () => 'none'})
  const upstreams: Upstreams = {
    acquire: (joinable) => scheduler.acquire(joinable),
    release: (lease) => scheduler.release(lease as Schedulable),
    share: (lease) => scheduler.share(lease as Schedulable),
    cancel: (pending) => scheduler.cancel(pending),
  }
  const lend = composeLending([batching(new Batcher({maxRows: 100, onWaiting}))])

  /** One exchange as the proxy runs it: sent alone on its lease, or answered with its cut of a merged call. */
  const request = async (body: string, leave?: Promise<void>): Promise<string> =>
    new Promise((resolve, reject) => {
      let settled = false
      let lending: Lending
      const settle = (answer: string) => {
        settled = true
        lending.end()
        resolve(answer)
      }

      const headers = ['content-type', 'application/json']
      const port: ExchangePort = {
        req: {
          method: 'POST',
          url: '/invocations',
          rawHeaders: headers,
          headers: {'content-type': 'application/json'},
        } as unknown as IncomingMessage,
        body: {size: body.length, memory: Buffer.from(body), open: () => Buffer.from(body), discard() {}} as RequestBody,
        target: {path: '/invocations', headers},
        record: {} as RequestRecord,
        get settled() {
          return settled
        },
        outcome: undefined,
        send(lease: Lease) {
          void lease.dispatcher.request({path: '/invocations', method: 'POST', headers, body}).then(async (response) => {
            const text = await response.body.text()
            upstreams.release(lease, 'ok')
            settle(text)
          }, reject)
        },
        answer: (_status, _headers, answer) => settle(answer.toString()),
        fail: reject,
        refuse: (refusal) => reject(new Error(refusal.detail)),
        sayVersion() {},
      }
      lending = lend(upstreams, port)
      lending.start()
      // The client goes away: the exchange settles as forward.ts settles it.
      void leave?.then(() => {
        if (!settled) settle('left')
      })
    })

  return {scorers, request}
}

const row = (x: number) => `{"dataframe_split": {"columns": ["x"], "data": [[${x}]]}}`

t.test('batchable requests wait for the call in flight and go as one; one that cannot merge does not wait', async (t) => {
  const {scorers, request} = await proxy(t, 1)
  const scorer = scorers[0]!
  const first = request(row(1))
  await scorer.seen(1)
  const waiting = [2, 3, 4, 5].map((x) => request(row(x)))
  // Not rows: it cannot merge, so it takes another of the scorer's 16 slots at once.
  const chat = request('{"messages": [{"role": "user", "content": "hi"}]}')
  await scorer.seen(2)
  t.equal(
    scorer.calls[1]!.body.includes('messages'),
    true,
    'the request that cannot merge reached the scorer while the first call was in flight',
  )
  scorer.calls[1]!.answer()
  t.equal(await chat, '{"predictions": "chat"}')
  t.equal(scorer.calls.length, 2, 'the batchable requests did not take more scorer slots while a call of their kind was in flight')
  scorer.calls[0]!.answer()
  t.equal(await first, '{"predictions": [1]}')
  await scorer.seen(3)
  t.equal(scorer.calls[2]!.body, row(0).replace('[[0]]', '[[2], [3], [4], [5]]'), 'the four that waited went as one call')
  scorer.calls[2]!.answer()
  t.same(
    await Promise.all(waiting),
    [2, 3, 4, 5].map((x) => `{"predictions": [${x}]}`),
    'each gets its own rows',
  )
  t.equal(scorer.calls.length, 3, '6 requests in 3 scorer calls')
})

t.test('with two scorers, a request goes at once to the one without a call of its kind; the next waits', async (t) => {
  const {scorers, request} = await proxy(t, 2)
  const first = request(row(1))
  await scorers[0]!.seen(1)
  const second = request(row(2))
  await scorers[1]!.seen(1)
  const waiting = [3, 4].map(async (x) => request(row(x)))
  scorers[1]!.calls[0]!.answer()
  t.equal(await second, '{"predictions": [2]}', 'the second went alone to the other scorer')
  await scorers[1]!.seen(2)
  t.equal(scorers[1]!.calls[1]!.body, row(0).replace('[[0]]', '[[3], [4]]'), 'the two that waited went as one call')
  t.equal(scorers[0]!.calls.length, 1, 'the busy scorer got no second call')
  scorers[1]!.calls[1]!.answer()
  t.same(await Promise.all(waiting), ['{"predictions": [3]}', '{"predictions": [4]}'])
  scorers[0]!.calls[0]!.answer()
  t.equal(await first, '{"predictions": [1]}')
})

/** A gathering request for Flights alone: its rows as `x` values, and how often it was launched. */
function launchable(xs: number[], maxRows: number, settled = false) {
  const sink = {settled, outcome: undefined, answer() {}, send() {}, fail() {}, refuse() {}}
  const member = new BatchMember(readRows(Buffer.from(JSON.stringify({inputs: xs.map((x) => [x])})))!, sink, maxRows)
  const request = {member, launched: 0, launch: () => request.launched++}
  return request
}

t.test('the next call of a kind goes when the call in flight ends, or at once when it is full', async (t) => {
  const flights = new Flights()
  const alone = launchable([1], 3)
  t.equal(flights.wait(alone), false, 'no call of its kind in flight: it goes at once')
  flights.took(alone.member.rows.key, 0)
  const next = launchable([2], 3)
  t.equal(flights.wait(next), true, 'a call is in flight: it waits')
  t.equal(flights.wait(launchable([3], 3)), true, 'and the next joins it')
  t.equal(next.launched, 0)
  t.equal(flights.wait(launchable([4], 3)), true)
  t.equal(next.launched, 1, 'full (--batch-max-rows): it goes without waiting for the call in flight')
  t.same(next.member.followers.length, 2)
  t.equal(flights.wait(launchable([5, 6, 7], 3)), false, 'a request as large as a call never waits')
  const later = launchable([8], 3)
  t.equal(flights.wait(later), true)
  flights.landed(alone.member.rows.key, 0)
  t.equal(later.launched, 1, 'the call in flight ended: the next goes')
})

t.test('a gathered call whose clients all left is not sent', async (t) => {
  const flights = new Flights()
  const first = launchable([1], 10)
  flights.took(first.member.rows.key, 0)
  const gone = launchable([2], 10, true)
  t.equal(flights.wait(gone), true)
  flights.landed(first.member.rows.key, 0)
  t.equal(gone.launched, 0)
})

t.test('mlserve_queue_depth counts the requests waiting behind a call of their kind in flight', async (t) => {
  const observer = new Observer({
    state: () => 'ready',
    scorers: () => ({counts: () => ({starting: 0, ready: 1, retiring: 0}), queueDepth: 0, outstanding: 1, unhealthy: undefined}),
    inFlight: () => 0,
    workers: 1,
    logFormat: 'text',
    batch: true,
  })
  const depth = () => /\nmlserve_queue_depth (\d+)\n/.exec(observer.routes()['/metrics']!().body)?.[1]
  const {scorers, request} = await proxy(t, 1, observer.recordWaiting)
  const scorer = scorers[0]!
  const first = request(row(1))
  await scorer.seen(1)
  t.equal(depth(), '0', 'the first request went at once')
  let leave!: () => void
  const left = request(
    row(2),
    new Promise<void>((resolve) => {
      leave = resolve
    }),
  )
  const waiting = [3, 4, 5].map((x) => request(row(x)))
  t.equal(depth(), '4', 'four requests wait for the call in flight to end')
  leave()
  t.equal(await left, 'left')
  t.equal(depth(), '3', 'one whose client went away waits no more')
  scorer.calls[0]!.answer()
  t.equal(await first, '{"predictions": [1]}')
  await scorer.seen(2)
  t.equal(depth(), '0', 'the gathered call went: none waits')
  // The one that left led the gathered call: its rows go too, its part of the answer to no one.
  t.equal(scorer.calls[1]!.body, row(0).replace('[[0]]', '[[2], [3], [4], [5]]'))
  scorer.calls[1]!.answer()
  t.same(
    await Promise.all(waiting),
    [3, 4, 5].map((x) => `{"predictions": [${x}]}`),
  )
  t.equal(depth(), '0')
})
