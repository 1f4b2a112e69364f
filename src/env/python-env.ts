// Parses python_env.yaml and conda.yaml into the python version and requirement lines mlflow's
// _PythonEnv holds, with mlflow's checks and wording.
import {MlserveError, messageOf} from '../errors.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'
import {isRecord, pyRepr, pyType} from './py-repr.js'

/** The python version and requirement lines of python_env.yaml, or of conda.yaml as mlflow reads it. */
export interface PythonEnv {
  python?: string
  buildDependencies: string[]
  dependencies: string[]
}

const PYTHON_ENV_KEYS = new Set(['python', 'build_dependencies', 'dependencies'])
/** mlflow's _CONDA_DEPENDENCY_REGEX: the conda deps a virtualenv can honour. */
const CONDA_DEPENDENCY = /^(python|pip|setuptools|wheel)(<|>|<=|>=|=|==|!=)?([\d.]+)?$/

/** An ENV_SPEC_INVALID error: the problem and how to fix the model's files. */
export const invalidEnvSpec = (message: string, suggestions: string[], cause?: unknown): MlserveError =>
  new MlserveError('ENV_SPEC_INVALID', message, {suggestions, cause})

function loadYaml(text: string, file: string): unknown {
  try {
    return loadBoundedYaml(text)
  } catch (error) {
    throw invalidEnvSpec(`Could not parse ${file}: ${messageOf(error)}`, [`Fix the YAML syntax of ${file}.`], error)
  }
}

/** A list of requirement lines: mlflow's "`<key>` must be a list but got <class '…'>" check, plus string items. */
function requirementList(value: unknown, key: string, file: string): string[] {
  if (value === null || value === undefined) return []
  if (!Array.isArray(value)) {
    throw invalidEnvSpec(`\`${key}\` must be a list but got <class '${pyType(value)}'>`, [
      `In ${file}, write \`${key}\` as a YAML list of pip requirement lines.`,
    ])
  }

  const bad = value.find((item) => typeof item !== 'string')
  if (bad !== undefined) {
    throw invalidEnvSpec(`\`${key}\` must be a list of strings but has ${pyRepr(bad)} (<class '${pyType(bad)}'>)`, [
      `In ${file}, quote every item of \`${key}\` (e.g. "numpy==1.26").`,
    ])
  }

  return value as string[]
}

/** mlflow's `_PythonEnv.from_yaml`: exactly the keys python, build_dependencies, dependencies; `python` a string. */
export function parsePythonEnv(text: string, file: string): PythonEnv {
  const doc = loadYaml(text, file)
  if (!isRecord(doc)) {
    throw invalidEnvSpec(`${file} is not a YAML mapping.`, [
      'python_env.yaml is a mapping with the keys python, build_dependencies and dependencies.',
    ])
  }

  const unknown = Object.keys(doc).find((key) => !PYTHON_ENV_KEYS.has(key))
  if (unknown !== undefined) {
    throw invalidEnvSpec(`_PythonEnv.__init__() got an unexpected keyword argument '${unknown}'`, [
      `Remove \`${unknown}\` from ${file}: only python, build_dependencies and dependencies are allowed.`,
    ])
  }

  const {python} = doc
  if (python !== null && python !== undefined && typeof python !== 'string') {
    throw invalidEnvSpec(`\`python\` must be a string but got <class '${pyType(python)}'>`, [
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
    throw invalidEnvSpec(`${file} is not a conda environment file: \`dependencies\` must be a list.`, [
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
      throw invalidEnvSpec(`Invalid conda dependency: ${pyRepr(dep)}. Must be str or dict in the form of {"pip": [...]}`, [
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
    throw invalidEnvSpec(`Invalid dependency for python: ${dep}. It must be pinned (e.g. python=3.8.13).`, [
      `Pin the Python version in ${file}, e.g. python=3.11.9.`,
    ])
  }

  if (operator === '<' || operator === '>' || operator === '!=') {
    throw invalidEnvSpec(`Invalid version comparator for python: '${operator}'. Must be one of ['<=', '>=', '=', '=='].`, [
      `Pin the Python version in ${file} with =, ==, <= or >= (e.g. python=3.11.9).`,
    ])
  }
}
