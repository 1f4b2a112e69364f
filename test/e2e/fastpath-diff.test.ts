// The fast path's and the lean protocol's answers, compared in-process with MLflow's own scoring app on the
// same model: every request goes to both ASGI apps and to the lean handler (test/fixtures/fastpath_diff.py)
// and status, headers and body must be the same. Key cases also carry an absolute expectation, so that two equally broken apps still fail.
import {execFileSync, spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {createInterface} from 'node:readline'

import t, {type Test} from 'tap'

import {REPO_ROOT, fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

interface Request {
  readonly name: string
  readonly method?: string
  readonly path?: string
  readonly headers?: ReadonlyArray<readonly [string, string]>
  readonly contentType?: string
  readonly body?: string | Buffer
  readonly expect?: {readonly status: number; readonly body?: string | RegExp}
}

interface Answer {
  readonly status: number
  readonly headers: Array<[string, string]>
  readonly body: string
}

const DRIVER = path.join(REPO_ROOT, 'test/fixtures/fastpath_diff.py')

/** Runs `requests` through both apps for `model`; returns the fast path's refusal (null: on) and the pairs. */
async function diff(model: string, requests: readonly Request[], env: Record<string, string> = {}) {
  const child = spawn(toolchainPython(), [DRIVER, model], {env: toolchainEnv(env), stdio: ['pipe', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  for (const request of requests) {
    const headers = [...(request.headers ?? [])]
    const body = Buffer.from(request.body ?? '')
    if (request.contentType !== undefined) headers.push(['content-type', request.contentType])
    if (!headers.some(([name]) => name.toLowerCase() === 'content-length')) headers.push(['content-length', String(body.length)])
    child.stdin.write(
      JSON.stringify({method: request.method ?? 'POST', path: request.path ?? '/invocations', headers, body: body.toString('base64')}) + '\n',
    )
  }

  child.stdin.end()
  const lines: string[] = []
  for await (const line of createInterface({input: child.stdout})) lines.push(line)
  const [code] = (await once(child, 'exit')) as [number]
  if (code !== 0) throw new Error(`fastpath_diff.py exited ${code}: ${stderr}`)
  const [header, leanHeader, ...answers] = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  return {
    leanRefusal: leanHeader?.lean_refusal as string | null,
    leanRefusalOtherRoute: leanHeader?.lean_refusal_other_route as string | null,
    refusal: header?.refusal as string | null,
    moduleRefusal: header?.module_refusal as string | null,
    refusals: {route: header?.refusal_extra_route as string | null, middleware: header?.refusal_extra_middleware as string | null},
    answers: answers as Array<{mlflow: Answer; fast: Answer; lean: Answer; predicts: {mlflow: number; fast: number; lean: number}}>,
  }
}

async function compare(t: Test, model: string, requests: readonly Request[], env: Record<string, string> = {}) {
  const {refusal, moduleRefusal, refusals, answers, leanRefusal, leanRefusalOtherRoute} = await diff(model, requests, env)
  t.equal(refusal, null, 'the fast path takes this model')
  t.equal(leanRefusal, null, 'the lean protocol takes this model')
  t.match(leanRefusalOtherRoute, /does not call scoring_server.invocations/, 'an /invocations route that calls something else is refused')
  t.equal(moduleRefusal, null, "mlflow's app module is the one the fast path reproduces")
  t.match(refusals.route, /other routes than .*\/extra/, 'an app with another route is refused, naming it')
  t.match(refusals.middleware, /has 2 middlewares/, 'an app with another middleware is refused')
  t.equal(answers.length, requests.length, 'every request was answered by both apps')
  for (const [index, request] of requests.entries()) {
    const answer = answers[index]!
    t.same(answer.fast, answer.mlflow, `${request.name}: the fast path answers as mlflow's app does`)
    // An app that raises is uvicorn's 500 (starlette's ServerErrorMiddleware sends it first).
    const mlflow = 'exception' in answer.mlflow ? APP_CRASHED : answer.mlflow
    t.same(answer.lean, mlflow, `${request.name}: the lean protocol answers as mlflow's app does`)
    // A model that logs its predictions: each app predicts once per request, whatever it answers.
    if (env.MLSERVE_TEST_PREDICT_LOG) t.same(answer.predicts, {mlflow: 1, fast: 1, lean: 1}, `${request.name}: one prediction each`)
    if (request.expect) {
      t.equal(answer.fast.status, request.expect.status, `${request.name}: status`)
      if (typeof request.expect.body === 'string') t.equal(answer.fast.body, request.expect.body, `${request.name}: body`)
      else if (request.expect.body) t.match(answer.fast.body, request.expect.body, `${request.name}: body`)
    }
  }
}

const JSON_TYPE = 'application/json'
const APP_CRASHED = {
  status: 500,
  headers: [
    ['content-length', '21'],
    ['content-type', 'text/plain; charset=utf-8'],
  ],
  body: 'Internal Server Error',
}
const SUM_OK = {status: 200, body: '{"predictions": [3, 7]}'}
const SPLIT = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'

t.test('sum: formats, content types and input errors', (t) =>
  compare(t, fixtureModel('sum'), [
    {name: 'dataframe_split', contentType: JSON_TYPE, body: SPLIT, expect: SUM_OK},
    {name: 'dataframe_records', contentType: JSON_TYPE, body: '{"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}', expect: SUM_OK},
    {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n3,4\n', expect: SUM_OK},
    {name: 'instances', contentType: JSON_TYPE, body: '{"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}', expect: SUM_OK},
    {name: 'inputs', contentType: JSON_TYPE, body: '{"inputs": {"a": [1, 3], "b": [2, 4]}}', expect: SUM_OK},
    {
      name: 'params',
      contentType: JSON_TYPE,
      body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}, "params": {"scale": 10}}',
      expect: {status: 200, body: '{"predictions": [30, 70]}'},
    },
    {name: 'charset=UTF-8', contentType: 'application/json; charset=UTF-8', body: SPLIT, expect: SUM_OK},
    {name: 'charset=latin-1 is 415', contentType: 'application/json; charset=latin-1', body: SPLIT, expect: {status: 415}},
    {name: 'unknown parameter is 415', contentType: 'application/json; format=pandas-split', body: SPLIT, expect: {status: 415}},
    {name: 'form-encoded is 415', contentType: 'application/x-www-form-urlencoded', body: 'a=1', expect: {status: 415}},
    {name: 'upper-case media type is 415', contentType: 'APPLICATION/JSON', body: SPLIT, expect: {status: 415}},
    {name: 'no content type (mlflow app answers)', body: SPLIT},
    {name: 'bad JSON is 400', contentType: JSON_TYPE, body: '{"dataframe_split": ', expect: {status: 400}},
    {name: 'no known key is 400', contentType: JSON_TYPE, body: '{"rows": []}', expect: {status: 400}},
    {name: 'two keys is 400', contentType: JSON_TYPE, body: '{"inputs": [], "instances": []}', expect: {status: 400}},
    {
      name: 'missing column is 400',
      contentType: JSON_TYPE,
      body: '{"dataframe_split": {"columns": ["a"], "data": [[1]]}}',
      expect: {status: 400},
    },
    {name: 'bad CSV', contentType: 'text/csv', body: '\u0000\u0001', expect: {status: 400}},
    {name: 'invalid UTF-8 CSV', contentType: 'text/csv', body: Buffer.from([0x61, 0x0a, 0xff, 0xfe])},
    {name: 'empty body', contentType: JSON_TYPE, body: '', expect: {status: 400}},
    {name: 'GET /ping', method: 'GET', path: '/ping', expect: {status: 200, body: '\n'}},
    {name: 'GET /version', method: 'GET', path: '/version', expect: {status: 200, body: /^\d+\.\d+\.\d+$/}},
    {name: 'POST /ping is 405', method: 'POST', path: '/ping', contentType: JSON_TYPE, body: '{}', expect: {status: 405}},
    {name: 'unknown route is 404', method: 'GET', path: '/nope', expect: {status: 404}},
    {name: 'GET /invocations is 405', method: 'GET', expect: {status: 405}},
  ]),
)

t.test('raise: exceptions in predict', (t) =>
  compare(t, fixtureModel('raise'), [
    {name: 'a predict that raises', contentType: JSON_TYPE, body: SPLIT, expect: {status: 400}},
    {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n'},
  ]),
)

t.test('iris: the example, a tensor-free sklearn model', (t) =>
  compare(t, path.join(REPO_ROOT, 'examples/sklearn-iris'), [
    {
      name: 'the serving example',
      contentType: JSON_TYPE,
      body: readFileSync(path.join(REPO_ROOT, 'examples/sklearn-iris/serving_input_example.json')),
      expect: {status: 200, body: '{"predictions": [0, 1, 2]}'},
    },
    {
      name: 'a wrong type',
      contentType: JSON_TYPE,
      body: '{"dataframe_split": {"columns": ["sepal_length"], "data": [["x"]]}}',
      expect: {status: 400},
    },
  ]),
)

t.test('echo, nan, hinted: other output kinds', async (t) => {
  for (const model of ['echo', 'nan', 'hinted']) {
    // One Python process at a time (each loads a model).
    // eslint-disable-next-line no-await-in-loop
    await t.test(model, (t) =>
      compare(t, fixtureModel(model), [
        {name: 'split', contentType: JSON_TYPE, body: SPLIT},
        {name: 'inputs', contentType: JSON_TYPE, body: '{"inputs": [1, 2, 3]}'},
        {name: 'llm-style input', contentType: JSON_TYPE, body: '{"messages": [{"role": "user", "content": "hi"}]}'},
        {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n'},
      ]),
    )
  }
})

// Its predict logs each call and returns what mlflow cannot serialise: invocations() raises a TypeError
// after predict, which mlflow's app answers (a 500); the fast path hands that error over, never predicting again.
const UNSERIALISABLE = `
import os, sys, mlflow
class Unserialisable(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        with open(os.environ["MLSERVE_TEST_PREDICT_LOG"], "a") as f:
            f.write("predict\\n")
        return {"value": object()}
mlflow.pyfunc.save_model(sys.argv[1], python_model=Unserialisable(), pip_requirements=["mlflow"])
`

t.test('unserialisable: an error after predict is answered by mlflow app without predicting twice', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-fastpath-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const model = path.join(dir, 'model')
  execFileSync(toolchainPython(), ['-c', UNSERIALISABLE, model], {env: toolchainEnv({MLSERVE_TEST_PREDICT_LOG: path.join(dir, 'saving.log')})})
  await compare(
    t,
    model,
    [
      {name: 'split', contentType: JSON_TYPE, body: SPLIT},
      {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n'},
    ],
    {MLSERVE_TEST_PREDICT_LOG: path.join(dir, 'predict.log')},
  )
})
