// Batching's pure parts: which bodies may merge (and with which), the merged body, cutting the answer
// back byte for byte, and the scheduler handing queued compatible requests to the one that gets a scorer.
import t from 'tap'
import {Agent} from 'undici'

import {BatchMember, type MemberSink} from '../../../src/proxy/batch-member.js'
import {MAX_MERGED_BYTES, mergeRows, readRows, splitPredictions} from '../../../src/proxy/batch-rows.js'
import {Scheduler, type Schedulable} from '../../../src/scorer/scheduler.js'
import {isLease, type Acquired} from '../../../src/upstream.js'

const rows = (body: string) => readRows(Buffer.from(body))
const key = (body: string) => rows(body)?.key

t.test('which bodies merge', async (t) => {
  t.ok(rows('{"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}}'), 'dataframe_split')
  t.ok(rows('{"dataframe_records": [{"a": 1}]}'), 'dataframe_records')
  t.ok(rows('{"instances": [[1, 2]]}'), 'instances')
  t.ok(rows('{"inputs": [1, 2, 3]}'), 'inputs as a list of rows')
  t.ok(rows('{"inputs": [NaN, Infinity, -Infinity]}'), "NaN and Infinity, as Python's json reads them")
  for (const body of [
    '{"inputs": {"a": [1]}}',
    '{"dataframe_split": {"columns": ["a"], "index": [7], "data": [[1]]}}',
    '{"instances": []}',
    '{"instances": [[[1, 2]]]}',
    '{"instances": [[1, 2], [3]]}',
    '{"dataframe_records": [{"a": 1}, {"b": 1}]}',
    '{"instances": [1], "extra": 1}',
    '{"instances": [1], "instances": [2]}',
    '{"messages": [{"role": "user"}]}',
    '{"instances": [1,]}',
    '{"instances": ["a\tb"]}',
    '[1, 2]',
    'a,b\n1,2',
  ]) {
    t.equal(rows(body), undefined, `passes through: ${JSON.stringify(body)}`)
  }

  t.equal(readRows(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), undefined, 'not UTF-8')
  t.equal(rows('{"inputs": [1, 2]}')!.rows, 2, 'counts rows')
})

t.test('what must match for two requests to merge', async (t) => {
  t.equal(key('{"instances": [[1, "x"]]}'), key('{"instances": [[5, "y"], [-7, "z"]]}'), 'same shape and kinds')
  t.not(key('{"instances": [[1]]}'), key('{"instances": [[1.0]]}'), 'an int column and a float column do not merge')
  t.not(key('{"instances": [[1]]}'), key('{"instances": [[null]]}'), 'null makes another kind')
  t.equal(key('{"instances": [[1]]}'), key('{"instances": [[-9007199254740993]]}'), 'int64 either side of 2^53 merges')
  t.not(key('{"instances": [[-9007199254740993]]}'), key('{"instances": [[18446744073709551615]]}'), 'int64 and uint64 do not merge')
  t.not(key('{"instances": [[18446744073709551615]]}'), key('{"instances": [[18446744073709551616]]}'), 'uint64 and beyond do not')
  t.not(
    key('{"instances": [[1], [18446744073709551615]]}'),
    key('{"instances": [[-1], [18446744073709551615]]}'),
    'with a uint64 in the column, the sign of the others counts',
  )
  t.not(key('{"instances": [[1]]}'), key('{"inputs": [[1]]}'), 'another format')
  t.not(
    key('{"dataframe_split": {"columns": ["a"], "data": [[1]]}}'),
    key('{"dataframe_split": {"columns": ["b"], "data": [[1]]}}'),
    'other columns',
  )
  t.equal(
    key('{"inputs": [1], "params": {"a": 1, "b": "\\u00e9"}}'),
    key('{"params": {"b":"é","a":1}, "inputs": [2]}'),
    'params compared canonically (key order, spaces, escapes)',
  )
  t.not(key('{"inputs": [1], "params": {"a": 1}}'), key('{"inputs": [1], "params": {"a": 1.0}}'), '1 and 1.0 are different params')
  t.not(key('{"inputs": [1]}'), key('{"inputs": [1], "params": {}}'), 'no params and empty params differ')
})

t.test('the merged body keeps every row as sent', async (t) => {
  const a = rows('{"dataframe_split": {"columns": ["a", "s"], "data": [[1.50, "\\u00e9"]]}, "params": {"k": 1}}')!
  const b = rows('{"params":{"k":1},"dataframe_split":{"data":[[NaN,"x"],[2.0,"日"]],"columns":["a","s"]}}')!
  t.equal(
    mergeRows([a, b]).toString(),
    '{"dataframe_split": {"columns": ["a", "s"], "data": [[1.50, "\\u00e9"], [NaN,"x"],[2.0,"日"]]}, "params": {"k": 1}}',
  )
  const c = rows('{"inputs": [1, 2]}')!
  t.equal(mergeRows([c, rows('{"inputs": [3]}')!]).toString(), '{"inputs": [1, 2, 3]}')
})

t.test('the answer is cut at the row boundaries, byte for byte', async (t) => {
  const answer = '{"predictions": [{"a": NaN, "s": "\\u00e9, ]"}, 1.0, [1, 2], "x"]}'
  t.same(splitPredictions(answer, [1, 2, 1]), [
    '{"predictions": [{"a": NaN, "s": "\\u00e9, ]"}]}',
    '{"predictions": [1.0, [1, 2]]}',
    '{"predictions": ["x"]}',
  ])
  t.equal(splitPredictions(answer, [1, 2]), undefined, 'not one element per row')
  t.equal(splitPredictions('{"predictions": {"a": [1, 2]}}', [1, 1]), undefined, 'a dict of outputs')
  t.equal(splitPredictions('{"predictions": 3}', [1]), undefined, 'a scalar')
  t.equal(splitPredictions('[1, 2]', [1, 1]), undefined, 'not wrapped')
  t.equal(splitPredictions('{"predictions": [1, 2], "x": 1}', [1, 1]), undefined, 'more than predictions')
})

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
