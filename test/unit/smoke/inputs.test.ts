// What smoke reads and writes from the user's flags, bounded and confined: the cases file (size, YAML
// aliases, body_file inside its folder, regular files only), --junit (a regular file in a writable
// folder), and reports of many cases.
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import type {MlserveError} from '../../../src/errors.js'
import {readCases} from '../../../src/smoke/cases.js'
import {toJunit} from '../../../src/smoke/junit.js'
import {formatSummary, summarize, toJson, type CaseResult} from '../../../src/smoke/report.js'
import {checkWritable} from '../../../src/smoke/write.js'

const tempDir = (t: {teardown(fn: () => void): void}) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-smoke-inputs-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  return dir
}

const casesWith = (dir: string, bodyFile: string) => {
  const file = path.join(dir, 'cases', 'cases.yaml')
  mkdirSync(path.dirname(file), {recursive: true})
  writeFileSync(file, `- name: a\n  body_file: ${JSON.stringify(bodyFile)}\n`)
  return file
}

t.test('a YAML alias bomb in the cases file is refused at once, naming the file', async (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'cases.yaml')
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
  for (let level = 1; level < 9; level++)
    lines.push(
      `${'abcdefghij'[level]}: &${'abcdefghij'[level]} [${Array(10)
        .fill(`*${'abcdefghij'[level - 1]}`)
        .join(',')}]`,
    )
  writeFileSync(file, lines.join('\n') + '\n')
  await t.rejects(readCases(file), {code: 'SMOKE_CASES_INVALID', message: /cases\.yaml: .*alias bomb/})
})

t.test('body_file must stay in the cases file folder', async (t) => {
  const dir = tempDir(t)
  writeFileSync(path.join(dir, 'secret.txt'), 'top secret')
  await t.rejects(readCases(casesWith(dir, '../secret.txt')), {code: 'SMOKE_CASES_INVALID', message: /outside the folder of the cases file/})
  await t.rejects(readCases(casesWith(dir, path.join(dir, 'secret.txt'))), {
    code: 'SMOKE_CASES_INVALID',
    message: /outside the folder of the cases file/,
  })
  await t.rejects(readCases(casesWith(dir, '/etc/hostname')), {code: 'SMOKE_CASES_INVALID', message: /outside the folder of the cases file/})
  symlinkSync(path.join(dir, 'secret.txt'), path.join(dir, 'cases', 'link.json'))
  await t.rejects(readCases(casesWith(dir, 'link.json')), {code: 'SMOKE_CASES_INVALID', message: /outside the folder of the cases file/})
  writeFileSync(path.join(dir, 'cases', 'ok.json'), '{}')
  symlinkSync('ok.json', path.join(dir, 'cases', 'inside.json'))
  const [inside] = await readCases(casesWith(dir, 'inside.json'))
  t.equal(inside?.body.toString(), '{}', 'a link that stays inside is read')
})

t.test('body_file must be a regular file: a device or a FIFO is refused without reading it', async (t) => {
  const dir = tempDir(t)
  symlinkSync('/dev/zero', path.join(dir, 'zero.json'))
  mkdirSync(path.join(dir, 'cases'), {recursive: true})
  symlinkSync('/dev/zero', path.join(dir, 'cases', 'zero.json'))
  const file = casesWith(dir, 'zero.json')
  // /dev/zero is outside the folder too; a FIFO inside it is the case the reader itself refuses.
  await t.rejects(readCases(file), {code: 'SMOKE_CASES_INVALID'})
  execFileSync('mkfifo', [path.join(dir, 'cases', 'fifo.json')])
  await t.rejects(readCases(casesWith(dir, 'fifo.json')), {code: 'SMOKE_CASES_INVALID', message: /FIFO/})
})

t.test('a cases file that is a FIFO is refused as a cases file, not as a model file', async (t) => {
  const dir = tempDir(t)
  execFileSync('mkfifo', [path.join(dir, 'cases.yaml')])
  const error = await readCases(path.join(dir, 'cases.yaml')).catch((error_: unknown) => error_)
  t.match(error, {
    code: 'SMOKE_CASES_INVALID',
    message: /cases\.yaml: the cases file is a FIFO .*: smoke reads only a regular file of at most 16 MiB/,
  })
  t.notMatch((error as Error).message, /from a model/)
  t.match((error as MlserveError).suggestions, [/cases file is a YAML or JSON list/])
})

t.test('--junit must be a regular file in a writable folder, checked before anything starts', async (t) => {
  const dir = tempDir(t)
  await t.resolves(checkWritable(path.join(dir, 'report.xml')))
  writeFileSync(path.join(dir, 'old.xml'), '<old/>')
  await t.resolves(checkWritable(path.join(dir, 'old.xml')), 'an existing report is overwritten')
  await t.rejects(checkWritable(dir), {code: 'INVALID_ARGUMENT', message: /is a directory/})
  execFileSync('mkfifo', [path.join(dir, 'fifo.xml')])
  await t.rejects(checkWritable(path.join(dir, 'fifo.xml')), {code: 'INVALID_ARGUMENT', message: /FIFO/})
  await t.rejects(checkWritable(path.join(dir, 'missing', 'report.xml')), {code: 'INVALID_ARGUMENT', message: /cannot write there/})
})

t.test('200,000 cases make a summary, a JSON report and JUnit XML', async (t) => {
  const cases: CaseResult[] = Array.from({length: 200_000}, (_, index) => ({name: `case ${index}`, status: 'passed', durationMs: 1}))
  const report = {cases, phases: [], durationMs: 1, summary: summarize(cases)}
  t.match(formatSummary(report), /\n200000 passed, 0 failed, 0 skipped\n$/)
  t.match(toJunit(report), /tests="200000"/)
  t.equal((JSON.parse(toJson(report)) as {cases: unknown[]}).cases.length, 200_000)
})
