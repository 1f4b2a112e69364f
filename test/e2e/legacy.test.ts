// An interpreter with mlflow < 2.21 has no FastAPI scorer: mlserve serves the Flask app that mlflow
// version ships, under gunicorn, and its answers match that version's own `mlflow models serve`.
import t from 'tap'

import {JSON_TYPE, compareModel, split} from '../helpers/compare.js'
import {startMlserve} from '../helpers/servers.js'
import {fixtureModel} from '../helpers/toolchain.js'

t.test('mlflow 2.20 models are served by gunicorn, answering as mlflow 2.20 does', (t) =>
  compareModel(
    t,
    fixtureModel('sum', 'legacy'),
    [
      {name: 'GET /ping', method: 'GET', path: '/ping', expect: {status: 200}},
      {name: 'GET /version', method: 'GET', path: '/version', expect: {status: 200, body: '2.20.4'}},
      {
        name: 'dataframe_split',
        contentType: JSON_TYPE,
        body: split(
          ['a', 'b'],
          [
            [1, 2],
            [3, 4],
          ],
        ),
        expect: {status: 200, body: /"predictions": \[3, 7\]/},
      },
      {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n', expect: {status: 200}},
      {name: 'malformed JSON', contentType: JSON_TYPE, body: '{bad', expect: {status: 400}},
      {name: 'form-encoded', contentType: 'application/x-www-form-urlencoded', body: 'a=1', expect: {status: 415}},
      {name: 'unknown route', method: 'GET', path: '/nope', expect: {status: 404}},
    ],
    {toolchain: 'legacy'},
  ),
)

t.test('the log says which server runs the model', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('raise', 'legacy')], {toolchain: 'legacy'})
  t.teardown(() => server.stop())
  t.match(server.stderr(), /mlflow 2\.20\.4/)
  t.match(server.stderr(), /start scorer \(gunicorn, 1 process\)/)
})
