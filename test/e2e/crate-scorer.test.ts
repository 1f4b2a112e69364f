// mlserve's R scorer (templates/r/scorer.R) run directly on crate models saved as mlflow's R package saves
// them: byte-exact status, content type and body of mlflow_rfunc_serve's contract (spec 6.3, tests 58-61).
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'
import {Pool} from 'undici'

import {templatePath} from '../../src/paths.js'
import {freePort, spawnProc, type Proc} from '../helpers/servers.js'
import {REPO_ROOT} from '../helpers/toolchain.js'

const root = mkdtempSync(path.join(tmpdir(), 'mlserve-crate-'))
t.teardown(() => rmSync(root, {recursive: true, force: true}))
execFileSync('Rscript', [path.join(REPO_ROOT, 'test', 'fixtures', 'save_crate.R'), root], {stdio: 'inherit'})

const env = {...process.env} as Record<string, string>
const JSON_UTF8 = 'application/json; charset=UTF-8'
const TEXT_UTF8 = 'text/plain; charset=UTF-8'

interface Answer {
  readonly status: number
  readonly contentType: string | undefined
  readonly body: string
}

interface Scorer {
  readonly proc: Proc
  request(method: string, route: string, body?: string, contentType?: string): Promise<Answer>
}

/** Starts scorer.R for a fixture model on `endpoint` and resolves once it says it listens. */
async function startScorer(t: Test, model: string, endpoint: (dir: string) => string | Promise<string>): Promise<Scorer> {
  const dir = mkdtempSync(path.join(root, 'sock-'))
  const where = await endpoint(dir)
  const proc = spawnProc('Rscript', [templatePath('r', 'scorer.R'), path.join(root, model), where], {env})
  const pool = where.startsWith('unix:') ? new Pool('http://localhost', {socketPath: where.slice('unix:'.length)}) : new Pool(`http://${where}`)
  t.teardown(async () => {
    await pool.close()
    await proc.stop('SIGTERM')
  })
  await proc.waitForOutput(/mlserve R scorer listening on /)
  return {
    proc,
    async request(method, route, body, contentType) {
      const res = await pool.request({
        method,
        path: route,
        body,
        headers: contentType === undefined ? {} : {'content-type': contentType},
      })
      const type = res.headers['content-type']
      return {status: res.statusCode, contentType: Array.isArray(type) ? type.join(', ') : type, body: await res.body.text()}
    },
  }
}

const unix = (dir: string) => `unix:${path.join(dir, 'scorer.sock')}`
const ok = (body: string): Answer => ({status: 200, contentType: JSON_UTF8, body})
const invalid = (message: string): Answer => ({status: 404, contentType: TEXT_UTF8, body: `Invalid Request.  ${message}`})
const split = (value: unknown) => JSON.stringify({dataframe_split: value})
const ONE_OF = "Invalid input. The input must contain 'dataframe_split' or 'dataframe_records' but not both. Got input fields"

t.test('the doubling model on a Unix socket: mlflow_rfunc_serve answers (spec 8.5, tests 58-61)', async (t) => {
  const scorer = await startScorer(t, 'double', unix)
  const post = (body: string, contentType?: string) => scorer.request('POST', '/invocations', body, contentType)

  t.same(await scorer.request('GET', '/ping'), ok(''), '61: GET /ping is 200 with an empty body')
  t.same(await post(split({columns: ['x'], data: [[1], [2]]}), 'application/json'), ok('[2,4]'), '58: bare predictions')
  t.same(await post('{"inputs": [[1]]}', 'application/json'), invalid(`${ONE_OF} inputs`), '59: inputs is not supported')
  t.same(
    await post(split({columns: ['x'], data: [[1]]}), 'application/json; charset=utf-8'),
    invalid('Unsupported input format.'),
    '60: a content-type parameter is refused',
  )
  t.same(
    await post(split({columns: ['x'], data: [[3]]})),
    ok('6'),
    'no content type is application/json; auto_unbox makes one prediction a bare number',
  )
  t.same(await post('{"dataframe_records": [{"x": 1}, {"x": 5}]}', 'application/json'), ok('[2,10]'), 'dataframe_records')
  t.same(await post('x\n1\n3\n', 'text/csv'), ok('[2,6]'), 'CSV')
  t.same(await post(split({columns: ['x', 'y'], data: [[1, 2], [3]]}), 'application/json'), ok('[2,6]'), 'ragged split rows')
  t.same(
    await post('{"inputs": [[1]], "params": {}}', 'application/json'),
    invalid(`${ONE_OF} inputs${ONE_OF} params`),
    "R's paste() over several field names, joined by stop()",
  )
  t.same(
    await post('{"dataframe_split": {"cols": ["x"], "data": [[1]]}}', 'application/json'),
    invalid(
      "Invalid input. Make sure the input json data is in 'split' format. cols" +
        "Invalid input. Make sure the input json data is in 'split' format. data",
    ),
    'split keys other than columns, index, data',
  )
  t.same(await post('[{"x": 4}]', 'text/plain'), invalid('Unsupported input format.'), 'another content type')
  t.same(await scorer.request('GET', '/invocations', split({columns: ['x'], data: [[2]]}), 'application/json'), ok('4'), 'any method')
  t.same(await scorer.request('POST', '/predict', '{"x": [4, 5]}'), ok('[8,10]'), 'the deprecated /predict route: columns')
  t.same(await scorer.request('POST', '/predict', '[{"x": 4}, {"x": 5}]'), ok('8'), '/predict: records become one row (x, x.1)')
  t.same(await scorer.request('GET', '/health'), invalid("argument 'x' must be a raw vector"), '61: no /health')
  t.same(await scorer.request('GET', '/version'), invalid("argument 'x' must be a raw vector"), '61: no /version')
  t.same(await scorer.request('GET', '/a/b'), invalid('Invalid path.'), 'deeper paths')
  t.same(await scorer.request('GET', '/'), {status: 200, contentType: 'text/html', body: '<html></html>'}, '/ without swagger')
})

t.test('data frame results, row names and padded cells', async (t) => {
  const frame = await startScorer(t, 'frame', unix)
  t.same(
    await frame.request('POST', '/invocations', split({columns: ['x'], data: [[1], [2.5]]}), 'application/json'),
    ok('[{"y":2,"label":"row1"},{"y":5,"label":"row2"}]'),
  )

  const echo = await startScorer(t, 'echo', unix)
  t.same(
    await echo.request('POST', '/invocations', split({columns: ['x', 'y'], index: ['a', 'b'], data: [[1, 2], [3]]}), 'application/json'),
    ok('[{"x":1,"y":2,"_row":"a"},{"x":3,"_row":"b"}]'),
    'the index becomes row names; the NA a short row is padded with is left out',
  )
  t.same(
    await echo.request('POST', '/invocations', 'x,s\n1,a\n2.5,b\n', 'text/csv'),
    ok('[{"x":1,"s":"a"},{"x":2.5,"s":"b"}]'),
    'CSV strings stay strings',
  )
})

t.test('an error in the model is a 404 with its message', async (t) => {
  const scorer = await startScorer(t, 'boom', unix)
  t.same(await scorer.request('POST', '/invocations', split({columns: ['x'], data: [[1]]}), 'application/json'), invalid('boom'))
  t.same(await scorer.request('GET', '/ping'), ok(''), 'and the scorer keeps serving')
})

t.test('listens on host:port too, and SIGTERM ends it', async (t) => {
  const scorer = await startScorer(t, 'double', async () => `127.0.0.1:${await freePort()}`)
  t.same(await scorer.request('POST', '/invocations', split({columns: ['x'], data: [[21]]}), 'application/json'), ok('42'))
  t.same(await scorer.proc.stop('SIGTERM'), {code: null, signal: 'SIGTERM'}, "R's default SIGTERM handling ends it")
})

t.test('a model directory without a crate fails at start-up', async (t) => {
  const proc = spawnProc('Rscript', [templatePath('r', 'scorer.R'), root, `unix:${path.join(root, 'none.sock')}`], {env})
  t.teardown(() => proc.stop('SIGKILL'))
  const exit = await proc.exited
  t.not(exit.code, 0)
  t.match(proc.stderr(), /MLmodel/)
})
