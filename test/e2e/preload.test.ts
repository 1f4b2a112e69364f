// --preload: one Python process loads the model, the -w scorers are forked from it. Same answers as
// mlflow models serve; a killed fork is replaced by a new fork of the same loaded process; a killed
// loaded process is replaced by a new one; nothing outlives mlserve killed with SIGKILL; a model whose
// load starts a thread falls back to spawning. The `control` fixture answers with its pid.
import {execFile} from 'node:child_process'
import {mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import t, {type Test} from 'tap'
import {fetch} from 'undici'

import {JSON_TYPE, compareModel, split} from '../helpers/compare.js'
import {act, controlClient as client, loadLoop, servingPids} from '../helpers/control.js'
import {frameConnections} from '../helpers/frames.js'
import {eventually, isRunning as running, killIfAlive, parentOf, readyScorers, startMlserve, type Server} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

t.teardown(() => client.close())
// Every test starts its own server (and kills only what it started): two run at a time. Nothing a test waits on
// blocks the event loop (no synchronous child processes), so the other test goes on meanwhile.
t.jobs = 2

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-preload-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))

const metricsOf = async (server: Server) => (await fetch(`${server.url}/metrics`, {dispatcher: client})).text()

t.test('the same answers as mlflow models serve (a representative subset of the contract)', (t) =>
  compareModel(
    t,
    fixtureModel('sum'),
    [
      {name: 'GET /ping', method: 'GET', path: '/ping', expect: {status: 200, body: '\n', contentType: JSON_TYPE}},
      {name: 'GET /version', method: 'GET', path: '/version', expect: {status: 200, body: /^\d+\.\d+\.\d+$/}},
      {name: 'unknown route is 404', method: 'GET', path: '/nope', expect: {status: 404, body: '{"detail":"Not Found"}'}},
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
        expect: {status: 200, body: '{"predictions": [3, 7]}', contentType: JSON_TYPE},
      },
      {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n3,4\n', expect: {status: 200, body: '{"predictions": [3, 7]}'}},
      {name: 'a missing column', contentType: JSON_TYPE, body: split(['a'], [[1]]), expect: {status: 400}},
      {name: 'invalid JSON', contentType: JSON_TYPE, body: '{"dataframe_split": ', expect: {status: 400}},
      {name: 'unsupported content type', contentType: 'text/plain', body: 'a', expect: {status: 415}},
    ],
    {mlserveArgs: ['--preload', '-w', '2']},
  ),
)

/** mlserve -w 2 --preload on the control model, both forks ready; the server and the loaded process stop with the test. */
async function startPreloaded(t: Test) {
  const server = await startMlserve(['-m', fixtureModel('control'), '-w', '2', '--preload'])
  t.teardown(() => server.stop('SIGKILL'))
  const [, loaderText] = await server.waitForOutput(/--preload: the model is loaded once in pid (\d+) \(start 1\)/)
  const loader = Number(loaderText)
  t.teardown(() => killIfAlive(loader))
  await readyScorers(server, 2)
  return {server, loader}
}

t.test('-w 2 --preload: forks of one loaded process; a kill -9 under load is replaced by a new fork at once', async (t) => {
  const {server, loader} = await startPreloaded(t)
  const before = await servingPids(server, 2)
  t.equal(before.size, 2, 'both scorers answer')
  for (const pid of before) t.equal(parentOf(pid), loader, `scorer ${pid} is a fork of the loaded process`)
  let metrics = await metricsOf(server)
  t.match(metrics, /mlserve_scorer_mode\{mode="preload"\} 1\n/, '/metrics says which mode serves')

  const load = loadLoop(server, 4)
  const {statuses} = load
  t.ok(await eventually(() => statuses.length >= 8), 'the load is flowing before the kill')
  const victim = [...before][0]!
  process.kill(victim, 'SIGKILL')
  await server.waitForOutput(/was killed by SIGKILL while serving/)
  await server.waitForOutput(/restarting scorer \d in 0 ms \(failure 1 in a row\)/)
  await server.waitForOutput(/start 2, forked\)[\s\S]*scorer \d is ready \(pid \d+\), \d+ ms after its predecessor failed/)
  await load.stop()

  t.ok(statuses.length > 10, `requests kept flowing (${statuses.length})`)
  t.same(
    [...new Set(statuses)].filter((status) => status !== 200 && status !== 502),
    [],
    'every request got 200, or a 502 envelope if it was on the killed scorer',
  )
  const after = await servingPids(server, 2)
  t.equal(after.size, 2, 'two scorers serve again')
  t.notOk(after.has(victim), 'the killed one was replaced')
  for (const pid of after) t.equal(parentOf(pid), loader, `scorer ${pid} is a fork of the same loaded process, not a fresh interpreter`)
  t.equal(server.stderr().match(/the model is loaded once in pid/g)?.length, 1, 'the model was not loaded again')
  metrics = await metricsOf(server)
  t.match(metrics, /mlserve_scorer_restarts_total\{reason="exited"\} 1\n/)
  t.match(metrics, /mlserve_scorer_restart_seconds_count 1\n/, 'the restart and its duration are in /metrics')
})

t.test('kill -9 of the loaded process: its scorers go with it and a new loaded process starts', async (t) => {
  const {server, loader} = await startPreloaded(t)
  const before = await servingPids(server, 2)
  t.equal(before.size, 2)

  process.kill(loader, 'SIGKILL')
  const ended = await Promise.all([...before].map(async (pid) => eventually(() => !running(pid))))
  t.same(ended, [true, true], 'its scorers are gone too')
  const [, nextText] = await server.waitForOutput(/--preload: the model is loaded once in pid (\d+) \(start 2\)/)
  const next = Number(nextText)
  t.teardown(() => killIfAlive(next))
  t.not(next, loader, 'a new process loads the model')
  await server.waitForOutput(/scorer \d is ready \(pid \d+\)[^\n]*\n[\s\S]*scorer \d is ready \(pid \d+\)/)
  const after = await servingPids(server, 2)
  t.equal(after.size, 2, 'two scorers serve again')
  for (const pid of after) t.equal(parentOf(pid), next, `scorer ${pid} is a fork of the new loaded process`)
})

t.test(
  'a frozen loaded process (SIGSTOP) whose forks are killed: it is killed after its deadline and a new loaded process starts',
  async (t) => {
    const server = await startMlserve(['-m', fixtureModel('control'), '-w', '2', '--preload', '--liveness-interval', '1'])
    t.teardown(() => server.stop('SIGKILL'))
    const [, loaderText] = await server.waitForOutput(/--preload: the model is loaded once in pid (\d+) \(start 1\)/)
    const loader = Number(loaderText)
    t.teardown(() => killIfAlive(loader))
    await readyScorers(server, 2)
    const forks = await servingPids(server, 2)

    process.kill(loader, 'SIGSTOP')
    for (const pid of forks) process.kill(pid, 'SIGKILL')
    await server.waitForOutput(
      /--preload: the process that loaded the model \(pid \d+\) did not (report the exit of scorer pid \d+|fork a scorer) within \d+ s: killing it/,
    )
    t.ok(await eventually(() => !running(loader)), 'the frozen process is killed')
    const [, nextText] = await server.waitForOutput(/--preload: the model is loaded once in pid (\d+) \(start 2\)/)
    const next = Number(nextText)
    t.teardown(() => killIfAlive(next))
    await server.waitForOutput(/scorer \d is ready \(pid \d+\)[^\n]*\n[\s\S]*scorer \d is ready \(pid \d+\)/)
    const after = await servingPids(server, 2)
    t.equal(after.size, 2, 'two scorers serve again')
    for (const pid of after) t.equal(parentOf(pid), next, `scorer ${pid} is a fork of the new loaded process`)
    const livez = await fetch(`${server.url}/livez`, {dispatcher: client})
    t.equal(livez.status, 200, '/livez: alive, and rightly so')
  },
)

t.test('kill -9 of mlserve: the loaded process and every fork go too', async (t) => {
  const {server, loader} = await startPreloaded(t)
  const forks = await servingPids(server, 2)
  for (const pid of forks) t.teardown(() => killIfAlive(pid))
  // One of them busy with a prediction that would run for minutes.
  void act(server, 'sleep:120')
  await server.waitForOutput(/control model: sleeping in pid \d+/)

  server.child.kill('SIGKILL')
  await server.exited
  t.ok(await eventually(() => !running(loader)), 'the loaded process is gone')
  const ended = await Promise.all([...forks].map(async (pid) => eventually(() => !running(pid))))
  t.same(ended, [true, true], 'every fork is gone')
})

t.test('a model whose load starts a thread: a warning naming why, then the spawn mode serves it', async (t) => {
  const model = path.join(scratch, 'threaded')
  const script = path.join(scratch, 'save_threaded.py')
  writeFileSync(
    script,
    [
      'import sys, threading, time, mlflow',
      'class Threaded(mlflow.pyfunc.PythonModel):',
      '    def load_context(self, context):',
      '        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()',
      '    def predict(self, context, model_input, params=None):',
      '        return [threading.active_count()]',
      'mlflow.pyfunc.save_model(sys.argv[1], python_model=Threaded())',
      '',
    ].join('\n'),
  )
  await promisify(execFile)(toolchainPython(), [script, model], {env: toolchainEnv(), cwd: scratch})

  const server = await startMlserve(['-m', model, '-w', '2', '--preload'])
  t.teardown(() => server.stop('SIGKILL'))
  await server.waitForOutput(/--preload: loading the model started 1 thread\(s\)[^\n]*falling back to the spawn mode/)
  const res = await fetch(`${server.url}/invocations`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: split(['x'], [[1]]),
  })
  t.equal(res.status, 200, 'it serves')
  t.match(await res.text(), /^\{"predictions": \[\d+\]\}$/)
  t.ok(frameConnections(server) >= 1, 'the spawned scorers speak frames (the lean protocol), as in the spawn mode')
  t.match(await metricsOf(server), /mlserve_scorer_mode\{mode="spawn"\} 1\n/, '/metrics says the spawn mode serves')
  t.match(server.stderr(), /scorer 1 started \(pid \d+, start 1\)/)
})

t.test('a model whose load opens a TCP connection: a warning naming it, then the spawn mode: every answer to its own client', async (t) => {
  // A "feature store": answers each line it gets with the same line, on the connection it came on.
  const store = createServer((socket) => socket.pipe(socket))
  await new Promise<void>((resolve) => store.listen(0, '127.0.0.1', resolve))
  t.teardown(() => store.close())
  const {port} = store.address() as AddressInfo
  const model = path.join(scratch, 'connected')
  const script = path.join(scratch, 'save_connected.py')
  writeFileSync(
    script,
    [
      'import socket, sys, threading, mlflow',
      'class Connected(mlflow.pyfunc.PythonModel):',
      '    def load_context(self, context):',
      `        self.conn = socket.create_connection(("127.0.0.1", ${port}))`,
      '        self.lines = self.conn.makefile("rb")',
      '        self.lock = threading.Lock()  # one request at a time on it within a process',
      '    def predict(self, context, model_input, params=None):',
      '        x = int(model_input["x"].iloc[0])',
      '        with self.lock:',
      '            self.conn.sendall(b"%d\\n" % x)',
      '            return [int(self.lines.readline())]',
      'mlflow.pyfunc.save_model(sys.argv[1], python_model=Connected())',
      '',
    ].join('\n'),
  )
  await promisify(execFile)(toolchainPython(), [script, model], {env: toolchainEnv(), cwd: scratch})

  const server = await startMlserve(['-m', model, '-w', '2', '--preload'])
  t.teardown(() => server.stop('SIGKILL'))
  await server.waitForOutput(/--preload: loading the model left open[^\n]*socket[^\n]*falling back to the spawn mode/)
  await readyScorers(server, 2)
  const answers = await Promise.all(
    Array.from({length: 200}, async (_, x) => {
      const res = await fetch(`${server.url}/invocations`, {
        dispatcher: client,
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: split(['x'], [[x]]),
      })
      return `${res.status} ${await res.text()}`
    }),
  )
  t.same(
    answers.filter((answer, x) => answer !== `200 {"predictions": [${x}]}`),
    [],
    'each of 200 concurrent clients gets its own answer',
  )
  t.match(await metricsOf(server), /mlserve_scorer_mode\{mode="spawn"\} 1\n/, '/metrics says the spawn mode serves')
})

/** The pid of mlserve's child that runs preload.py, once it runs. */
async function loaderOf(server: Server): Promise<number | undefined> {
  let found: number | undefined
  await eventually(() => {
    for (const entry of readdirSync('/proc')) {
      try {
        if (parentOf(Number(entry)) !== server.child.pid) continue
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('preload.py')) found = Number(entry)
      } catch {}
    }

    return found !== undefined
  })
  return found
}

t.test('a model that does not load within --load-timeout: LOAD_TIMEOUT (44), the loading process is killed', async (t) => {
  // The fixture sleeps 3 s in its load.
  const server = await startMlserve(['-m', fixtureModel('slowload'), '--preload'], {
    waitReady: false,
    env: toolchainEnv({MLSERVE_LOAD_TIMEOUT: '1'}),
  })
  t.teardown(() => server.stop('SIGKILL'))
  const loader = await loaderOf(server)
  t.ok(loader, 'a process loads the model')
  const exit = await server.exited
  t.equal(exit.code, 44)
  t.match(server.stderr(), /The model did not load: the process loading it \(--preload\) took longer than 1 s \(--load-timeout\)/)
  t.ok(await eventually(() => !running(loader!)), 'the loading process is gone')
})
