// `mlserve predict` against `mlflow models predict` on the same model and input.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {runMlserve, spawnProc} from '../helpers/servers.js'
import {fixtureModel, toolchainBin, toolchainPython} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-predict-'))
const local = ['--env-manager', 'local', '--python', toolchainPython()]

async function mlflowPredict(args: string[]) {
  const proc = spawnProc(path.join(toolchainBin(), 'mlflow'), ['models', 'predict', '--env-manager', 'local', ...args])
  const exit = await proc.exited
  return {...exit, stdout: proc.stdout(), stderr: proc.stderr()}
}

/** mlflow prints its own log lines on stdout around the prediction: keep the JSON line. */
const predictionLine = (stdout: string) =>
  stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .join('\n')

t.test('json and csv input files give the same output as mlflow models predict', async (t) => {
  const json = path.join(scratch, 'input.json')
  writeFileSync(json, '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}')
  const csv = path.join(scratch, 'input.csv')
  writeFileSync(csv, 'a,b\n1,2\n3,4\n')
  for (const [input, type] of [
    [json, 'json'],
    [csv, 'csv'],
  ] as const) {
    // eslint-disable-next-line no-await-in-loop
    const [ours, reference] = await Promise.all([
      runMlserve(['predict', '-m', fixtureModel('sum'), ...local, '-i', input, '-t', type]),
      mlflowPredict(['-m', fixtureModel('sum'), '-i', input, '-t', type]),
    ])
    t.equal(ours.code, 0, `${type}: exit 0`)
    t.equal(predictionLine(ours.stdout), '{"predictions": [3, 7]}', `${type}: the prediction on stdout`)
    t.equal(predictionLine(ours.stdout), predictionLine(reference.stdout), `${type}: same as mlflow`)
  }
})

t.test('stdin in, file out', async (t) => {
  const output = path.join(scratch, 'out.json')
  const result = await runMlserve(['predict', '-m', fixtureModel('sum'), ...local, '-o', output], {
    stdin: '{"dataframe_records": [{"a": 5, "b": 6}]}',
  })
  t.equal(result.code, 0)
  t.equal(readFileSync(output, 'utf8'), '{"predictions": [11]}')
})

t.test('a failing prediction exits non-zero with the error; a missing input is INPUT_NOT_FOUND', async (t) => {
  const json = path.join(scratch, 'one.json')
  writeFileSync(json, '{"dataframe_split": {"columns": ["a"], "data": [[1]]}}')
  const failed = await runMlserve(['predict', '-m', fixtureModel('raise'), ...local, '-i', json])
  t.not(failed.code, 0)
  t.match(failed.stderr, /this model always fails/)
  t.match(failed.stderr, /code: PREDICT_FAILED/)

  const missing = await runMlserve(['predict', '-m', fixtureModel('sum'), ...local, '-i', path.join(scratch, 'nope.json')])
  t.equal(missing.code, 16)
  t.match(missing.stderr, /The input file does not exist or cannot be read/)

  const badEnv = await runMlserve(['predict', '-m', fixtureModel('sum'), ...local, '-i', json, '--env', 'NOEQUALS'])
  t.equal(badEnv.code, 2)
  t.match(badEnv.stderr, /NOEQUALS is not a valid key value pair, expecting `key=value`/)
})

t.test('the prediction on stdout ends with a newline (a file gets exactly what mlflow writes)', async (t) => {
  const result = await runMlserve(['predict', '-m', fixtureModel('sum'), ...local], {stdin: '{"dataframe_records": [{"a": 5, "b": 6}]}'})
  t.equal(result.code, 0)
  t.match(result.stdout, /\{"predictions": \[11\]\}\n$/)
})

t.test("predict -i input_example.json (mlflow's stored example, not a request body) gets a hint about the formats", async (t) => {
  const dir = mkdtempSync(path.join(scratch, 'example-'))
  const example = path.join(dir, 'input_example.json')
  writeFileSync(example, '{"columns": ["a", "b"], "data": [[1, 2]]}')
  const result = await runMlserve(['predict', '-m', fixtureModel('sum'), ...local, '-i', example])
  t.not(result.code, 0)
  t.match(result.stderr, /hint: input_example\.json is the example mlflow stored with the model, not a request body/)
  t.match(result.stderr, /serving_input_example\.json/)
  t.match(result.stderr, /dataframe_split.*dataframe_records.*instances.*inputs/)
})
