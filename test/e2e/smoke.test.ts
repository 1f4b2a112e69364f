// `mlserve smoke` end to end with the real mlflow scorer: a passing model with and without cases, a
// wrong expectation, a model that raises, an output that violates its signature, a start-up failure,
// --url against a running `mlserve serve`, and Ctrl-C leaving no process. JUnit files are parsed by
// Python's xml.etree (the test toolchain's interpreter): strict XML, counts checked.
import {execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'

import {freePort, gone, MLSERVE_BIN, runMlserve, spawnProc, startMlserve} from '../helpers/servers.js'
import {REPO_ROOT, fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const IRIS = path.join(REPO_ROOT, 'examples/sklearn-iris')
const LOCAL = ['--env-manager', 'local', '--python', toolchainPython()]

// Each test starts its own servers and writes its own files: two run at a time.
t.jobs = 2

const work = mkdtempSync(path.join(tmpdir(), 'mlserve-smoke-'))
t.teardown(() => rmSync(work, {recursive: true, force: true}))
// The models only these tests need, saved by the toolchain's mlflow.
execFileSync(toolchainPython(), [path.join(REPO_ROOT, 'test/fixtures/smoke_models.py'), path.join(work, 'models')], {
  env: toolchainEnv(),
  stdio: ['ignore', 'ignore', 'inherit'],
})
const smokeModel = (name: string) => path.join(work, 'models', name)

interface JunitCase {
  name: string
  time: number
  failure?: {message: string; text: string}
  skipped?: string
}

interface Junit {
  suites: number
  name: string
  tests: number
  failures: number
  skipped: number
  cases: JunitCase[]
}

const PARSE_JUNIT = `
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
suites = root.findall("testsuite")
suite = suites[0]
cases = []
for case in suite.findall("testcase"):
    failure, skipped = case.find("failure"), case.find("skipped")
    cases.append({
        "name": case.get("name"),
        "time": float(case.get("time")),
        **({"failure": {"message": failure.get("message"), "text": failure.text or ""}} if failure is not None else {}),
        **({"skipped": skipped.get("message")} if skipped is not None else {}),
    })
print(json.dumps({"suites": len(suites), "name": suite.get("name"), "tests": int(suite.get("tests")),
    "failures": int(suite.get("failures")), "skipped": int(suite.get("skipped")), "cases": cases}))
`

/** The JUnit file as Python's XML parser reads it; the suite's counts must match its test cases. */
function readJunit(t: Test, file: string): Junit {
  const junit = JSON.parse(execFileSync(toolchainPython(), ['-c', PARSE_JUNIT, file], {encoding: 'utf8'})) as Junit
  t.equal(junit.suites, 1, 'one testsuite')
  t.equal(junit.name, 'mlserve smoke')
  t.equal(junit.tests, junit.cases.length, 'tests= counts the test cases')
  t.equal(junit.failures, junit.cases.filter((c) => c.failure).length, 'failures= counts the failures')
  t.equal(junit.skipped, junit.cases.filter((c) => c.skipped !== undefined).length, 'skipped= counts the skips')
  return junit
}

const statuses = (junit: Junit) =>
  Object.fromEntries(junit.cases.map((c) => [c.name, c.failure ? 'failed' : c.skipped === undefined ? 'passed' : 'skipped']))

const lastLine = (text: string) => text.trimEnd().split('\n').at(-1)

t.test('the bundled example passes every check; --json reports cases, phases and the environment', async (t) => {
  const result = await runMlserve(['smoke', '-m', IRIS, ...LOCAL, '--json'])
  t.equal(result.code, 0, result.stderr)
  t.equal(lastLine(result.stderr), '5 passed, 0 failed, 0 skipped')
  const report = JSON.parse(result.stdout) as {
    model: {uri: string; dir: string}
    environment: {manager: string; detail: string}
    startup: Record<string, number>
    cases: Array<{name: string; status: string; durationMs: number; message?: string}>
    summary: unknown
  }
  t.same(
    report.cases.map((c) => [c.name, c.status]),
    [
      ['start-up', 'passed'],
      ['health', 'passed'],
      ['input example', 'passed'],
      ['bad input is refused', 'passed'],
      ['output schema', 'passed'],
    ],
  )
  t.same(Object.keys(report.startup), ['resolve', 'env', 'spawn', 'load', 'warmup', 'total'])
  t.equal(report.model.dir, IRIS)
  t.equal(report.environment.manager, 'local')
  t.match(report.environment.detail, /mlflow 3\.17\.2/)
  t.match(report.cases[3]!.message, /^400 \w+ without column 'sepal_length'; \/ping still 200$/)
  t.same(report.summary, {passed: 5, failed: 0, skipped: 0})
  t.match(result.stderr, /PASS {2}start-up +\S+ \S+ {2}resolve \d+ ms, env /, 'the human summary names the phases')
  t.notMatch(result.stdout, /\[scorer\]|\[mlserve\]/, 'stdout holds only the JSON document')
})

t.test('a cases file: passing cases pass, a wrong expectation fails with expected vs got (exit 85, JUnit)', async (t) => {
  const dir = path.join(work, 'cases')
  const junitFile = path.join(work, 'cases.xml')
  execFileSync('mkdir', ['-p', dir])
  copyFileSync(path.join(IRIS, 'serving_input_example.json'), path.join(dir, 'three.json'))
  writeFileSync(
    path.join(dir, 'setosa.json'),
    JSON.stringify({dataframe_split: {columns: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'], data: [[5.1, 3.5, 1.4, 0.2]]}}),
  )
  writeFileSync(
    path.join(dir, 'cases.yaml'),
    [
      '- name: three species',
      '  body_file: three.json',
      '  expect: {predictions: [0, 1, 2]}',
      '- name: setosa',
      '  body_file: setosa.json',
      '  expect: {status: 200, predictions: [0.0001], tolerance: 0.001}',
      '- name: csv is refused',
      '  body: "not,a,frame"',
      '  content_type: text/plain',
      '  expect: {status: 415, contains: "This predictor only supports the following content types"}',
      '- name: wrong expectation',
      '  body_file: setosa.json',
      '  expect: {predictions: [2]}',
    ].join('\n'),
  )
  const result = await runMlserve(['smoke', '-m', IRIS, ...LOCAL, '--cases', path.join(dir, 'cases.yaml'), '--junit', junitFile])
  t.equal(result.code, 85, 'a failed check exits 85')
  t.match(result.stderr, /Error: 1 smoke check failed: wrong expectation\n {2}code: SMOKE_CHECKS_FAILED \(exit 85\)/)
  t.match(result.stderr, /FAIL {2}wrong expectation +\S+ \S+\n +expected predictions \[2\]\n +got predictions \[0\]/)
  t.match(result.stderr, /8 passed, 1 failed, 0 skipped\n/)
  const junit = readJunit(t, junitFile)
  t.same(statuses(junit), {
    'start-up': 'passed',
    health: 'passed',
    'input example': 'passed',
    'three species': 'passed',
    setosa: 'passed',
    'csv is refused': 'passed',
    'wrong expectation': 'failed',
    'bad input is refused': 'passed',
    'output schema': 'passed',
  })
  const failure = junit.cases.find((c) => c.name === 'wrong expectation')!.failure!
  t.equal(failure.message, 'expected predictions [2]')
  t.match(failure.text, /expected predictions \[2\]\n +got predictions \[0\]/)
})

t.test('a model whose predict raises: the input example case fails with its error (exit 85, JUnit)', async (t) => {
  const junitFile = path.join(work, 'raise.xml')
  const result = await runMlserve(['smoke', '-m', smokeModel('raise_signature'), ...LOCAL, '--junit', junitFile])
  t.equal(result.code, 85)
  const junit = readJunit(t, junitFile)
  t.same(statuses(junit), {
    'start-up': 'passed',
    health: 'passed',
    'input example': 'failed',
    'bad input is refused': 'passed',
    'output schema': 'skipped',
  })
  const failure = junit.cases.find((c) => c.name === 'input example')!.failure!
  t.equal(failure.message, 'input example: expected status 200, got 400')
  t.match(
    failure.text,
    /\n\nresponse: BAD_REQUEST: Encountered an unexpected error while evaluating the model\.[^\n]*\n {2}ValueError: this model always fails$/,
    "MLflow's envelope is shown as its code, message and the exception at the end of its stack trace",
  )
  t.equal(junit.cases.find((c) => c.name === 'output schema')!.skipped, "the model's signature has no outputs")
})

t.test('a model without an example, a signature or cases fails the input example case, saying how to add one', async (t) => {
  const result = await runMlserve(['smoke', '-m', fixtureModel('raise'), ...LOCAL])
  t.equal(result.code, 85)
  t.match(
    result.stderr,
    /FAIL {2}input example +\S+ \S+\n +The model has no serving input example and no signature, and no --cases were given[^\n]*\n +Log the model with an input example/,
  )
  t.match(result.stderr, /\n2 passed, 1 failed, 2 skipped\nError: 1 smoke check failed: input example\n/)
})

t.test('predictions that violate the output signature fail the output schema case', async (t) => {
  const result = await runMlserve(['smoke', '-m', smokeModel('badoutput'), ...LOCAL, '--json'])
  t.equal(result.code, 85)
  const report = JSON.parse(result.stdout) as {cases: Array<{name: string; status: string; message?: string}>}
  const schema = report.cases.find((c) => c.name === 'output schema')!
  t.equal(schema.status, 'failed')
  t.equal(
    schema.message,
    "the predictions do not conform to the signature's outputs:\n" +
      'input example: prediction 0 (column 0): expected long, got "three"\n' +
      'input example: prediction 1 (column 0): expected long, got "three"',
  )
  t.equal(report.cases.find((c) => c.name === 'input example')!.status, 'passed', 'the request itself succeeded')
})

t.test("a start-up failure keeps serve's error and exit code, and the report is still written", async (t) => {
  const junitFile = path.join(work, 'startup.xml')
  const result = await runMlserve(['smoke', '-m', fixtureModel('control'), ...LOCAL, '--junit', junitFile], {
    env: toolchainEnv({MLSERVE_TEST_WARMUP_FAIL: '1'}),
  })
  t.equal(result.code, 43, 'WARMUP_FAILED, as serve')
  t.match(result.stderr, /code: WARMUP_FAILED \(exit 43\)/)
  t.match(result.stderr, /\n0 passed, 1 failed, 4 skipped\nError: The warm-up prediction/, 'the summary, then the error as serve prints it')
  const junit = readJunit(t, junitFile)
  t.same(statuses(junit), {
    'start-up': 'failed',
    health: 'skipped',
    'input example': 'skipped',
    'bad input is refused': 'skipped',
    'output schema': 'skipped',
  })
  t.match(junit.cases[0]!.failure!.message, /^WARMUP_FAILED: The warm-up prediction with serving_input_example\.json failed/)
})

t.test('--url checks a running mlserve serve and starts nothing', async (t) => {
  const server = await startMlserve(['-m', IRIS])
  t.teardown(() => server.stop())
  const result = await runMlserve(['smoke', '--url', server.url, '-m', IRIS, '--json'])
  t.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as {url: string; cases: Array<{name: string; status: string; message?: string}>}
  t.equal(report.url, server.url)
  t.same(
    report.cases.map((c) => c.status),
    ['skipped', 'passed', 'passed', 'passed', 'passed'],
  )
  t.equal(report.cases[0]!.message, '--url: checking a running server, nothing started')
  t.notMatch(result.stderr, /start scorer|listening on/, 'no scorer and no proxy of its own')
  t.match(server.stdout(), /"POST \/invocations" 200/, 'the requests reached the running server')

  const bare = await runMlserve(['smoke', '--url', server.url])
  t.equal(bare.code, 85, 'without -m or --cases nothing calls predict: a failure')
  t.match(bare.stderr, /With --url, pass -m to read the model's example and signature/)
})

t.test('--url --wait waits for a server that is still starting; one that never answers fails start-up', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('slowload')], {waitReady: false})
  t.teardown(() => server.stop())
  const result = await runMlserve(['smoke', '--url', server.url, '--wait', '120', '-m', fixtureModel('slowload'), '--json'])
  t.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as {cases: Array<{name: string; status: string; message?: string}>}
  t.match(report.cases[0], {name: 'start-up', status: 'passed', message: /^--url: ready \(GET \/ping 200\) after /})
  t.match(server.stdout(), /"GET \/ping" 503/, 'it asked while the model was loading')
  t.same(
    report.cases.slice(1).map((c) => [c.name, c.status]),
    [
      ['health', 'passed'],
      ['input example', 'passed'],
      ['bad input is refused', 'passed'],
      ['output schema', 'passed'],
    ],
    'a model with a signature and no example: the example is built from the signature',
  )

  const nobody = await runMlserve(['smoke', '--url', `http://127.0.0.1:${await freePort()}`, '--wait', '1'])
  t.equal(nobody.code, 85)
  t.match(nobody.stderr, /FAIL {2}start-up +\S+ \S+\n +GET \/ping did not answer 200 within --wait 1 s \(last: .*ECONNREFUSED/)
  t.match(nobody.stderr, /\n0 passed, 1 failed, 4 skipped\n/)
})

t.test('usage errors exit 2', async (t) => {
  const none = await runMlserve(['smoke'])
  t.equal(none.code, 2)
  t.match(none.stderr, /Missing required flag --model-uri \(or --url/)
  const badUrl = await runMlserve(['smoke', '--url', 'localhost:5000'])
  t.equal(badUrl.code, 2)
  const waitAlone = await runMlserve(['smoke', '-m', IRIS, '--wait', '5'])
  t.equal(waitAlone.code, 2)
  t.match(waitAlone.stderr, /--wait applies to --url only/)
  const badCases = await runMlserve(['smoke', '-m', IRIS, ...LOCAL, '--cases', path.join(work, 'missing.yaml')])
  t.equal(badCases.code, 86, 'a cases file that cannot be read: its own code, before anything starts')
  t.notMatch(badCases.stderr, /resolve model/)
  const badJunit = await runMlserve(['smoke', '-m', IRIS, ...LOCAL, '--junit', path.join(work, 'no-such-dir', 'smoke.xml')])
  t.equal(badJunit.code, 2, 'a --junit file that could not be written is found before anything starts')
  t.match(badJunit.stderr, /--junit .*smoke\.xml: cannot write there/)
  t.notMatch(badJunit.stderr, /resolve model/)
})

/** smoke of the slow model with one 60 s case, returned once that case is running in the scorer. */
async function smokeDuringSlowCheck(t: Test, name: string) {
  const casesFile = path.join(work, `${name}.yaml`)
  const junitFile = path.join(work, `${name}.xml`)
  writeFileSync(casesFile, '- name: sleepy\n  body: {dataframe_split: {columns: [seconds], data: [[60]]}}\n')
  const proc = spawnProc(process.execPath, [
    MLSERVE_BIN,
    'smoke',
    '-m',
    fixtureModel('slow'),
    ...LOCAL,
    '--cases',
    casesFile,
    '--junit',
    junitFile,
  ])
  t.teardown(() => proc.stop('SIGKILL'))
  const [, pid] = await proc.waitForOutput(/start scorer [^\n]*: pid (\d+)/)
  await proc.waitForOutput(/slow model: sleeping 60\.0 s/)
  return {proc, pid, junitFile}
}

t.test('Ctrl-C during a check stops everything: no process left, the report says interrupted, exit 130', async (t) => {
  const {proc, pid, junitFile} = await smokeDuringSlowCheck(t, 'slow')
  proc.child.kill('SIGINT')
  const exit = await proc.exited
  t.equal(exit.code, 130)
  t.match(proc.stderr(), /received SIGINT/)
  t.ok(await gone(Number(pid), 20_000), 'the scorer is gone')
  const junit = readJunit(t, junitFile)
  t.same(statuses(junit), {
    'start-up': 'passed',
    health: 'passed',
    'input example': 'skipped',
    sleepy: 'failed',
    'bad input is refused': 'skipped',
    'output schema': 'skipped',
  })
  t.equal(junit.cases.find((c) => c.name === 'sleepy')!.failure!.message, 'interrupted')
})

t.test('a second Ctrl-C stops at once: exit 130, no report, no process left', async (t) => {
  const {proc, pid, junitFile} = await smokeDuringSlowCheck(t, 'slow-twice')
  proc.child.kill('SIGINT')
  await proc.waitForOutput(/received SIGINT/)
  proc.child.kill('SIGINT')
  const exit = await proc.exited
  t.equal(exit.code, 130)
  t.match(proc.stderr(), /received SIGINT again: stopping now[\s\S]*Stopped at once by a second signal/)
  t.ok(await gone(Number(pid), 20_000), 'the scorer is gone')
  t.notOk(existsSync(junitFile), 'no report: the second signal does not wait for it')
})
