// Reads a model's environment spec (python_env.yaml, else conda.yaml [+ requirements.txt]) as mlflow's _get_python_env does.
import {stat} from 'node:fs/promises'
import path from 'node:path'

import {MlserveError, isMlserveError, messageOf} from '../errors.js'
import {MODEL_TEXT_MAX_BYTES, readBoundedText} from '../util/read-bounded.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'
import {expandRequirements} from './requirements.js'

export interface EnvSpec {
  /** The Python version asked for: "3.11.7", or "3.11" (as written, a string). */
  readonly python: string
  /** Requirement lines, installed first. */
  readonly buildDependencies: readonly string[]
  /** Requirement lines as written (e.g. "-r requirements.txt"), relative to the model directory. */
  readonly dependencies: readonly string[]
  /** Which files it came from, for logs: 'python_env.yaml' | 'conda.yaml' | 'conda.yaml + requirements.txt'. */
  readonly source: string
  /** The raw text of the model's conda.yaml when it exists (the conda manager and its cache key use it). */
  readonly condaYaml?: string
  readonly condaYamlPath?: string
  /** Warnings to log, with mlflow's wording. */
  readonly warnings: readonly string[]
}

interface PythonEnv {
  python?: string
  buildDependencies: string[]
  dependencies: string[]
}

const PYTHON_ENV_KEYS = new Set(['python', 'build_dependencies', 'dependencies'])
/** mlflow's _CONDA_DEPENDENCY_REGEX: the conda deps a virtualenv can honour. */
const CONDA_DEPENDENCY = /^(python|pip|setuptools|wheel)(<|>|<=|>=|=|==|!=)?([\d.]+)?$/

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)

const invalid = (message: string, suggestions: string[], cause?: unknown): MlserveError =>
  new MlserveError('ENV_SPEC_INVALID', message, {suggestions, cause})

/** Python's name for the type of a YAML value, as in "<class 'float'>" (js-yaml reads 3.0 as 3: an int here). */
function pyType(value: unknown): string {
  if (typeof value === 'string') return 'str'
  if (typeof value === 'boolean') return 'bool'
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float'
  if (value === null || value === undefined) return 'NoneType'
  if (Array.isArray(value)) return 'list'
  return value instanceof Date ? 'datetime.date' : 'dict'
}

/** The longest repr a message prints of a value from a model file; longer ones end in "...". */
const REPR_MAX = 2000

/** Python's repr of a YAML value, for messages that print one: at most REPR_MAX characters, whatever the value expands to. */
function pyRepr(value: unknown, max = REPR_MAX): string {
  const out: string[] = []
  let length = 0
  const emit = (text: string) => {
    out.push(text)
    length += text.length
  }

  const visit = (item: unknown): void => {
    if (length > max) return
    if (typeof item === 'string') {
      const cut = item.slice(0, max + 1)
      const quote = cut.includes("'") && !cut.includes('"') ? '"' : "'"
      const escaped = cut
        .replaceAll('\\', '\\\\')
        .replaceAll(quote, `\\${quote}`)
        .replaceAll('\n', '\\n')
        .replaceAll('\r', '\\r')
        .replaceAll('\t', '\\t')
      emit(quote + escaped + quote)
    } else if (typeof item === 'boolean') emit(item ? 'True' : 'False')
    else if (item === null || item === undefined) emit('None')
    else if (Array.isArray(item)) {
      emit('[')
      item.forEach((child, index) => {
        if (length > max) return
        if (index > 0) emit(', ')
        visit(child)
      })
      emit(']')
    } else if (isRecord(item)) {
      emit('{')
      Object.entries(item).forEach(([key, child], index) => {
        if (length > max) return
        if (index > 0) emit(', ')
        visit(key)
        emit(': ')
        visit(child)
      })
      emit('}')
    } else emit(String(item))
  }

  visit(value)
  const text = out.join('')
  return text.length > max ? `${text.slice(0, max)}...` : text
}

function loadYaml(text: string, file: string): unknown {
  try {
    return loadBoundedYaml(text)
  } catch (error) {
    throw invalid(`Could not parse ${file}: ${messageOf(error)}`, [`Fix the YAML syntax of ${file}.`], error)
  }
}

/** A list of requirement lines: mlflow's "`<key>` must be a list but got <class '…'>" check, plus string items. */
function requirementList(value: unknown, key: string, file: string): string[] {
  if (value === null || value === undefined) return []
  if (!Array.isArray(value)) {
    throw invalid(`\`${key}\` must be a list but got <class '${pyType(value)}'>`, [
      `In ${file}, write \`${key}\` as a YAML list of pip requirement lines.`,
    ])
  }

  const bad = value.find((item) => typeof item !== 'string')
  if (bad !== undefined) {
    throw invalid(`\`${key}\` must be a list of strings but has ${pyRepr(bad)} (<class '${pyType(bad)}'>)`, [
      `In ${file}, quote every item of \`${key}\` (e.g. "numpy==1.26").`,
    ])
  }

  return value as string[]
}

/** mlflow's `_PythonEnv.from_yaml`: exactly the keys python, build_dependencies, dependencies; `python` a string. */
export function parsePythonEnv(text: string, file: string): PythonEnv {
  const doc = loadYaml(text, file)
  if (!isRecord(doc)) {
    throw invalid(`${file} is not a YAML mapping.`, ['python_env.yaml is a mapping with the keys python, build_dependencies and dependencies.'])
  }

  const unknown = Object.keys(doc).find((key) => !PYTHON_ENV_KEYS.has(key))
  if (unknown !== undefined) {
    throw invalid(`_PythonEnv.__init__() got an unexpected keyword argument '${unknown}'`, [
      `Remove \`${unknown}\` from ${file}: only python, build_dependencies and dependencies are allowed.`,
    ])
  }

  const {python} = doc
  if (python !== null && python !== undefined && typeof python !== 'string') {
    throw invalid(`\`python\` must be a string but got <class '${pyType(python)}'>`, [
      `Quote the version in ${file} (python: "${pyRepr(python, 40)}"): unquoted, YAML reads a number, and 3.10 becomes 3.1.`,
    ])
  }

  return {
    python: python || undefined,
    buildDependencies: requirementList(doc.build_dependencies, 'build_dependencies', file),
    dependencies: requirementList(doc.dependencies, 'dependencies', file),
  }
}

/** mlflow's `_PythonEnv.get_dependencies_from_conda_yaml`: python and pip/setuptools/wheel pins, and the pip section. */
export function pythonEnvFromConda(text: string, file: string): PythonEnv & {warnings: string[]} {
  const doc = loadYaml(text, file)
  const deps = isRecord(doc) ? (doc.dependencies ?? []) : undefined
  if (!Array.isArray(deps)) {
    throw invalid(`${file} is not a conda environment file: \`dependencies\` must be a list.`, [
      'A conda.yaml is a mapping whose `dependencies` list holds conda packages and a {pip: [...]} entry.',
    ])
  }

  let python: string | undefined
  const buildDependencies: string[] = []
  const unmatched: string[] = []
  let pip: unknown
  for (const dep of deps) {
    if (typeof dep === 'string') {
      const match = CONDA_DEPENDENCY.exec(dep)
      if (!match) {
        unmatched.push(dep)
        continue
      }

      const [, pkg = '', operator, version] = match
      if (python === undefined && pkg === 'python') {
        checkPythonPin(dep, operator, file)
        python = version
        continue
      }

      buildDependencies.push(pkg + (operator === '=' ? '==' : (operator ?? '')) + (version ?? ''))
    } else if (isRecord(dep) && 'pip' in dep) {
      pip = dep.pip
    } else {
      throw invalid(`Invalid conda dependency: ${pyRepr(dep)}. Must be str or dict in the form of {"pip": [...]}`, [
        `Fix ${file}: each dependency is a conda package string or a {pip: [...]} mapping.`,
      ])
    }
  }

  const warnings =
    unmatched.length > 0 ? [`The following conda dependencies will not be installed in the resulting environment: ${pyRepr(unmatched)}`] : []
  return {python, buildDependencies, dependencies: requirementList(pip, 'dependencies', file), warnings}
}

/** The first python dependency must be pinned, with an operator a virtualenv can honour. */
function checkPythonPin(dep: string, operator: string | undefined, file: string): void {
  if (operator === undefined) {
    throw invalid(`Invalid dependency for python: ${dep}. It must be pinned (e.g. python=3.8.13).`, [
      `Pin the Python version in ${file}, e.g. python=3.11.9.`,
    ])
  }

  if (operator === '<' || operator === '>' || operator === '!=') {
    throw invalid(`Invalid version comparator for python: '${operator}'. Must be one of ['<=', '>=', '=', '=='].`, [
      `Pin the Python version in ${file} with =, ==, <= or >= (e.g. python=3.11.9).`,
    ])
  }
}

const DEFAULT_CONDA = 'conda.yaml'
const DEFAULT_PYTHON_ENV = 'python_env.yaml'
const REQUIREMENTS = 'requirements.txt'

/** mlflow's message when it falls back to conda.yaml ("versionof" without a space is mlflow's own). */
const OLD_MODEL =
  `This model is missing ${DEFAULT_PYTHON_ENV}, which is because it was logged in an older versionof MLflow (< 1.26.0) ` +
  `that does not support restoring a model environment with virtualenv. ` +
  `Attempting to extract model dependencies from ${REQUIREMENTS} and ${DEFAULT_CONDA} instead.`

/**
 * The files MLmodel's python_function `env` names: a string is the conda file (mlflow < 2.0); a dict names both.
 * mlflow raises KeyError for a dict lacking either key; here a missing `conda` means conda.yaml and a missing
 * `virtualenv` means there is no python env file (the conda.yaml fallback).
 */
export function envFiles(env: string | Readonly<Record<string, string>> | undefined): {conda: string; pythonEnv?: string} {
  if (env === undefined || typeof env === 'string') return {conda: env || DEFAULT_CONDA, pythonEnv: DEFAULT_PYTHON_ENV}
  return {conda: env.conda || DEFAULT_CONDA, pythonEnv: env.virtualenv || undefined}
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readBoundedText(file, {maxBytes: MODEL_TEXT_MAX_BYTES, code: 'ENV_SPEC_INVALID'})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    if (isMlserveError(error)) throw error
    throw invalid(`Could not read ${file}: ${messageOf(error)}`, [`Make ${file} a readable file.`], error)
  }
}

const exists = (file: string): Promise<boolean> =>
  stat(file).then(
    () => true,
    () => false,
  )

/** The version to use, and mlflow's warning when the file gives none. */
function pythonOrDefault(python: string | undefined, file: string, defaultPython: string): {python: string; warnings: string[]} {
  if (python) return {python, warnings: []}
  const warning = `${file} does not include a python version specification. Using the current python version ${defaultPython}.`
  return {python: defaultPython, warnings: [warning]}
}

/**
 * mlflow's `_get_python_env` (virtualenv/uv managers): python_env.yaml when it exists; else python and build
 * dependencies from conda.yaml with `-r requirements.txt` when requirements.txt exists; else all of it from conda.yaml.
 */
export async function readEnvSpec(
  modelDir: string,
  pyfuncEnv: string | Readonly<Record<string, string>> | undefined,
  defaultPython: string,
): Promise<EnvSpec> {
  const spec = await readSpecFiles(modelDir, pyfuncEnv, defaultPython)
  // Build dependencies are installed from a requirements file too: the same checks as the dependencies
  // (no installer options such as --target, no include that leaves the model directory).
  await expandRequirements(spec.buildDependencies, modelDir, undefined, `the build dependencies of ${spec.source}`)
  return spec
}

async function readSpecFiles(
  modelDir: string,
  pyfuncEnv: string | Readonly<Record<string, string>> | undefined,
  defaultPython: string,
): Promise<EnvSpec> {
  const files = envFiles(pyfuncEnv)
  const condaYamlPath = path.resolve(modelDir, files.conda)
  const condaYaml = await readIfExists(condaYamlPath)
  const conda = condaYaml === undefined ? {} : {condaYaml, condaYamlPath}

  const pythonEnvPath = files.pythonEnv === undefined ? undefined : path.resolve(modelDir, files.pythonEnv)
  const pythonEnvText = pythonEnvPath === undefined ? undefined : await readIfExists(pythonEnvPath)
  if (files.pythonEnv !== undefined && pythonEnvPath !== undefined && pythonEnvText !== undefined) {
    const env = parsePythonEnv(pythonEnvText, pythonEnvPath)
    const {python, warnings} = pythonOrDefault(env.python, pythonEnvPath, defaultPython)
    return {...env, python, source: files.pythonEnv, ...conda, warnings}
  }

  if (condaYaml === undefined) {
    const pythonEnvPart = pythonEnvPath === undefined ? 'MLmodel names no python env file' : `nor does ${pythonEnvPath}`
    throw invalid(`The model has no environment spec: ${condaYamlPath} does not exist, ${pythonEnvPart}.`, [
      'Save the model again with mlflow (it writes python_env.yaml, conda.yaml and requirements.txt).',
      'Or serve it with --env-manager local, in a Python that already has its dependencies.',
    ])
  }

  const fallback =
    files.pythonEnv === undefined
      ? `MLmodel's python_function env names no virtualenv file (mlflow's virtualenv and uv managers fail here with KeyError: 'virtualenv'); reading ${files.conda} instead.`
      : OLD_MODEL
  const fromConda = pythonEnvFromConda(condaYaml, condaYamlPath)
  const {python, warnings} = pythonOrDefault(fromConda.python, condaYamlPath, defaultPython)
  const allWarnings = [fallback, ...warnings, ...fromConda.warnings]
  if (await exists(path.join(modelDir, REQUIREMENTS))) {
    const {buildDependencies} = fromConda
    const dependencies = [`-r ${REQUIREMENTS}`]
    return {python, buildDependencies, dependencies, source: `${files.conda} + ${REQUIREMENTS}`, ...conda, warnings: allWarnings}
  }

  const {buildDependencies, dependencies} = fromConda
  return {python, buildDependencies, dependencies, source: files.conda, ...conda, warnings: allWarnings}
}
