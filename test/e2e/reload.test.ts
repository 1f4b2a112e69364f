// Following a moving model reference while serving (--reload-interval, SIGHUP), against a real
// `mlflow server`: the alias moves, a client loop keeps sending, and every answer is a 200 from the
// old version, then only from the new one; versions that cannot be prepared never replace the serving one.
import {execFile} from 'node:child_process'
import {cpSync, mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import t from 'tap'
import {Agent, fetch} from 'undici'

import {eventually, gone, isRunning, parentOf, readyScorers, startMlserve, type Server} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'
import {startTrackingServer} from '../helpers/tracking.js'

// The two tests (a tracking server's alias, a local directory) share nothing but the scratch directory: they run
// side by side.
t.jobs = 2

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-reload-'))
// Real environments are hundreds of MB: leave none behind.
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))

const ROW = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}'
const client = new Agent({connections: 4})
t.teardown(() => client.close())

interface Answer {
  readonly status: number
  readonly body: string
  readonly version: string | undefined
}

async function predict(url: string, body = ROW): Promise<Answer> {
  const res = await fetch(`${url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body, dispatcher: client})
  return {status: res.status, body: await res.text(), version: res.headers.get('x-mlserve-model-version') ?? undefined}
}

/** `loops` clients sending one request after another until stop() (bounded), every answer recorded in order. */
function clientLoop(url: string, loops = 2) {
  const answers: Array<Answer & {readonly loop: number; readonly sent: number; readonly at: number}> = []
  const errors: string[] = []
  let stopped = false
  const run = async (_: unknown, loop: number) => {
    for (let i = 0; i < 100_000 && !stopped; i++) {
      const sent = performance.now()
      try {
        // eslint-disable-next-line no-await-in-loop
        const answer = await predict(url)
        answers.push({...answer, loop, sent, at: performance.now()})
      } catch (error) {
        errors.push(String(error))
      }
    }
  }

  const running = Promise.all(Array.from({length: loops}, run))
  return {
    answers,
    errors,
    async stop() {
      stopped = true
      await running
    },
  }
}

/** Polls (bounded, generously) until an asynchronous `check` holds: an event, not a speed assertion. */
async function eventuallyAsync(check: () => Promise<boolean>, withinMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + withinMs
  // eslint-disable-next-line no-await-in-loop
  while (!(await check())) {
    if (Date.now() > deadline) return false
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 200))
  }

  return true
}

async function metrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, {dispatcher: client})).text()
}

const metric = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1))
}

/** The scorer processes (uvicorn, or the preload loader and its forks) mlserve runs now. */
function scorerPids(server: Server): number[] {
  const root = server.child.pid!
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid === root) continue
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (!/uvicorn|preload\.py/.test(cmdline) || !isRunning(pid)) continue
      // A descendant of mlserve (scorers are its children; preload forks are the loader's).
      let up = parentOf(pid)
      for (let hops = 0; hops < 4 && up > 1 && up !== root; hops++) up = parentOf(up)
      if (up === root) pids.push(pid)
    } catch {}
  }

  return pids
}

const LOG_VERSIONS = `
import json, os, sys, warnings
warnings.filterwarnings("ignore")
from importlib.metadata import version
import mlflow
import pandas as pd

class Scaled(mlflow.pyfunc.PythonModel):
    def __init__(self, scale, fail_when_served=False):
        self.scale = scale
        self.fail_when_served = fail_when_served
    def predict(self, context, model_input, params=None):
        # The scorer names the model's path in this variable; logging the model does not.
        if self.fail_when_served and os.environ.get("__pyfunc_model_path__"):
            raise ValueError("this version cannot predict once served")
        frame = pd.DataFrame(model_input)
        return ((frame["a"] + frame["b"]) * self.scale).tolist()

pinned = [f"{dist}=={version(dist)}" for dist in ("mlflow", "cloudpickle", "numpy", "pandas")]
example = pd.DataFrame({"a": [1], "b": [2]})
specs = [
    (1, pinned, False),                                               # v1: a+b
    (10, pinned + [f"scikit-learn=={version('scikit-learn')}"], False),  # v2: a new environment
    (100, pinned + ["mlserve-no-such-package==0.0.1"], False),        # v3: its environment cannot be built
    (1000, pinned, True),                                              # v4: its warm-up fails
    (7, pinned, False),                                                # v5: v1's environment, cached
]
versions = []
for scale, requirements, fail in specs:
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Scaled(scale, fail), registered_model_name=sys.argv[1],
                                       pip_requirements=requirements, input_example=example)
        versions.append(str(info.registered_model_version))
mlflow.MlflowClient().set_registered_model_alias(sys.argv[1], "champion", versions[0])
print(json.dumps(versions))
`

async function moveAlias(trackingUrl: string, name: string, version: string): Promise<number> {
  const res = await fetch(`${trackingUrl}/api/2.0/mlflow/registered-models/alias`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({name, alias: 'champion', version}),
    dispatcher: client,
  })
  if (!res.ok) throw new Error(`moving the alias failed: ${res.status} ${await res.text()}`)
  return Date.now()
}

/** The time of the first log line matching `pattern` after `from` characters of stderr. */
async function logLine(server: Server, pattern: RegExp, from: number, timeoutMs = 600_000): Promise<number> {
  const found = await eventually(() => pattern.test(server.stderr().slice(from)), timeoutMs)
  if (!found) throw new Error(`no ${pattern} in the log:\n${server.stderr().slice(from)}`)
  return Date.now()
}

t.test('models:/name@champion with --reload-interval 1 -w 2 follows the alias without a failed request', async (t) => {
  const tracking = await startTrackingServer()
  t.teardown(() => tracking.proc.stop('SIGTERM'))
  const name = 'follower'
  const {stdout} = await promisify(execFile)(toolchainPython(), ['-c', LOG_VERSIONS, name], {
    cwd: scratch,
    env: toolchainEnv({MLFLOW_TRACKING_URI: tracking.url}),
    maxBuffer: 16 * 1024 * 1024,
  })
  const versions = JSON.parse(stdout.trim().split('\n').at(-1)!) as string[]

  const server = await startMlserve(
    ['-m', `models:/${name}@champion`, '--env-manager', 'virtualenv', '-w', '2', '--reload-interval', '1', '--no-access-log'],
    {
      env: toolchainEnv({
        MLFLOW_TRACKING_URI: tracking.url,
        MLSERVE_MODEL_ROOT: path.join(scratch, 'models'),
        MLSERVE_ENV_ROOT: path.join(scratch, 'envs'),
        // A check against a stopped server fails at once instead of after the retries.
        MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0',
      }),
    },
  )
  t.teardown(() => server.stop())
  await readyScorers(server, 2)
  t.match(server.stderr(), /following models:\/follower@champion: checking every 1 s/)
  t.same(await predict(server.url), {status: 200, body: '{"predictions": [3]}', version: versions[0]})

  /** Moves the alias with the client loop running; resolves with the answers, the time to the switch and the old scorers. */
  const switchTo = async (version: string, expected: string) => {
    const before = scorerPids(server)
    const from = server.stderr().length
    const loop = clientLoop(server.url)
    await eventually(() => loop.answers.length > 20)
    const movedAt = await moveAlias(tracking.url, name, version)
    const switchedAt = await logLine(server, new RegExp(`serving ${name} version ${version} \\(was \\d+\\)`), from)
    // Some answers from the new version, then the loop stops.
    const seen = loop.answers.length
    await eventually(() => loop.answers.length > seen + 20)
    await loop.stop()
    t.same(loop.errors, [], 'no request failed')
    t.same(
      loop.answers.filter((a) => a.status !== 200),
      [],
      `all ${loop.answers.length} answers are 200s`,
    )
    const newer = `${version}:${expected}`
    const older = new Set<string>()
    // Each client sends one request after another: it sees the old version, then only the new one.
    for (const n of [0, 1]) {
      const pairs = loop.answers.filter((a) => a.loop === n).map((a) => `${a.version}:${a.body}`)
      const first = pairs.indexOf(newer)
      t.ok(first > 0, `client ${n}: the new version answers after the old one did`)
      t.same(new Set(pairs.slice(first)), new Set([newer]), `client ${n}: then only the new version answers, and its header says so`)
      for (const pair of pairs.slice(0, first)) older.add(pair)
    }

    t.equal(older.size, 1, 'before that only the old version answered')
    // Once the new version has answered anyone, every request sent after that gets it.
    const firstNew = Math.min(...loop.answers.filter((a) => `${a.version}:${a.body}` === newer).map((a) => a.at))
    t.same(
      loop.answers.filter((a) => a.sent > firstNew && `${a.version}:${a.body}` !== newer),
      [],
      'no request sent after the switch reaches the old version',
    )
    t.ok(await eventually(() => before.every((pid) => !isRunning(pid)), 60_000), 'no scorer of the old generation is left')
    t.equal(scorerPids(server).length, 2, 'the new generation has its -w 2 scorers')
    return {seconds: (switchedAt - movedAt) / 1000, requests: loop.answers.length}
  }

  const newEnv = await switchTo(versions[1]!, '{"predictions": [30]}')
  t.comment(`v1 -> v2 (a new environment): switched ${newEnv.seconds} s after the alias moved; ${newEnv.requests} requests, all 200`)
  const text = await metrics(server.url)
  t.equal(
    metric(
      text,
      `mlserve_model_info{uri="models:/${name}@champion",version="${versions[1]}",run_id="${/run_id="([^"]*)"/.exec(text)?.[1]}",generation="2"}`,
    ),
    1,
  )
  t.equal(metric(text, 'mlserve_reloads_total{outcome="switched"}'), 1)
  t.ok(
    await eventuallyAsync(async () => metric(await metrics(server.url), 'mlserve_reloads_total{outcome="unchanged"}') > 0),
    'the checks after the switch find the alias unchanged, and count it',
  )
  const readyzResponse = await fetch(`${server.url}/readyz`, {dispatcher: client})
  t.equal(readyzResponse.headers.get('x-mlserve-model-version'), versions[1], "mlserve's own answers carry the header too")
  const readyz = JSON.parse(await readyzResponse.text()) as {model: {version: string; generation: number}}
  t.match(readyz.model, {version: versions[1], generation: 2})

  t.test('a version whose environment cannot be built: the serving version stays, the failure is counted once', async (t) => {
    const from = server.stderr().length
    await moveAlias(tracking.url, name, versions[2]!)
    await logLine(server, /reload of models:\/follower@champion \(version \d+ of follower\) failed.*ENV_BUILD|reload of .* failed/, from)
    t.match(server.stderr().slice(from), /mlserve-no-such-package/, 'the cause is logged')
    const unchanged = metric(await metrics(server.url), 'mlserve_reloads_total{outcome="unchanged"}')
    t.ok(await eventuallyAsync(async () => metric(await metrics(server.url), 'mlserve_reloads_total{outcome="unchanged"}') > unchanged + 2))
    const after = await metrics(server.url)
    t.equal(metric(after, 'mlserve_reloads_total{outcome="failed"}'), 1, 'not tried again while the alias stays')
    t.same(await predict(server.url), {status: 200, body: '{"predictions": [30]}', version: versions[1]})
  })

  t.test('a version whose warm-up fails: the same', async (t) => {
    const from = server.stderr().length
    await moveAlias(tracking.url, name, versions[3]!)
    await logLine(server, /reload of models:\/follower@champion .* failed/, from)
    t.match(server.stderr().slice(from), /warm-up prediction .*failed/)
    t.equal(metric(await metrics(server.url), 'mlserve_reloads_total{outcome="failed"}'), 2)
    t.same(await predict(server.url), {status: 200, body: '{"predictions": [30]}', version: versions[1]})
    t.equal(scorerPids(server).length, 2, "the failed generation's scorers are gone")
  })

  t.test('back to a cached environment', async (t) => {
    const cached = await switchTo(versions[4]!, '{"predictions": [21]}')
    t.comment(`v2 -> v5 (a cached environment): switched ${cached.seconds} s after the alias moved; ${cached.requests} requests, all 200`)
  })

  t.test('models:/name/latest follows a newly registered version the same way', async (t) => {
    const latest = await startMlserve(['-m', `models:/${name}/latest`, '--reload-interval', '1', '--no-access-log'], {
      env: toolchainEnv({MLFLOW_TRACKING_URI: tracking.url, MLSERVE_MODEL_ROOT: path.join(scratch, 'models')}),
    })
    t.teardown(() => latest.stop())
    t.same(await predict(latest.url), {status: 200, body: '{"predictions": [21]}', version: versions[4]})
    // A new version registered from version 2's model (the REST API, as a CI job would).
    const get = await fetch(`${tracking.url}/api/2.0/mlflow/model-versions/get?name=${name}&version=${versions[1]}`, {dispatcher: client})
    const {model_version: v2} = (await get.json()) as {model_version: {source: string; run_id: string; model_id?: string}}
    const from = latest.stderr().length
    const created = await fetch(`${tracking.url}/api/2.0/mlflow/model-versions/create`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({
        name,
        source: v2.source,
        run_id: v2.run_id,
        model_id: v2.model_id ?? /^models:\/(m-[0-9a-f]+)$/.exec(v2.source)?.[1],
      }),
      dispatcher: client,
    })
    if (!created.ok) throw new Error(`creating a version failed: ${created.status} ${await created.text()}`)
    const {model_version: newest} = (await created.json()) as {model_version: {version: string}}
    await logLine(latest, new RegExp(`serving ${name} version ${newest.version} \\(was ${versions[4]}\\)`), from)
    t.same(await predict(latest.url), {status: 200, body: '{"predictions": [30]}', version: newest.version})
  })

  t.test('the tracking server stops: checks fail and are counted, serving goes on', async (t) => {
    await tracking.proc.stop('SIGTERM')
    const from = server.stderr().length
    await logLine(server, /reload check of models:\/follower@champion failed/, from)
    t.ok(await eventuallyAsync(async () => metric(await metrics(server.url), 'mlserve_reload_check_failures_total') >= 2))
    t.same(await predict(server.url), {status: 200, body: '{"predictions": [21]}', version: versions[4]})
    t.equal(server.child.exitCode, null, 'mlserve still runs')
  })
})

t.test('SIGHUP reloads a local model directory whose content changed (--preload, -w 2)', async (t) => {
  const dir = path.join(scratch, 'local-model')
  cpSync(fixtureModel('sum'), dir, {recursive: true})
  const server = await startMlserve(['-m', dir, '-w', '2', '--preload', '--reload-interval', '1', '--no-access-log'])
  t.teardown(() => server.stop())
  await readyScorers(server, 2)
  t.match(server.stderr(), /is a fixed reference, nothing to follow/)
  t.equal((await predict(server.url)).body, '{"predictions": [3]}')
  const before = scorerPids(server)

  rmSync(dir, {recursive: true})
  cpSync(fixtureModel('echo'), dir, {recursive: true})
  const from = server.stderr().length
  const loop = clientLoop(server.url)
  server.child.kill('SIGHUP')
  await logLine(server, /serving .*local-model generation 2 \(was generation 1\)/, from)
  const seen = loop.answers.length
  await eventually(() => loop.answers.length > seen + 10)
  await loop.stop()
  t.same(loop.errors, [])
  t.same(
    loop.answers.filter((a) => a.status !== 200),
    [],
    `all ${loop.answers.length} answers are 200s`,
  )
  t.match(loop.answers.at(-1)!.body, /"type": "DataFrame"/, 'the new content answers')
  t.ok(await eventually(() => before.every((pid) => !isRunning(pid)), 60_000), 'the old loader and its forks are gone')
  const text = await metrics(server.url)
  t.match(text, /mlserve_model_info\{uri="[^"]*local-model",version="",run_id="",generation="2"\} 1/)
  t.equal(metric(text, 'mlserve_reloads_total{outcome="switched"}'), 1)
  t.equal(metric(text, 'mlserve_scorer_mode{mode="preload"}'), 1)

  t.test('a SIGHUP with a directory that cannot load keeps serving', async (t) => {
    rmSync(dir, {recursive: true})
    cpSync(fixtureModel('broken'), dir, {recursive: true})
    const from = server.stderr().length
    server.child.kill('SIGHUP')
    await logLine(server, /reload of .*local-model.* failed/, from)
    t.match((await predict(server.url)).body, /"type": "DataFrame"/)
    t.equal(metric(await metrics(server.url), 'mlserve_reloads_total{outcome="failed"}'), 1)
    t.equal(server.child.exitCode, null)
  })

  t.test('SIGINT still stops it cleanly', async (t) => {
    const pids = scorerPids(server)
    const exit = await server.stop('SIGINT')
    t.equal(exit.code, 0)
    const left = await Promise.all(pids.map(async (pid) => gone(pid)))
    t.same(
      left,
      pids.map(() => true),
      'every scorer is gone',
    )
  })
})
