// The life of `mlserve serve` with the real scorer: 503 until ready, failures during start-up, signals,
// a scorer that dies (restarted), and that no Python process outlives mlserve on any of these paths.
import {readdirSync} from 'node:fs'
import {createServer} from 'node:net'

import t from 'tap'
import {Agent, fetch} from 'undici'

import {gone, startMlserve, waitForPing, type Proc, type Server} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const client = new Agent({pipelining: 0})
t.teardown(() => client.close())

const invoke = (server: Server, seconds: number) =>
  fetch(`${server.url}/invocations`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({dataframe_split: {columns: ['seconds'], data: [[seconds]]}}),
  })

async function scorerPid(proc: Proc): Promise<number> {
  const [, pid] = await proc.waitForOutput(/start scorer [^\n]*: pid (\d+)/)
  return Number(pid)
}

t.test('answers 503 until the model has loaded, then passes the scorer through', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('slowload')], {waitReady: false})
  t.teardown(() => server.stop())
  for (const route of ['/ping', '/health']) {
    // eslint-disable-next-line no-await-in-loop
    const res = await fetch(server.url + route, {dispatcher: client})
    t.equal(res.status, 503, `${route} before the model loaded`)
    t.equal(res.headers.get('retry-after'), '1')
    t.equal(res.headers.get('content-type'), 'application/json')
    // eslint-disable-next-line no-await-in-loop
    t.same(JSON.parse(await res.text()), {
      error_code: 'TEMPORARILY_UNAVAILABLE',
      message: 'The model server is not ready to serve requests (starting).',
    })
  }

  const early = await fetch(`${server.url}/invocations`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
  })
  t.equal(early.status, 503, '/invocations before the model loaded')
  await early.text()

  await waitForPing(server.url, server)
  const res = await fetch(`${server.url}/invocations`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
  })
  t.equal(await res.text(), '{"predictions": [3]}')
  t.match(server.stderr(), /load model in scorer \(\d/, 'the log says how long loading took')
})

t.test(
  "a scorer that fails to load exits serve with SCORER_START_FAILED (40), the scorer's own code in the message, and leaves nothing",
  async (t) => {
    const server = await startMlserve(['-m', fixtureModel('broken')], {waitReady: false})
    const pid = await scorerPid(server)
    const exit = await server.exited
    t.equal(exit.code, 40, "mlserve's own exit code, not uvicorn's 1")
    t.match(server.stderr(), /The scoring server exited with code 1 before it was ready: _pickle\.UnpicklingError/)
    t.match(server.stderr(), /code: SCORER_START_FAILED \(exit 40\)/)
    t.match(server.stderr(), /\[scorer\] .*Traceback/, 'the scorer output is shown with its prefix')
    t.ok(await gone(pid, 20_000), 'no scorer process is left')
  },
)

t.test('a model that does not load within MLSERVE_LOAD_TIMEOUT fails with LOAD_TIMEOUT (44) and leaves nothing', async (t) => {
  // The fixture sleeps 3 s in its load: it cannot answer /ping within 1 s.
  const server = await startMlserve(['-m', fixtureModel('slowload')], {waitReady: false, env: toolchainEnv({MLSERVE_LOAD_TIMEOUT: '1'})})
  const pid = await scorerPid(server)
  const exit = await server.exited
  t.equal(exit.code, 44)
  t.match(
    server.stderr(),
    /Error: The model did not load: scorer \(pid \d+\) did not answer \/ping within 1 s of its start \(--load-timeout\)\./,
  )
  t.match(server.stderr(), /code: LOAD_TIMEOUT \(exit 44\)/)
  t.ok(await gone(pid, 20_000), 'no scorer process is left')
})

t.test('SIGINT lets a request in flight finish, stops the scorer and exits 0', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('slow')])
  const pid = await scorerPid(server)
  const inFlight = invoke(server, 2)
  await server.waitForOutput(/slow model: sleeping 2\.0 s/)
  server.child.kill('SIGINT')
  const res = await inFlight
  t.equal(res.status, 200)
  t.equal(await res.text(), '{"predictions": [2.0]}')
  const exit = await server.exited
  t.equal(exit.code, 0)
  t.match(server.stderr(), /received SIGINT/)
  t.ok(await gone(pid, 20_000), 'the scorer is stopped')
})

t.test('SIGTERM stops an idle server with exit 0', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('sum')])
  const pid = await scorerPid(server)
  const exit = await server.stop('SIGTERM')
  t.equal(exit.code, 0)
  t.ok(await gone(pid, 20_000))
})

t.test('a second signal stops at once (exit 130), cutting off the request in flight', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('slow')])
  const pid = await scorerPid(server)
  const inFlight = invoke(server, 30).then(
    (res) => res.status,
    () => 'connection closed',
  )
  await server.waitForOutput(/slow model: sleeping 30\.0 s/)
  server.child.kill('SIGINT')
  await server.waitForOutput(/shutting down/)
  server.child.kill('SIGINT')
  const exit = await server.exited
  t.equal(exit.code, 130)
  t.match(server.stderr(), /stopping now/)
  t.equal(await inFlight, 'connection closed')
  t.ok(await gone(pid, 20_000))
})

t.test('if mlserve is killed with SIGKILL, its scorer does not outlive it', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('sum')])
  const pid = await scorerPid(server)
  server.child.kill('SIGKILL')
  await server.exited
  t.ok(await gone(pid, 20_000), 'the kernel stops the scorer (parent-death signal)')
})

t.test('a scorer that dies while serving is restarted, and mlserve serves on', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('sum')])
  t.teardown(() => server.stop())
  const pid = await scorerPid(server)
  process.kill(pid, 'SIGKILL')
  await server.waitForOutput(/scorer \(pid \d+\) was killed by SIGKILL while serving/)
  const [, fresh] = await server.waitForOutput(/scorer is ready \(pid (\d+)\)/)
  t.not(Number(fresh), pid)
  const res = await fetch(`${server.url}/invocations`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
  })
  t.equal(res.status, 200)
  t.equal(await res.text(), '{"predictions": [3]}')
})

t.test('a port in use fails before any environment is built or model resolved (exit 30)', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)))
  const {port} = blocker.address() as {port: number}
  const {spawnProc, MLSERVE_BIN} = await import('../helpers/servers.js')
  const envRoot = t.testdir({})
  // The default manager builds an environment for the model: with the port taken, it must never start.
  const proc = spawnProc(
    process.execPath,
    [MLSERVE_BIN, 'serve', '-m', fixtureModel('sum'), '--env-manager', 'virtualenv', '-p', String(port)],
    {
      env: toolchainEnv({MLSERVE_ENV_ROOT: envRoot}),
    },
  )
  const exit = await proc.exited
  t.equal(exit.code, 30)
  t.match(proc.stderr(), new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is already in use`))
  t.same(readdirSync(envRoot), [], 'the environment cache is untouched')
  t.notMatch(proc.stderr(), /resolve model|prepare environment/, 'neither the model nor its environment was prepared')
})

t.test('a port in use fails before any Python starts (exit 30)', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)))
  const {port} = blocker.address() as {port: number}
  const {spawnProc, MLSERVE_BIN} = await import('../helpers/servers.js')
  const {toolchainPython} = await import('../helpers/toolchain.js')
  const proc = spawnProc(process.execPath, [
    MLSERVE_BIN,
    'serve',
    '-m',
    fixtureModel('sum'),
    '--env-manager',
    'local',
    '--python',
    toolchainPython(),
    '-p',
    String(port),
  ])
  const exit = await proc.exited
  t.equal(exit.code, 30)
  t.match(proc.stderr(), new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is already in use`))
  t.notMatch(proc.stderr(), /start scorer/, 'no scorer was started')
})
