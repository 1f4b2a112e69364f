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
const REQUIREMENTS = path.join(REPO_ROOT, 'test/toolchain/requirements.txt')
const SAVE_MODELS = path.join(REPO_ROOT, 'test/fixtures/save_models.py')
const UV_VERSION = '0.13.9'
const MARKER = '.mlserve-complete'

export const cacheRoot = () =>
  process.env.MLSERVE_TEST_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'mlserve-test')

/** @param {...string} files */
const hashOf = (...files) => {
  const hash = createHash('sha256')
  for (const file of files) hash.update(readFileSync(file))
  return hash.digest('hex').slice(0, 12)
}

export const toolchainDir = () => path.join(cacheRoot(), `toolchain-${hashOf(REQUIREMENTS)}`)
export const toolchainPython = () => path.join(toolchainDir(), 'bin', 'python')
export const toolchainBin = () => path.join(toolchainDir(), 'bin')
export const fixturesDir = () => path.join(cacheRoot(), `models-${hashOf(REQUIREMENTS, SAVE_MODELS)}`)
/** @param {string} name */
export const fixtureModel = (name) => path.join(fixturesDir(), name)

/** An environment in which `mlflow`, `uvicorn` and `python` are the toolchain's. */
/**
 * @param {Record<string, string>} [extra]
 * @returns {Record<string, string>}
 */
export function toolchainEnv(extra = {}) {
  return {
    .../** @type {Record<string, string>} */ (process.env),
    PATH: `${toolchainBin()}${path.delimiter}${process.env.PATH ?? ''}`,
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
function buildOnce(dir, build) {
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
const run = (file, args, env) =>
  execFileSync(file, args, {stdio: ['ignore', 'inherit', 'inherit'], env: env ?? process.env})

/** The venv with the pinned toolchain; built with uv from PyPI (python3 -m venv + pip install uv). */
/** @returns {string} the toolchain's python */
export function ensureToolchain() {
  buildOnce(toolchainDir(), (dir) => {
    process.stderr.write(`# provisioning the Python test toolchain in ${dir}\n`)
    run(process.env.MLSERVE_TEST_BASE_PYTHON ?? 'python3', ['-m', 'venv', dir])
    run(path.join(dir, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `uv==${UV_VERSION}`])
    run(path.join(dir, 'bin', 'uv'), ['pip', 'install', '--quiet', '--python', path.join(dir, 'bin', 'python'), '-r', REQUIREMENTS])
  })
  return toolchainPython()
}

/** The fixture models, saved by real mlflow from test/fixtures/save_models.py. */
/** @returns {string} the fixtures directory */
export function ensureFixtures() {
  const python = ensureToolchain()
  buildOnce(fixturesDir(), (dir) => {
    process.stderr.write(`# saving fixture models in ${dir}\n`)
    mkdirSync(dir, {recursive: true})
    run(python, [SAVE_MODELS, dir], toolchainEnv())
  })
  return fixturesDir()
}
