// The user's cases file for `mlserve smoke --cases` (YAML or JSON): read, validated, bodies loaded.
import path from 'node:path'

import {MlserveError, messageOf} from '../errors.js'
import {dirRoot, resolveInside, type DirRoot} from '../util/fs.js'
import {MODEL_TEXT_MAX_BYTES, readBounded, readBoundedText} from '../util/read-bounded.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'

/** The largest body_file smoke sends (serve's default --max-body-size). */
export const SMOKE_BODY_MAX_BYTES = 100 * 1024 * 1024

export interface Expectation {
  readonly status: number
  /** The exact expected predictions (numbers within `tolerance`). */
  readonly predictions?: unknown
  readonly tolerance?: number
  /** A substring the response body must contain. */
  readonly contains?: string
}

export interface SmokeCase {
  readonly name: string
  readonly body: Buffer
  readonly contentType: string
  readonly expect: Expectation
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

const CASE_KEYS = new Set(['name', 'body', 'body_file', 'content_type', 'expect'])
const EXPECT_KEYS = new Set(['status', 'predictions', 'tolerance', 'contains'])

const invalid = (file: string, message: string, cause?: unknown) =>
  new MlserveError('SMOKE_CASES_INVALID', `${file}: ${message}`, {
    cause,
    suggestions: [
      'The cases file is a YAML or JSON list of {name, body | body_file, content_type, expect: {status, predictions, tolerance, contains}}.',
    ],
  })

/** Reads and validates the cases file; body_file paths are relative to it. */
export async function readCases(file: string): Promise<SmokeCase[]> {
  let text: string
  try {
    const rule = 'smoke reads only a regular file of at most 16 MiB as its cases file'
    text = await readBoundedText(file, {maxBytes: MODEL_TEXT_MAX_BYTES, code: 'SMOKE_CASES_INVALID', what: 'the cases file', rule})
  } catch (error) {
    throw invalid(file, error instanceof MlserveError ? error.message : `cannot read the cases file (${messageOf(error)})`, error)
  }

  let doc: unknown
  try {
    doc = loadBoundedYaml(text)
  } catch (error) {
    throw invalid(file, `not valid YAML or JSON: ${messageOf(error)}`, error)
  }

  if (!Array.isArray(doc)) throw invalid(file, 'expected a list of cases')
  const root = await dirRoot(path.dirname(file))
  const names = new Set<string>()
  const cases: SmokeCase[] = []
  for (const [index, entry] of doc.entries()) {
    // eslint-disable-next-line no-await-in-loop
    const smokeCase = await parseCase(entry, index, root, file)
    if (names.has(smokeCase.name)) throw invalid(file, `two cases are named '${smokeCase.name}'`)
    names.add(smokeCase.name)
    cases.push(smokeCase)
  }

  return cases
}

async function parseCase(entry: unknown, index: number, root: DirRoot, file: string): Promise<SmokeCase> {
  if (!isRecord(entry)) throw invalid(file, `case ${index + 1} is not a mapping`)
  const where = typeof entry.name === 'string' && entry.name !== '' ? `case '${entry.name}'` : `case ${index + 1}`
  if (typeof entry.name !== 'string' || entry.name === '') throw invalid(file, `${where} has no name`)
  for (const key of Object.keys(entry)) if (!CASE_KEYS.has(key)) throw invalid(file, `${where}: unknown key '${key}'`)
  if ((entry.body === undefined) === (entry.body_file === undefined)) throw invalid(file, `${where} needs exactly one of body and body_file`)
  if (entry.content_type !== undefined && typeof entry.content_type !== 'string') throw invalid(file, `${where}: content_type is not a string`)

  let body: Buffer
  if (entry.body_file === undefined) {
    body = Buffer.from(typeof entry.body === 'string' ? entry.body : JSON.stringify(entry.body))
  } else {
    if (typeof entry.body_file !== 'string') throw invalid(file, `${where}: body_file is not a string`)
    body = await readBodyFile(path.resolve(root.dir, entry.body_file), root, where, file)
  }

  return {name: entry.name, body, contentType: entry.content_type ?? 'application/json', expect: parseExpect(entry.expect, where, file)}
}

/** A body_file: a regular file of at most SMOKE_BODY_MAX_BYTES inside the cases file's folder (links resolved). */
async function readBodyFile(bodyFile: string, root: DirRoot, where: string, file: string): Promise<Buffer> {
  const {inside, real} = await resolveInside(root, bodyFile)
  if (!inside) {
    throw invalid(
      file,
      `${where}: body_file ${bodyFile} is outside the folder of the cases file (${root.real}); put the body next to the cases file`,
    )
  }

  try {
    return await readBounded(real ?? bodyFile, {
      maxBytes: SMOKE_BODY_MAX_BYTES,
      code: 'SMOKE_CASES_INVALID',
      what: `${where}: body_file ${bodyFile}`,
      rule: 'smoke sends only a regular file of at most 100 MiB',
    })
  } catch (error) {
    const message = error instanceof MlserveError ? error.message : `${where}: cannot read body_file ${bodyFile} (${messageOf(error)})`
    throw invalid(file, message, error)
  }
}

function parseExpect(raw: unknown, where: string, file: string): Expectation {
  if (raw === undefined || raw === null) return {status: 200}
  if (!isRecord(raw)) throw invalid(file, `${where}: expect is not a mapping`)
  for (const key of Object.keys(raw)) if (!EXPECT_KEYS.has(key)) throw invalid(file, `${where}: unknown key 'expect.${key}'`)
  const {status = 200, tolerance, contains} = raw
  if (!Number.isInteger(status) || (status as number) < 100 || (status as number) > 599)
    throw invalid(file, `${where}: expect.status is not an HTTP status`)
  if (tolerance !== undefined && (typeof tolerance !== 'number' || tolerance < 0))
    throw invalid(file, `${where}: expect.tolerance is not a number >= 0`)
  if (tolerance !== undefined && raw.predictions === undefined) throw invalid(file, `${where}: expect.tolerance needs expect.predictions`)
  if (contains !== undefined && typeof contains !== 'string') throw invalid(file, `${where}: expect.contains is not a string`)
  return {
    status: status as number,
    predictions: raw.predictions,
    tolerance: tolerance as number | undefined,
    contains: contains as string | undefined,
  }
}
