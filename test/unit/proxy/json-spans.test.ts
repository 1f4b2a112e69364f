// The JSON span scanner: where each value is in the raw text, and a refusal for what Python's json.loads refuses.
import t from 'tap'

import {NotJson, arraySpans, topLevelMembers, valueEnd} from '../../../src/proxy/json-spans.js'

const slices = (text: string) => topLevelMembers(text).map(({key, value}) => [key, text.slice(value.start, value.end)])

t.test('a document: each top-level member with the exact text of its value', async (t) => {
  const text = ' {"columns": ["a", "b"], "data" :[[1, 2.5e3], [NaN, -Infinity]], "params": {"k": "v\\"\\u00e9"}, "n": null} '
  t.same(slices(text), [
    ['columns', '["a", "b"]'],
    ['data', '[[1, 2.5e3], [NaN, -Infinity]]'],
    ['params', '{"k": "v\\"\\u00e9"}'],
    ['n', 'null'],
  ])
  t.same(slices('{}'), [])
  t.same(slices('{"\\u0061": true}'), [['a', 'true']], 'keys are decoded')
})

t.test("an array's elements as spans", async (t) => {
  const text = '[ 1 , "x" , [2] , {"a": false} ]'
  const spans: {start: number; end: number}[] = []
  t.equal(arraySpans(text, 0, spans), text.length)
  t.same(
    spans.map(({start, end}) => text.slice(start, end)),
    ['1', '"x"', '[2]', '{"a": false}'],
  )
  t.equal(arraySpans('[]', 0, spans), 2)
  t.equal(valueEnd('"a" tail', 0), 3)
})

t.test("what Python's json.loads refuses is NotJson", async (t) => {
  for (const text of [
    '',
    '[1, 2]',
    '{"a": 1} extra',
    '{"a": 1,}',
    "{'a': 1}",
    '{"a": 01}',
    '{"a": "\\x"}',
    '{"a": "\\u12"}',
    '{"a": "tab\there"}',
    '{"a": "open}',
    '{"a" 1}',
    '{"a": [1 2]}',
    '{"a": undefined}',
  ]) {
    let thrown: unknown
    try {
      topLevelMembers(text)
    } catch (error) {
      thrown = error
    }

    t.ok(thrown instanceof NotJson, `${JSON.stringify(text)} is not JSON`)
  }
})
