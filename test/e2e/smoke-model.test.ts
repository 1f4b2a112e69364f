// `mlserve smoke --url URL --model NAME`: one model of a running multi-model mlserve checked through its
// /models/<name>/ routes; an unknown name fails with the served names; --model without --url is exit 2.
import path from 'node:path'

import t from 'tap'

import {runMlserve, startMlserve} from '../helpers/servers.js'
import {REPO_ROOT, fixtureModel} from '../helpers/toolchain.js'

const IRIS = path.join(REPO_ROOT, 'examples/sklearn-iris')

t.test('--model checks one model of a multi-model server through its own routes', async (t) => {
  const server = await startMlserve(['-m', `iris=${IRIS}`, '-m', `sum=${fixtureModel('sum')}`])
  t.teardown(() => server.stop())
  await server.waitForOutput(/ready: serving 2 of 2 models/)

  const result = await runMlserve(['smoke', '--url', server.url, '--model', 'iris', '-m', IRIS, '--json'])
  t.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as {url: string; cases: Array<{status: string}>}
  t.equal(report.url, `${server.url}/models/iris`)
  t.same(
    report.cases.map((c) => c.status),
    ['skipped', 'passed', 'passed', 'passed', 'passed'],
  )
  t.match(server.stdout(), /"POST \/models\/iris\/invocations" 200/, "the checks went to iris's own route")
  t.match(server.stdout(), /"GET \/models\/iris\/ping" 200/)
  t.notMatch(server.stdout(), /"POST \/models\/sum\/invocations"/, 'nothing reached the other model')

  const unknown = await runMlserve(['smoke', '--url', server.url, '--model', 'nope', '-m', IRIS])
  t.equal(unknown.code, 85, 'a model the server does not serve: the checks fail')
  t.match(unknown.stderr, /No model named .*nope.* is served here\. Served models: iris, sum\./)

  const noUrl = await runMlserve(['smoke', '--model', 'iris', '-m', IRIS])
  t.equal(noUrl.code, 2, '--model without --url: usage error')
  t.match(noUrl.stderr, /--model applies to --url only/)
})
