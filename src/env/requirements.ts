// Expands pip requirement lines (-r / -c includes, comments, continuations) as mlflow's _parse_requirements does.
import path from 'node:path'

import {MlserveError, messageOf} from '../errors.js'
import {dirRoot, resolveInside, type DirRoot} from '../util/fs.js'
import {MODEL_TEXT_MAX_BYTES, readBoundedText} from '../util/read-bounded.js'

/** One parsed requirement line, as mlflow's `_Requirement(req_str, is_constraint)`. */
export interface Requirement {
  readonly line: string
  readonly isConstraint: boolean
}

type ReadText = (file: string) => Promise<string>

/** Where a list of lines came from: a file, or the top-level list; `chain` holds the files being expanded. */
interface Origin {
  readonly label: string
  readonly baseDir: string
  readonly chain: readonly string[]
  /** The model directory (as given, and with symlinks resolved): no include may leave it. */
  readonly root: DirRoot
}

/** Regular files only, bounded: a FIFO or a device named by `-r` is refused instead of read. */
const readUtf8: ReadText = (file) => readBoundedText(file, {maxBytes: MODEL_TEXT_MAX_BYTES, code: 'ENV_SPEC_INVALID'})

/**
 * The options pip accepts at the start of a line of a requirements file (its SUPPORTED_OPTIONS). Any other
 * line that starts with `-` is an installer option (`--target=DIR`, `--prefix=DIR`, `--user`, ...): pip
 * refuses it in the requirements file mlflow installs from, and mlserve refuses it before any installer runs.
 */
const REQUIREMENT_FILE_OPTIONS = new Set([
  '-i',
  '--index-url',
  '--extra-index-url',
  '--no-index',
  '-c',
  '--constraint',
  '-r',
  '--requirement',
  '-e',
  '--editable',
  '-f',
  '--find-links',
  '--no-binary',
  '--only-binary',
  '--prefer-binary',
  '--require-hashes',
  '--pre',
  '--trusted-host',
  '--use-feature',
])

/** The option a line starts with (`-e` of `-e./pkg`, `--index-url` of `--index-url=...`), or undefined. */
function optionOf(line: string): string | undefined {
  if (!line.startsWith('-')) return undefined
  if (line.startsWith('--')) return /^--[^\s=]*/.exec(line)![0]
  return line.slice(0, 2)
}

/** Include options: a line that starts with one but was not read as an include (`-rfile`, `-r<TAB>file`) is refused. */
const INCLUDE_OPTIONS = new Set(['-r', '--requirement', '-c', '--constraint'])

function checkOption(line: string, origin: Origin): void {
  const option = optionOf(line)
  if (option !== undefined && INCLUDE_OPTIONS.has(option)) {
    throw new MlserveError(
      'ENV_SPEC_INVALID',
      `"${line.slice(0, 200)}" in ${origin.label}: mlserve reads includes written as "${option} FILE" (one space), and checks the file they name.`,
      {
        suggestions: [`Write it as ${option} <file>, with the file inside the model directory.`],
      },
    )
  }

  if (option === undefined || REQUIREMENT_FILE_OPTIONS.has(option)) return
  throw new MlserveError(
    'ENV_SPEC_INVALID',
    `"${line.slice(0, 200)}" in ${origin.label} is an installer option, not a requirement: a requirements file cannot carry ${option} (pip refuses it there too).`,
    {
      suggestions: [
        'Remove the line: where packages are installed is decided by the environment manager, not by the model.',
        `Options a requirements file may hold: ${[...REQUIREMENT_FILE_OPTIONS].filter((name) => name.startsWith('--')).join(', ')}.`,
      ],
    },
  )
}

/** An include must stay inside the model directory, also once symlinks are resolved. */
async function checkInside(file: string, line: string, origin: Origin): Promise<void> {
  const {inside, real} = await resolveInside(origin.root, file)
  if (inside) return
  throw new MlserveError(
    'ENV_SPEC_INVALID',
    `"${line.slice(0, 200)}" in ${origin.label} includes ${real && real !== file ? `${file} (${real})` : file}, which is outside the model directory ${origin.root.dir}.`,
    {
      suggestions: [
        'A model brings its requirements files with it: copy the file into the model directory and include it from there.',
        'mlserve refuses includes that leave the model directory (pip would read any file they name).',
      ],
    },
  )
}

/** Python's str.splitlines separators (the file, group and record separators are control characters). */
// eslint-disable-next-line no-control-regex
const LINE_BREAK = /\r\n|[\n\r\v\f\u001C-\u001E\u0085\u2028\u2029]/

/** `-r FILE`, `--requirement FILE`, `--requirement=FILE` (and the same for -c / --constraint): the file, or undefined. */
function includedFile(line: string, short: string, long: string): string | undefined {
  if (line.startsWith(`${short} `) || line.startsWith(`${long} `)) return line.replace(/^\S+\s+/, '')
  if (line.startsWith(`${long}=`)) return line.slice(long.length + 1).trim() || undefined
  return undefined
}

/** strip → cut " #" comments → join backslash continuations → drop comments and blanks. */
function logicalLines(lines: readonly string[]): string[] {
  const joined: string[] = []
  let pending: string[] = []
  for (const raw of lines) {
    const stripped = raw.trim()
    const cut = stripped.indexOf(' #')
    const line = cut === -1 ? stripped : stripped.slice(0, cut).trimEnd()
    if (line.endsWith('\\')) {
      pending.push(line.replace(/\\+$/, ''))
      continue
    }

    joined.push([...pending, line].join(''))
    pending = []
  }

  if (pending.length > 0) joined.push(pending.join(''))
  return joined.filter((line) => line !== '' && !line.startsWith('#'))
}

async function readIncluded(file: string, line: string, origin: Origin, readText: ReadText): Promise<string> {
  if (origin.chain.includes(file)) {
    throw new MlserveError(
      'ENV_SPEC_INVALID',
      `Requirements files include each other in a cycle: ${[...origin.chain, file].join(' -> ')} (line "${line}" in ${origin.label}).`,
      {suggestions: ['Remove one of the -r / -c lines that close the cycle.']},
    )
  }

  await checkInside(file, line, origin)
  try {
    return await readText(file)
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : messageOf(error)
    throw new MlserveError(
      'ENV_SPEC_INVALID',
      `Could not read requirements file ${file} (included by "${line}" in ${origin.label}): ${reason}.`,
      {cause: error, suggestions: ['Add the missing file to the model directory, or fix the -r / -c line that names it.']},
    )
  }
}

async function expand(lines: readonly string[], isConstraint: boolean, origin: Origin, readText: ReadText): Promise<Requirement[]> {
  const result: Requirement[] = []
  for (const line of logicalLines(lines)) {
    const requirements = includedFile(line, '-r', '--requirement')
    const constraints = requirements === undefined ? includedFile(line, '-c', '--constraint') : undefined
    const included = requirements ?? constraints
    if (included === undefined) {
      checkOption(line, origin)
      result.push({line, isConstraint})
      continue
    }

    // As in mlflow (and pip), a nested file's kind comes from the line that includes it: `-r` inside a constraints file yields requirements.
    const file = path.resolve(origin.baseDir, included)
    // In order, one include at a time: the expanded lines keep the files' order, as pip reads them.
    // eslint-disable-next-line no-await-in-loop
    const text = await readIncluded(file, line, origin, readText)
    const nested = {label: file, baseDir: path.dirname(file), chain: [...origin.chain, file], root: origin.root}
    // eslint-disable-next-line no-await-in-loop
    result.push(...(await expand(text.split(LINE_BREAK), constraints !== undefined, nested, readText)))
  }

  return result
}

/**
 * mlflow's `_parse_requirements(lines, is_constraint=False, base_dir=baseDir)`: the lines are read as if they
 * were a requirements file in `baseDir` (the model directory); includes resolve against the including file's
 * directory and must stay inside `baseDir`; a line that is an installer option is refused.
 */
export async function expandRequirements(
  lines: readonly string[],
  baseDir: string,
  readText: ReadText = readUtf8,
  label = `the requirement lines given for ${baseDir}`,
): Promise<Requirement[]> {
  const dir = path.resolve(baseDir)
  return expand(lines, false, {label, baseDir: dir, chain: [], root: await dirRoot(dir)}, readText)
}

/** Sorted as Python sorts `_Requirement` tuples: by line, then constraints after requirements. */
export function sortedRequirements(requirements: readonly Requirement[]): Requirement[] {
  return [...requirements].sort((a, b) => (a.line === b.line ? Number(a.isConstraint) - Number(b.isConstraint) : a.line < b.line ? -1 : 1))
}
