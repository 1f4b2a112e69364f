// The scheduler with plain objects for scorers: who gets the next request, the queue, its limit,
// withdrawals and refusals; no process, no socket.
import t from 'tap'
import {Agent} from 'undici'

import {Scheduler, type Schedulable} from '../../../src/scorer/scheduler.js'
import {isLease, type Acquired} from '../../../src/upstream.js'

const dispatcher = new Agent()
t.teardown(() => dispatcher.close())

interface Fake extends Schedulable {
  ready: boolean
  stuck: number
}

function fake(slot: number, ready = true): Fake {
  return {
    slot,
    dispatcher,
    ready,
    outstanding: 0,
    stuck: 0,
    get load() {
      return this.outstanding + this.stuck
    },
  }
}

function scheduler(members: Fake[], limit = 2, maxQueue = 2, why = 'every scorer is restarting; retry shortly.') {
  return new Scheduler<Fake>({members: () => members, limit, maxQueue, unavailable: () => why})
}

const slotOf = (got: Acquired | Promise<Acquired>) => (!(got instanceof Promise) && isLease(got) ? got.slot : undefined)

t.test('the least loaded ready scorer gets the request; ties rotate', async (t) => {
  const [a, b] = [fake(0), fake(1)]
  const s = scheduler([a, b], 4)
  const first = slotOf(s.acquire())
  const second = slotOf(s.acquire())
  t.same(new Set([first, second]), new Set([0, 1]), 'two requests go to two idle scorers')
  t.same([a.outstanding, b.outstanding], [1, 1])
  b.stuck = 2
  t.equal(slotOf(s.acquire()), 0, 'timed-out work counts as load')
  t.equal(slotOf(s.acquire()), 0)
})

t.test('a scorer that is not ready gets nothing; none ready: unavailable with the reason', async (t) => {
  const starting = fake(0, false)
  const s = scheduler([starting], 2, 2, 'the server is shutting down.')
  t.same(s.acquire(), {refused: 'unavailable', detail: 'the server is shutting down.'})
  t.equal(starting.outstanding, 0)
  starting.ready = true
  t.equal(slotOf(s.acquire()), 0)
})

t.test('past the limit requests queue in order, up to maxQueue, then queue_full', async (t) => {
  const a = fake(0)
  const s = scheduler([a], 1, 2)
  const lent = s.acquire()
  const first = s.acquire() as Promise<Acquired>
  const second = s.acquire() as Promise<Acquired>
  t.equal(s.queueDepth, 2)
  t.same(s.acquire(), {refused: 'queue_full', detail: '2 requests are already queued'})
  const order: string[] = []
  void first.then(() => order.push('first'))
  void second.then(() => order.push('second'))
  s.release(lent as Fake)
  await first
  t.same(order, ['first'], 'the oldest waiter is served first')
  t.equal(a.outstanding, 1)
  s.release(a)
  await second
  t.same(order, ['first', 'second'])
  t.equal(s.queueDepth, 0)
})

t.test('a withdrawn waiter takes no capacity', async (t) => {
  const a = fake(0)
  const s = scheduler([a], 1, 2)
  const lent = s.acquire() as Fake
  const gone = s.acquire() as Promise<Acquired>
  s.cancel(gone)
  t.equal(s.queueDepth, 0)
  s.release(lent)
  t.equal(a.outstanding, 0, 'the freed capacity went to nobody')
  s.cancel(gone)
  t.equal(s.queueDepth, 0, 'withdrawing twice is a no-op')
})

t.test('when the last ready scorer goes, every waiter is refused at once', async (t) => {
  const a = fake(0)
  const s = scheduler([a], 1, 4, '5 scorer failures within 60 s; not restarting any more.')
  s.acquire()
  const waiting = [s.acquire(), s.acquire()] as Array<Promise<Acquired>>
  a.ready = false
  s.drain()
  for (const pending of waiting) {
    // eslint-disable-next-line no-await-in-loop
    t.same(await pending, {refused: 'unavailable', detail: '5 scorer failures within 60 s; not restarting any more.'})
  }

  t.equal(s.queueDepth, 0)
})

t.test('a scorer that becomes ready takes the queue over when drained', async (t) => {
  const [a, b] = [fake(0), fake(1, false)]
  const s = scheduler([a, b], 1, 4)
  s.acquire()
  const waiting = s.acquire() as Promise<Acquired>
  b.ready = true
  s.drain()
  const got = await waiting
  t.ok(isLease(got) && got.slot === 1)
})
