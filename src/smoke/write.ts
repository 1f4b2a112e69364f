// Where a smoke report goes: the summary on stderr, --json on stdout, --junit to a file.
import {constants} from 'node:fs'
import {access, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {MlserveError, messageOf} from '../errors.js'
import {kindOf} from '../util/read-bounded.js'

import {toJunit} from './junit.js'
import {formatSummary, toJson, type SmokeReport} from './report.js'

export interface ReportTargets {
  readonly stderr: {write(chunk: string): unknown}
  readonly stdout: {write(chunk: string): unknown}
  readonly json: boolean
  readonly junitFile?: string
}

/** Writes the summary (stderr), the --json document (stdout) and the --junit file. */
export async function writeReports(report: SmokeReport, targets: ReportTargets): Promise<void> {
  targets.stderr.write(formatSummary(report))
  if (targets.json) targets.stdout.write(toJson(report) + '\n')
  if (targets.junitFile) await writeFile(targets.junitFile, toJunit(report))
}

/** Fails fast (before anything starts) when the --junit file could not be written at the end. */
export async function checkWritable(file: string): Promise<void> {
  const existing = await stat(file).catch(() => undefined)
  if (existing && !existing.isFile()) {
    throw new MlserveError('INVALID_ARGUMENT', `--junit ${file} is ${kindOf(existing)}: the JUnit report is written to a regular file`, {
      suggestions: ['Name a file, e.g. --junit smoke.xml.'],
    })
  }

  try {
    await access(path.dirname(path.resolve(file)), constants.W_OK)
  } catch (error) {
    throw new MlserveError('INVALID_ARGUMENT', `--junit ${file}: cannot write there (${messageOf(error)})`, {cause: error})
  }
}
