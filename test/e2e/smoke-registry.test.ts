// `mlserve smoke -m models:/<name>@<alias>` against a real `mlflow server`, as the README's CI jobs run
// it: the report names the version the alias resolved to; a model without an example or signature is
// tested through --cases, and skips do not fail the run.
import {writeFile} from 'node:fs/promises'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {runMlserve} from '../helpers/servers.js'
import {toolchainEnv, toolchainPython} from '../helpers/toolchain.js'
import {logModels, startTrackingServer} from '../helpers/tracking.js'

const server = await startTrackingServer()
t.teardown(() => server.proc.stop('SIGTERM'))
const cwd = await mkdtemp(path.join(tmpdir(), 'mlserve-smoke-registry-'))
const logged = await logModels(server.url, 'summer', cwd)

t.test('models:/name@alias: the report names the resolved version; --cases stand in for a missing example', async (t) => {
  const casesFile = path.join(cwd, 'cases.json')
  await writeFile(
    casesFile,
    JSON.stringify([{name: 'one plus two', body: {dataframe_split: {columns: ['a', 'b'], data: [[1, 2]]}}, expect: {predictions: [3]}}]),
  )
  const result = await runMlserve(
    [
      'smoke',
      '-m',
      'models:/summer@champion',
      '--env-manager',
      'local',
      '--python',
      toolchainPython(),
      '--cases',
      casesFile,
      '--json',
      '--junit',
      path.join(cwd, 'smoke.xml'),
    ],
    {env: toolchainEnv({MLFLOW_TRACKING_URI: server.url, MLSERVE_MODEL_ROOT: path.join(cwd, 'models')}), cwd},
  )
  t.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as {
    model: {uri: string; version: string}
    cases: Array<{name: string; status: string; message?: string}>
  }
  t.same(report.model.uri, 'models:/summer@champion')
  t.equal(report.model.version, logged.versions[0], 'the version @champion points at')
  t.same(
    report.cases.map((c) => [c.name, c.status]),
    [
      ['start-up', 'passed'],
      ['health', 'passed'],
      ['input example', 'skipped'],
      ['one plus two', 'passed'],
      ['bad input is refused', 'skipped'],
      ['output schema', 'skipped'],
    ],
  )
  t.match(result.stderr, /\n3 passed, 0 failed, 3 skipped\n$/)
})
