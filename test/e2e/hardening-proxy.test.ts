// The proxy's edges with MLflow's real scorer, beside `mlflow models serve` where mlflow has an answer:
// the scorer's redirects point at the client's own host and port, as mlflow's do.
import t from 'tap'
import {Agent, request} from 'undici'

import {startMlflowServe, startMlserve} from '../helpers/servers.js'
import {fixtureModel} from '../helpers/toolchain.js'

const client = new Agent({pipelining: 0})
t.teardown(() => client.close())

/** POST /invocations/ (trailing slash) without following redirects: status and Location. */
async function trailingSlash(url: string) {
  const res = await request(`${url}/invocations/`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
  })
  await res.body.dump()
  return {status: res.statusCode, location: res.headers.location}
}

t.test("POST /invocations/ redirects to the client's own host and port, as mlflow models serve does", async (t) => {
  const model = fixtureModel('sum')
  const mlflow = await startMlflowServe(model)
  t.teardown(() => mlflow.stop())
  const mlserve = await startMlserve(['-m', model])
  t.teardown(() => mlserve.stop())

  const reference = await trailingSlash(mlflow.url)
  const ours = await trailingSlash(mlserve.url)
  t.equal(reference.location, `${mlflow.url}/invocations`, "mlflow's own answer, for the record")
  t.equal(ours.status, reference.status)
  t.equal(ours.location, `${mlserve.url}/invocations`)
})
