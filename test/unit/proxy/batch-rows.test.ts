// Batching's row arithmetic: which bodies may merge (and with which), the merged body, cutting the answer
// back byte for byte.
import t from 'tap'

import {mergeRows, readRows, splitPredictions} from '../../../src/proxy/batch-rows.js'

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
