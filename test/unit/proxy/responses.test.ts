// The answers the proxy writes itself, in mlflow's Python-style JSON error envelope.
import t from 'tap'

import {errorEnvelope, pythonJsonString} from '../../../src/proxy/responses.js'

t.test('python-style JSON envelopes', async (t) => {
  t.equal(pythonJsonString('a "b" é\n'), '"a \\"b\\" \\u00e9\\n"')
  t.same(errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', 'not yet'), {
    status: 503,
    contentType: 'application/json',
    body: '{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "not yet"}',
    headers: undefined,
  })
})
