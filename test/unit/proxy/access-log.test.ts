// Access-log lines (text and JSON, nothing in a value can split a line or fake a field) and request IDs.
import t from 'tap'

import {TurnWriter, formatAccessLog, isValidRequestId, newRequestId, type AccessEntry} from '../../../src/proxy/access-log.js'

const entry: AccessEntry = {
  time: new Date('2026-11-25T10:00:00.123Z'),
  requestId: '0b6c1c2e-7d0a-4a8e-9a57-3f1f5b0e2d11',
  remote: '127.0.0.1',
  method: 'POST',
  path: '/invocations',
  status: 200,
  durationMs: 3.4321,
  scorer: 0,
  outcome: 'ok',
}

t.test('access log: text lines', async (t) => {
  t.equal(
    formatAccessLog(entry, 'text'),
    '2026-11-25T10:00:00.123Z 127.0.0.1 "POST /invocations" 200 3.4ms scorer=0 id=0b6c1c2e-7d0a-4a8e-9a57-3f1f5b0e2d11\n',
  )
  t.equal(
    formatAccessLog(
      {...entry, status: 504, durationMs: 2000, outcome: 'timeout', bytesIn: 57, bytesOut: 39, scorer: 2, requestId: 'abc'},
      'text',
    ),
    '2026-11-25T10:00:00.123Z 127.0.0.1 "POST /invocations" 504 2000.0ms outcome=timeout in=57 out=39 scorer=2 id=abc\n',
  )
  t.equal(
    formatAccessLog({...entry, remote: '', scorer: undefined, method: 'GET', path: '/ping', status: 200}, 'text'),
    '2026-11-25T10:00:00.123Z - "GET /ping" 200 3.4ms id=0b6c1c2e-7d0a-4a8e-9a57-3f1f5b0e2d11\n',
    'no scorer when the proxy answered itself; "-" for an unknown client',
  )
})

t.test('access log: nothing in a value can split a text line or fake a field', async (t) => {
  const line = formatAccessLog(
    {
      ...entry,
      method: 'GE T',
      path: '/a"b\\c\nd\re\u0000f\u007Fg\u2028h é',
      requestId: 'x" status=200 id=y',
      outcome: 'client closed',
    },
    'text',
  )
  t.equal(
    line,
    '2026-11-25T10:00:00.123Z 127.0.0.1 "GE T /a\\"b\\\\c\\x0ad\\x0de\\x00f\\x7fg\\u2028h é" 200 3.4ms' +
      ' outcome="client closed" scorer=0 id="x\\" status=200 id=y"\n',
  )
  t.equal(line.split('\n').length, 2)
})

t.test('access log: JSON lines with stable keys', async (t) => {
  t.equal(
    formatAccessLog({...entry, durationMs: 3.43251, bytesIn: 57, bytesOut: 39}, 'json'),
    '{"time":"2026-11-25T10:00:00.123Z","level":"info","msg":"request","requestId":"0b6c1c2e-7d0a-4a8e-9a57-3f1f5b0e2d11",' +
      '"remote":"127.0.0.1","method":"POST","path":"/invocations","status":200,"durationMs":3.433,"bytesIn":57,"bytesOut":39,' +
      '"scorer":0,"outcome":"ok"}\n',
  )
  const line = formatAccessLog({...entry, path: '/a"b\n\u2028', scorer: undefined, outcome: 'upstream-error'}, 'json')
  t.equal(line.split('\n').length, 2)
  t.notMatch(line, /\u2028/, 'no raw line separator either')
  const parsed = JSON.parse(line) as Record<string, unknown>
  t.same(Object.keys(parsed), ['time', 'level', 'msg', 'requestId', 'remote', 'method', 'path', 'status', 'durationMs', 'outcome'])
  t.equal(parsed.path, '/a"b\n\u2028')
})

t.test('request IDs', async (t) => {
  for (const id of ['a', 'abc-123', '0b6c1c2e-7d0a-4a8e-9a57-3f1f5b0e2d11', 'x'.repeat(200), 'a=b;c/d+e_f.g~h!#$%&()*,:<>?@[\\]^`{|}']) {
    t.ok(isValidRequestId(id), id)
  }

  for (const id of ['', 'x'.repeat(201), 'has space', 'a"b', "a'b", 'a\nb', 'a\tb', 'é', 'a\u007Fb']) {
    t.notOk(isValidRequestId(id), JSON.stringify(id))
  }

  const id = newRequestId()
  t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.ok(isValidRequestId(id))
  t.not(newRequestId(), id)
})

t.test('TurnWriter: the lines of one turn of the event loop go out in one write, in order', async (t) => {
  const writes: string[] = []
  const writer = new TurnWriter({write: (text: string) => writes.push(text)})
  writer.write('a\n')
  writer.write('b\n')
  t.same(writes, [], 'nothing is written within the turn')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(writes, ['a\nb\n'])
  writer.write('c\n')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(writes, ['a\nb\n', 'c\n'])
})
