// @ts-check
// Provisions the Python test toolchain (a venv with pinned mlflow) and the fixture models, cached
// outside the clone and re-creatable from nothing. Safe under concurrency (a lock) and interruption
// (a completion marker: a half-built directory is never reused).
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SAVE_MODELS = path.join(REPO_ROOT, 'test/fixtures/save_models.py')
const UV_VERSION = '0.13.9'
const MARKER = '.mlserve-complete'

/**
 * The toolchains: `main` (mlflow 3.x: the reference server and the scorer for most tests) and `legacy`
 * (mlflow 2.20, served by gunicorn). Each has its pinned requirements and the fixture models its own
 * mlflow saves.
 * @typedef {'main' | 'legacy'} ToolchainName
 */
const TOOLCHAINS = {
  main: {requirements: 'test/toolchain/requirements.txt', models: []},
  legacy: {requirements: 'test/toolchain/legacy-requirements.txt', models: ['sum', 'raise']},
}

export const cacheRoot = () =>
  process.env.MLSERVE_TEST_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'mlserve-test')

/** @param {...string} files */
const hashOf = (...files) => {
  const hash = createHash('sha256')
  for (const file of files) hash.update(readFileSync(file))
  return hash.digest('hex').slice(0, 12)
}

/** @param {ToolchainName} name */
const requirementsOf = (name) => path.join(REPO_ROOT, TOOLCHAINS[name].requirements)
/** @param {ToolchainName} [name] */
export const toolchainDir = (name = 'main') => path.join(cacheRoot(), `${name}-${hashOf(requirementsOf(name))}`)
/** @param {ToolchainName} [name] */
export const toolchainBin = (name = 'main') => path.join(toolchainDir(name), 'bin')
/** @param {ToolchainName} [name] */
export const toolchainPython = (name = 'main') => path.join(toolchainBin(name), 'python')
/** @param {ToolchainName} [name] */
export const fixturesDir = (name = 'main') => path.join(cacheRoot(), `${name}-models-${hashOf(requirementsOf(name), SAVE_MODELS)}`)
/**
 * @param {string} model
 * @param {ToolchainName} [name]
 */
export const fixtureModel = (model, name = 'main') => path.join(fixturesDir(name), model)

/** An environment in which `mlflow`, `uvicorn` and `python` are the toolchain's. */
/**
 * @param {Record<string, string>} [extra]
 * @param {ToolchainName} [name]
 * @returns {Record<string, string>}
 */
export function toolchainEnv(extra = {}, name = 'main') {
  return {
    .../** @type {Record<string, string>} */ (process.env),
    PATH: `${toolchainBin(name)}${path.delimiter}${process.env.PATH ?? ''}`,
    // MLflow's error messages print a Python set; a fixed hash seed makes its order repeatable.
    PYTHONHASHSEED: '0',
    MLFLOW_DISABLE_TELEMETRY: 'true',
    DO_NOT_TRACK: 'true',
    ...extra,
  }
}

/** @param {number} ms */
function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Runs build(dir) at most once across processes: mkdir is the lock; the marker says "complete". */
/**
 * @param {string} dir
 * @param {(dir: string) => void} build
 */
export function buildOnce(dir, build) {
  if (existsSync(path.join(dir, MARKER))) return
  mkdirSync(path.dirname(dir), {recursive: true})
  const lock = `${dir}.lock`
  for (;;) {
    try {
      mkdirSync(lock)
      writeFileSync(path.join(lock, 'pid'), String(process.pid))
      break
    } catch {
      const owner = Number(readFileSync(path.join(lock, 'pid'), 'utf8').trim() || 0)
      if (owner && !isAlive(owner)) rmSync(lock, {recursive: true, force: true})
      else sleepSync(500)
    }
  }

  try {
    if (existsSync(path.join(dir, MARKER))) return
    rmSync(dir, {recursive: true, force: true})
    build(dir)
    writeFileSync(path.join(dir, MARKER), new Date().toISOString())
  } catch (error) {
    rmSync(dir, {recursive: true, force: true})
    throw error
  } finally {
    rmSync(lock, {recursive: true, force: true})
  }
}

/** @param {number} pid */
function isAlive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * @param {string} file
 * @param {string[]} args
 * @param {Record<string, string>} [env]
 */
const run = (file, args, env) => execFileSync(file, args, {stdio: ['ignore', 'inherit', 'inherit'], env: env ?? process.env})

/**
 * The venv with a pinned toolchain, built with uv from PyPI (python3 -m venv, then pip install uv).
 * @param {ToolchainName} [name]
 * @returns {string} the toolchain's python
 */
export function ensureToolchain(name = 'main') {
  buildOnce(toolchainDir(name), (dir) => {
    process.stderr.write(`# provisioning the ${name} Python test toolchain in ${dir}\n`)
    run(process.env.MLSERVE_TEST_BASE_PYTHON ?? 'python3', ['-m', 'venv', dir])
    run(path.join(dir, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `uv==${UV_VERSION}`])
    run(path.join(dir, 'bin', 'uv'), ['pip', 'install', '--quiet', '--python', path.join(dir, 'bin', 'python'), '-r', requirementsOf(name)])
  })
  return toolchainPython(name)
}

/**
 * The fixture models, saved by the toolchain's own mlflow from test/fixtures/save_models.py.
 * @param {ToolchainName} [name]
 * @returns {string} the fixtures directory
 */
export function ensureFixtures(name = 'main') {
  const python = ensureToolchain(name)
  buildOnce(fixturesDir(name), (dir) => {
    process.stderr.write(`# saving the ${name} fixture models in ${dir}\n`)
    mkdirSync(dir, {recursive: true})
    run(python, [SAVE_MODELS, dir, ...TOOLCHAINS[name].models], toolchainEnv({}, name))
  })
  return fixturesDir(name)
}
