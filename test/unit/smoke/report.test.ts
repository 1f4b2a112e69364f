// The smoke test's cases file, its comparison of expected and actual predictions, and its reports
// (the stderr summary and JUnit XML).
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {MlserveError} from '../../../src/errors.js'
import {readCases} from '../../../src/smoke/cases.js'
import {excerptOf, predictionsOf, sameValue} from '../../../src/smoke/responses.js'
import {escapeXml, toJunit} from '../../../src/smoke/junit.js'
import {formatSummary, summarize, type CaseResult, type SmokeReport} from '../../../src/smoke/report.js'
import {outcomeError} from '../../../src/smoke/smoke.js'

const tempDir = (t: {teardown(fn: () => void): void}) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-cases-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  return dir
}

t.test('reads YAML cases: defaults, inline and file bodies relative to the cases file', async (t) => {
  const dir = tempDir(t)
  writeFileSync(path.join(dir, 'rows.csv'), 'a,b\n1,2\n')
  writeFileSync(
    path.join(dir, 'cases.yaml'),
    [
      '- name: sums',
      '  body: {dataframe_split: {columns: [a, b], data: [[1, 2]]}}',
      '  expect: {predictions: [3.0], tolerance: 0.01}',
      '- name: csv',
      '  body_file: rows.csv',
      '  content_type: text/csv',
      '- name: refused',
      '  body: "not json"',
      '  expect: {status: 400, contains: BAD_REQUEST}',
    ].join('\n'),
  )
  const cases = await readCases(path.join(dir, 'cases.yaml'))
  t.same(
    cases.map((c) => ({...c, body: c.body.toString()})),
    [
      {
        name: 'sums',
        body: '{"dataframe_split":{"columns":["a","b"],"data":[[1,2]]}}',
        contentType: 'application/json',
        expect: {status: 200, predictions: [3], tolerance: 0.01, contains: undefined},
      },
      {name: 'csv', body: 'a,b\n1,2\n', contentType: 'text/csv', expect: {status: 200}},
      {
        name: 'refused',
        body: 'not json',
        contentType: 'application/json',
        expect: {status: 400, predictions: undefined, tolerance: undefined, contains: 'BAD_REQUEST'},
      },
    ],
  )
})

t.test('a malformed cases file is refused before anything starts, saying what is wrong', async (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'cases.json')
  const refused = async (text: string, message: RegExp) => {
    writeFileSync(file, text)
    await t.rejects(readCases(file), {code: 'SMOKE_CASES_INVALID', exitCode: 86, message})
  }

  await refused('{"name": "x"}', /expected a list of cases/)
  await refused('[{"body": "{}"}]', /case 1 has no name/)
  await refused('[{"name": "a"}]', /case 'a' needs exactly one of body and body_file/)
  await refused('[{"name": "a", "body": "{}", "body_file": "x"}]', /exactly one of body and body_file/)
  await refused('[{"name": "a", "body": "{}", "expect": {"status": "ok"}}]', /expect.status is not an HTTP status/)
  await refused('[{"name": "a", "body": "{}", "expect": {"tolerance": 1}}]', /expect.tolerance needs expect.predictions/)
  await refused('[{"name": "a", "body": "{}", "expect": {"predictionz": 1}}]', /unknown key 'expect.predictionz'/)
  await refused('[{"name": "a", "body": "{}"}, {"name": "a", "body": "{}"}]', /two cases are named 'a'/)
  await refused('[{"name": "a", "body_file": "missing.json"}]', /cannot read body_file .*missing\.json/)
  await refused('[{"name": "a", "body": "{}"', /not valid YAML or JSON/)
  await t.rejects(readCases(path.join(dir, 'nope.yaml')), {code: 'SMOKE_CASES_INVALID', message: /cannot read the cases file/})
})

t.test('expected and actual predictions: exact, or numbers within a tolerance', async (t) => {
  t.ok(sameValue([0, 1, 2], [0, 1, 2]))
  t.notOk(sameValue([0, 1, 2], [0, 1, 1]))
  t.notOk(sameValue([0, 1], [0, 1, 2]))
  t.ok(sameValue([0.1, {a: 1.0}], [0.1004, {a: 0.9995}], 0.001))
  t.notOk(sameValue([0.1], [0.2], 0.001))
  t.notOk(sameValue({a: 1}, {a: 1, b: 2}))
  t.notOk(sameValue('1', 1))
  t.ok(sameValue(Number.NaN, Number.NaN))
  t.same(predictionsOf('{"predictions": [1, 2]}'), [1, 2])
  t.same(predictionsOf('[1, 2]'), [1, 2], 'a bare JSON body (the R scorer) is the predictions')
})

t.test("response excerpts: MLflow's error envelope as code, message and the model's exception; others cut short", async (t) => {
  const envelope = JSON.stringify({
    error_code: 'BAD_REQUEST',
    message: 'Encountered an unexpected error while evaluating the model.',
    stack_trace: 'Traceback (most recent call last):\n  File "x.py", line 1, in predict\nValueError: this model always fails\n',
  })
  t.equal(excerptOf(envelope), 'BAD_REQUEST: Encountered an unexpected error while evaluating the model.\n  ValueError: this model always fails')
  t.equal(excerptOf('{"error_code": "BAD_REQUEST", "message": "no"}'), 'BAD_REQUEST: no')
  t.equal(excerptOf('x'.repeat(600)), `${'x'.repeat(500)}... (600 characters)`)
  t.equal(excerptOf('{"predictions": [1]}'), '{"predictions": [1]}')
})

const report = (cases: CaseResult[]): SmokeReport => ({
  modelUri: 'models:/iris@champion',
  modelVersion: '3',
  url: 'http://127.0.0.1:40000',
  phases: [{name: 'load', ms: 1500}],
  cases,
  durationMs: 2000,
  summary: summarize(cases),
})

const CASES: CaseResult[] = [
  {name: 'start-up', status: 'passed', durationMs: 1500, message: 'load 1.5 s'},
  {
    name: 'input example',
    status: 'failed',
    durationMs: 30,
    message: 'input example: expected status 200, got 500',
    excerpt: '{"error_code": "BAD_REQUEST", "message": "a < b & \'c\'"}',
  },
  {name: 'output schema', status: 'skipped', durationMs: 0, message: "the model's signature has no outputs"},
]

t.test('the summary: one line per case, failures with what was expected, then the counts', async (t) => {
  const text = formatSummary(report(CASES))
  const lines = text.trimEnd().split('\n')
  t.equal(lines.at(-1), '1 passed, 1 failed, 1 skipped')
  t.match(text, /\n {2}PASS {2}start-up {7} {2}1\.5 s {2}load 1\.5 s\n/, 'names padded to the longest, durations aligned')
  t.match(text, /FAIL {2}input example +30 ms\n +input example: expected status 200, got 500\n +response: \{"error_code": "BAD_REQUEST"/)
  t.match(text, /\n {2}SKIP {2}output schema {8}- {2}the model's signature has no outputs\n/)
})

t.test('JUnit XML: escaped, with failure and skipped elements and matching counts', async (t) => {
  const xml = toJunit(report(CASES), new Date('2026-01-02T03:04:05.678Z'))
  t.match(
    xml,
    /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="mlserve smoke" tests="3" failures="1" errors="0" skipped="1" time="2\.000">/,
  )
  t.match(xml, /<testsuite name="mlserve smoke" tests="3" failures="1" errors="0" skipped="1" time="2\.000" timestamp="2026-01-02T03:04:05">/)
  t.match(xml, /<property name="model\.version" value="3"\/>/)
  t.match(xml, /<testcase name="start-up" classname="mlserve smoke" time="1\.500"\/>/)
  t.match(
    xml,
    /<failure message="input example: expected status 200, got 500" type="failure">input example: expected status 200, got 500\n\nresponse: \{&quot;error_code&quot;: &quot;BAD_REQUEST&quot;, &quot;message&quot;: &quot;a &lt; b &amp; &apos;c&apos;&quot;\}<\/failure>/,
  )
  t.match(xml, /<skipped message="the model&apos;s signature has no outputs"\/>/)
  t.equal(escapeXml('a\u0000b\u001Bc\n', true), 'abc&#10;', 'control characters XML forbids are dropped')
})

t.test('the exit: 0 when all passed, 85 when a check failed, start-up keeps its own error', async (t) => {
  t.equal(outcomeError({report: report([CASES[0]!, CASES[2]!]), interrupted: false}), undefined)
  const failed = outcomeError({report: report(CASES), interrupted: false}) as MlserveError
  t.equal(failed.exitCode, 85)
  t.equal(failed.message, '1 smoke check failed: input example')
  const startup = new MlserveError('WARMUP_FAILED', 'no')
  t.equal(outcomeError({report: report(CASES), startupError: startup, interrupted: false}), startup)
  t.equal((outcomeError({report: report(CASES), interrupted: true}) as MlserveError).exitCode, 130)
})
