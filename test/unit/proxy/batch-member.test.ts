// A batch member: the scheduler hands the queued compatible requests to the one that gets a scorer,
// within --batch-max-rows and MAX_MERGED_BYTES.
import t from 'tap'
import {Agent} from 'undici'

import {BatchMember, type MemberSink} from '../../../src/proxy/batch-member.js'
import {MAX_MERGED_BYTES, readRows} from '../../../src/proxy/batch-rows.js'
import {Scheduler, type Schedulable} from '../../../src/scorer/scheduler.js'
import {isLease, type Acquired} from '../../../src/upstream.js'

const rows = (body: string) => readRows(Buffer.from(body))

const dispatcher = new Agent()
t.teardown(() => dispatcher.close())

t.test('the request that gets a scorer takes the compatible queued ones along', async (t) => {
  const scorer: Schedulable = {
    slot: 0,
    dispatcher,
    ready: true,
    outstanding: 0,
    get load() {
      return this.outstanding
    },
  }
  const scheduler = new Scheduler({members: () => [scorer], limit: 1, maxQueue: 10, unavailable: () => 'none'})
  const sink = {} as MemberSink
  const member = (body: string, maxRows = 4) => new BatchMember(rows(body)!, sink, maxRows)
  const first = scheduler.acquire()
  t.ok(isLease(first as Acquired), 'a free scorer: at once, alone')
  const head = member('{"inputs": [1, 2]}')
  const queued = [
    scheduler.acquire(() => head),
    scheduler.acquire(() => undefined),
    scheduler.acquire(() => member('{"inputs": ["x"]}')),
    scheduler.acquire(() => member('{"inputs": [3]}')),
    scheduler.acquire(() => member('{"inputs": [4, 5]}')),
    scheduler.acquire(() => member('{"inputs": [6]}')),
  ] as Array<Promise<Acquired>>
  scheduler.release(scorer as never)
  t.ok(isLease(await queued[0]!), 'the head gets the scorer')
  t.same(await queued[3]!, {joined: true}, 'a compatible request joins it')
  t.same(await queued[5]!, {joined: true}, 'so does the next one that fits in --batch-max-rows')
  t.same(
    head.followers.map((f) => f.rows.rowsText),
    ['3', '6'],
    'the one that would pass the row limit stays queued; incompatible ones are skipped',
  )
  t.equal(scheduler.queueDepth, 3, 'the others wait for the next scorer')
})

t.test('a merged call holds at most MAX_MERGED_BYTES of rows: big requests go alone', async (t) => {
  const sink = {} as MemberSink
  const big = () => new BatchMember(rows(`{"inputs": ["${'a'.repeat(600 * 1024)}"]}`)!, sink, 1024)
  const head = big()
  t.notOk(head.join(big()), 'two 600 KiB rows would pass the byte cap: not merged')
  const small = new BatchMember(rows('{"inputs": ["b"]}')!, sink, 1024)
  t.ok(head.join(small), 'a small one still fits')
  t.ok(MAX_MERGED_BYTES <= 1024 * 1024, 'the cap is no more than one batchable body')
})
