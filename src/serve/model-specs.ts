// Which models one mlserve serves: `-m NAME=URI` (repeatable), a bare URI named after what it names, and
// the --models file; names checked (valid, distinct) before any work.
import path from 'node:path'

import {ENV_MANAGERS, type EnvManager} from '../config.js'
import type {ModelSettings} from './model-settings.js'
import {MlserveError, messageOf} from '../errors.js'
import {parseModelUri} from '../uri/parse.js'
import {MODEL_TEXT_MAX_BYTES, readBoundedText} from '../util/read-bounded.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'
import {isModelPattern, parseModelPattern, type ModelPattern} from './model-patterns.js'

export type {ModelSettings} from './model-settings.js'

export interface ModelSpec {
  /** The name in its routes (/models/<name>/invocations). */
  readonly name: string
  readonly uri: string
  readonly settings: ModelSettings
}

/** A route segment that needs no escaping, names of registered models included: letters, digits, . _ - */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export const isModelName = (name: string): boolean => NAME.test(name)

const usage = (message: string, suggestions: string[]) => new MlserveError('INVALID_ARGUMENT', message, {suggestions})

const NAME_RULE = 'A model name is 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit.'

/** The name a bare URI gets: the registered model's name, else the last segment of its path. */
export function nameOfUri(uri: string): string | undefined {
  let parsed
  try {
    parsed = parseModelUri(uri)
  } catch {
    return undefined
  }

  if ('name' in parsed && typeof parsed.name === 'string') return parsed.name
  const trimmed = uri.replace(/[?#].*$/, '').replace(/\/+$/, '')
  const base = path.posix.basename(trimmed.replace(/^[a-z][a-z0-9+.-]*:\/*/i, '/'))
  return base === '' || base === '.' || base === '..' ? undefined : base
}

/** One -m value: `NAME=URI` when the part before the first "=" is a valid name, else a bare URI named after it. */
export function parseModelArg(value: string): ModelSpec {
  const eq = value.indexOf('=')
  if (eq > 0 && isModelName(value.slice(0, eq))) {
    const uri = value.slice(eq + 1)
    if (isModelPattern(uri)) {
      throw usage(`-m ${value}: a registry pattern serves each model it matches under its registered name; it takes no NAME=.`, [
        `Drop "${value.slice(0, eq + 1)}": -m '${uri}'.`,
      ])
    }

    if (uri === '') throw usage(`-m ${value}: the model URI after "=" is empty.`, ['Give -m NAME=URI, e.g. -m iris=./models/iris.'])
    return {name: value.slice(0, eq), uri, settings: {}}
  }

  const name = nameOfUri(value)
  if (name === undefined || !isModelName(name)) {
    throw usage(`-m ${value}: cannot name this model after its URI${name === undefined ? '' : ` ("${name}" is not a valid name)`}.`, [
      `Name it yourself: -m NAME=${value}. ${NAME_RULE}`,
    ])
  }

  return {name, uri: value, settings: {}}
}

/** Every model once: the first duplicate name is a usage error. */
export function checkModelNames(specs: readonly ModelSpec[]): readonly ModelSpec[] {
  const seen = new Set<string>()
  for (const spec of specs) {
    if (seen.has(spec.name)) {
      throw usage(`Two models are named "${spec.name}": each model needs its own name (it is its route, /models/${spec.name}/invocations).`, [
        'Name them yourself: -m NAME=URI, or name: in the --models file.',
      ])
    }

    seen.add(spec.name)
  }

  return specs
}

const ENTRY_KEYS = new Set(['name', 'uri', 'workers', 'timeout', 'batch', 'env_manager', 'install_mlflow'])

const FILE_SHAPE =
  'The --models file is a YAML or JSON list of {name, uri} with optional workers, timeout, batch, env_manager and install_mlflow.'

/** Reads and checks the --models file (bounded: a regular file of at most 16 MiB, aliases budgeted). */
export async function readModelsFile(file: string): Promise<Array<ModelSpec | ModelPattern>> {
  return (await readModelsFileText(file)).entries
}

/** The --models file's entries and the text they were read from (generate-k8s ships that text as it was checked). */
export async function readModelsFileText(file: string): Promise<{text: string; entries: Array<ModelSpec | ModelPattern>}> {
  const invalid = (message: string, cause?: unknown) =>
    new MlserveError('INVALID_ARGUMENT', `--models ${file}: ${message}`, {cause, suggestions: [FILE_SHAPE]})
  let text: string
  let doc: unknown
  try {
    const rule = 'mlserve reads only a regular file of at most 16 MiB as its --models file'
    text = await readBoundedText(file, {maxBytes: MODEL_TEXT_MAX_BYTES, code: 'INVALID_ARGUMENT', what: 'the file', rule})
    doc = loadBoundedYaml(text)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT' ? 'no such file' : error instanceof MlserveError ? error.message : `not valid YAML or JSON: ${messageOf(error)}`
    throw invalid(why, error)
  }

  if (!Array.isArray(doc) || doc.length === 0) throw invalid('expected a non-empty list of models')
  return {text, entries: doc.map((entry, index) => specOf(entry, index, invalid))}
}

function specOf(entry: unknown, index: number, invalid: (message: string) => MlserveError): ModelSpec | ModelPattern {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw invalid(`entry ${index + 1} is not a mapping`)
  const fields = entry as Record<string, unknown>
  const where = `entry ${index + 1}`
  for (const key of Object.keys(fields)) if (!ENTRY_KEYS.has(key)) throw invalid(`${where}: unknown key "${key}"`)
  const {uri, name} = fields
  if (typeof uri !== 'string' || uri.trim() === '') throw invalid(`${where}: uri is missing or not a string`)
  if (name !== undefined && (typeof name !== 'string' || !isModelName(name)))
    throw invalid(`${where}: name ${JSON.stringify(name)} is not valid. ${NAME_RULE}`)
  const pattern = isModelPattern(uri)
  if (pattern && name !== undefined)
    throw invalid(`${where}: ${uri} is a registry pattern: each match is served under its registered name, drop name:`)
  const derived = pattern ? '' : (name ?? nameOfUri(uri))
  if (!pattern && (derived === undefined || !isModelName(derived))) throw invalid(`${where}: cannot name ${uri} after its URI; give it a name:`)
  const count = (key: string, min: number): number | undefined => {
    const value = fields[key]
    if (value === undefined) return undefined
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
      throw invalid(`${where}: ${key} must be an integer of at least ${min}`)
    return value
  }

  const flag = (key: string): boolean | undefined => {
    const value = fields[key]
    if (value !== undefined && typeof value !== 'boolean') throw invalid(`${where}: ${key} must be true or false`)
    return value
  }

  const {batch, env_manager: manager} = fields
  if (batch !== undefined && typeof batch !== 'boolean' && !(typeof batch === 'number' && Number.isInteger(batch) && batch >= 1)) {
    throw invalid(`${where}: batch must be true, false or the most rows in one merged call (an integer of at least 1)`)
  }

  if (manager !== undefined && !ENV_MANAGERS.includes(manager as EnvManager))
    throw invalid(`${where}: env_manager must be one of ${ENV_MANAGERS.join(', ')}`)
  const settings: ModelSettings = {
    workers: count('workers', 1),
    timeoutSeconds: count('timeout', 1),
    batch,
    envManager: manager as EnvManager | undefined,
    installMlflow: flag('install_mlflow'),
  }
  const own: ModelSettings = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined))
  if (pattern) {
    try {
      return parseModelPattern(uri, own)
    } catch (error) {
      throw invalid(`${where}: ${(error as Error).message}`)
    }
  }

  return {name: derived!, uri, settings: own}
}
