// Reads a model's environment spec (python_env.yaml, else conda.yaml [+ requirements.txt]) as mlflow's _get_python_env does.
import {stat} from 'node:fs/promises'
import path from 'node:path'

import {isMlserveError, messageOf} from '../errors.js'
import {MODEL_TEXT_MAX_BYTES, readBoundedText} from '../util/read-bounded.js'
import {invalidEnvSpec, parsePythonEnv, pythonEnvFromConda} from './python-env.js'
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
    throw invalidEnvSpec(`Could not read ${file}: ${messageOf(error)}`, [`Make ${file} a readable file.`], error)
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
    throw invalidEnvSpec(`The model has no environment spec: ${condaYamlPath} does not exist, ${pythonEnvPart}.`, [
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
