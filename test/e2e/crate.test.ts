// R crate models through `mlserve serve`: the R scorer's contract passes through the proxy unchanged,
// and crate models get what pyfunc models get (/health, /version, workers, timeouts, replacement).
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {Agent, fetch} from 'undici'

import {readyScorers, runMlserve, startMlserve, type Server} from '../helpers/servers.js'
import {REPO_ROOT, toolchainBin} from '../helpers/toolchain.js'

const root = mkdtempSync(path.join(tmpdir(), 'mlserve-crate-serve-'))
t.teardown(() => rmSync(root, {recursive: true, force: true}))
execFileSync('Rscript', [path.join(REPO_ROOT, 'test', 'fixtures', 'save_crate.R'), root], {stdio: 'inherit'})
const model = (name: string) => path.join(root, name)

const client = new Agent({pipelining: 0})
t.teardown(() => client.close())

async function call(server: Server, route: string, body?: string, contentType = 'application/json') {
  const res = await fetch(server.url + route, {
    dispatcher: client,
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : {'content-type': contentType},
    body,
  })
  return {status: res.status, contentType: res.headers.get('content-type'), body: await res.text()}
}

t.test('the R scorer contract through the proxy, with /health and /version from mlserve', async (t) => {
  const server = await startMlserve(['-m', model('double'), '--env-manager', 'virtualenv'])
  t.teardown(() => server.stop())
  t.match(server.stderr(), /prepare R scorer \(mlserve's R scorer\)/)
  t.match(server.stderr(), /--env-manager virtualenv does not apply to R crate models/)

  t.same(await call(server, '/invocations', '{"dataframe_split": {"columns": ["x"], "data": [[1], [2]]}}'), {
    status: 200,
    contentType: 'application/json; charset=UTF-8',
    body: '[2,4]',
  })
  t.same(await call(server, '/invocations', '[{"x": 3}, {"x": 4}]'.replace(/^/, '{"dataframe_records": ').replace(/$/, '}')), {
    status: 200,
    contentType: 'application/json; charset=UTF-8',
    body: '[6,8]',
  })
  t.same(await call(server, '/invocations', 'x\n5\n6\n', 'text/csv'), {
    status: 200,
    contentType: 'application/json; charset=UTF-8',
    body: '[10,12]',
  })
  t.same(await call(server, '/invocations', '{"inputs": [[1]]}'), {
    status: 404,
    contentType: 'text/plain; charset=UTF-8',
    body: "Invalid Request.  Invalid input. The input must contain 'dataframe_split' or 'dataframe_records' but not both. Got input fields inputs",
  })
  t.same(await call(server, '/invocations', '{}', 'application/json; charset=utf-8'), {
    status: 404,
    contentType: 'text/plain; charset=UTF-8',
    body: 'Invalid Request.  Unsupported input format.',
  })

  const ping = await call(server, '/ping')
  t.same(ping, {status: 200, contentType: 'application/json; charset=UTF-8', body: ''})
  t.same(await call(server, '/health'), ping, "/health is the R scorer's /ping (the R server has no /health)")
  const {version} = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {version: string}
  t.same(await call(server, '/version'), {status: 200, contentType: 'application/json', body: version}, 'R models record no mlflow version')
  t.equal((await call(server, '/a/b')).body, 'Invalid Request.  Invalid path.')
})

t.test("a model error is the R scorer's 404", async (t) => {
  const server = await startMlserve(['-m', model('boom')])
  t.teardown(() => server.stop())
  t.same(await call(server, '/invocations', '{"dataframe_split": {"columns": ["x"], "data": [[1]]}}'), {
    status: 404,
    contentType: 'text/plain; charset=UTF-8',
    body: 'Invalid Request.  boom',
  })
})

t.test('-w 2 runs two R processes; a stuck one gets 504 and is replaced', async (t) => {
  const server = await startMlserve(['-m', model('pid'), '-w', '2'])
  t.teardown(() => server.stop())
  await readyScorers(server, 2)
  const pids = new Set<string>()
  for (let i = 0; i < 20 && pids.size < 2; i++) {
    // eslint-disable-next-line no-await-in-loop
    pids.add((await call(server, '/invocations', '{"dataframe_split": {"columns": ["x"], "data": [[1]]}}')).body)
  }

  t.equal(pids.size, 2, 'two R processes answer')

  const slow = await startMlserve(['-m', model('slow'), '-t', '1', '--timeout-grace', '1'])
  t.teardown(() => slow.stop())
  const stuck = await call(slow, '/invocations', '{"dataframe_split": {"columns": ["seconds"], "data": [[30]]}}')
  t.same(stuck, {status: 504, contentType: 'application/json', body: 'Request processing time exceeded limit'})
  await slow.waitForOutput(/starting a fresh scorer to replace it/)
  await slow.waitForOutput(/scorer is ready \(pid \d+\)/)
  t.same(await call(slow, '/invocations', '{"dataframe_split": {"columns": ["seconds"], "data": [[0]]}}'), {
    status: 200,
    contentType: 'application/json; charset=UTF-8',
    body: '0',
  })
})

t.test('prepare-env has nothing to do for a crate model, and says so', async (t) => {
  const result = await runMlserve(['prepare-env', '-m', model('double')])
  t.equal(result.code, 0)
  t.equal(result.stdout, '')
  t.match(result.stderr, /an R crate model has no Python environment to prepare/)
})

t.test('no Rscript: a clear error naming the Debian packages (exit 27)', async (t) => {
  const result = await runMlserve(['serve', '-m', model('double'), '-p', '0'], {env: {PATH: toolchainBin(), HOME: process.env.HOME ?? '/root'}})
  t.equal(result.code, 27)
  t.match(result.stderr, /Rscript/)
  t.match(result.stderr, /apt-get install -y --no-install-recommends r-base-core r-cran-httpuv r-cran-jsonlite/)
})
