import t from 'tap'

import {StreamGate, asksForStream, tooManyStreamsResponse} from '../../../src/proxy/streams.js'

t.test('a request asks for a stream with "stream": true at the top level or in params of a JSON object', async (t) => {
  const json = 'application/json'
  const ask = (body: string, type = json) => asksForStream(type, Buffer.from(body))
  t.ok(ask('{"messages": [], "stream": true}'))
  t.ok(ask('{"inputs": {"a": [1]}, "params": {"stream": true}}'))
  t.ok(ask('{"stream": true}', 'application/json; charset=utf-8'))
  t.notOk(ask('{"messages": [], "stream": false}'))
  t.notOk(ask('{"messages": [], "stream": "true"}'), 'only the JSON true')
  t.notOk(ask('{"messages": [{"content": "\\"stream\\": true"}]}'), 'a nested mention is not the flag')
  t.notOk(ask('[{"stream": true}]'), 'not an object')
  t.notOk(ask('{"stream": true', json), 'not JSON')
  t.notOk(ask('{"stream": true}', 'text/csv'))
  t.notOk(ask('{"stream": true}', 'APPLICATION/JSON'), "mlflow's media types are exact")
  t.notOk(asksForStream(undefined, Buffer.from('{"stream": true}')))
  t.notOk(asksForStream(json, undefined), 'a body spilled to a file is not parsed')
})

t.test('--max-streams: enter() refuses once max are running, leave() frees a place; 0 is no bound', async (t) => {
  const gate = new StreamGate(2)
  t.ok(gate.enter())
  t.ok(gate.enter())
  t.notOk(gate.enter(), 'the third is refused')
  gate.leave()
  t.ok(gate.enter(), 'a place was freed')
  t.equal(gate.active, 2)
  const unbounded = new StreamGate(0)
  for (let i = 0; i < 1000; i++) unbounded.enter()
  t.equal(unbounded.active, 1000)
  const refusal = tooManyStreamsResponse(2)
  t.equal(refusal.status, 503)
  t.equal(refusal.headers?.['retry-after'], '1')
  t.match(refusal.body, /^\{"error_code": "TEMPORARILY_UNAVAILABLE", "message": ".*--max-streams\)\."\}$/)
})
