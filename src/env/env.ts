// Provides the Python environment that runs the scorer, per env manager: local, virtualenv, uv, conda.
import path from 'node:path'

import type {ModelOptions} from '../config.js'
import {MlserveError} from '../errors.js'
import type {Logger, Phase} from '../log.js'
import type {Mlmodel} from '../model/mlmodel.js'
import {envDamage, markInUse} from './cache.js'
import {ensureCondaEnv} from './conda.js'
import {ensureManagedEnv, mlflowToInstall, verifyEnv} from './managed.js'
import {probePython, pythonVersionOf, type PythonInfo} from './python.js'
import {SCORER_SPEEDUPS, serverModules} from './server-packages.js'
import {readEnvSpec} from './spec.js'
import {ensureUv} from './uv.js'

/** A ready environment: the interpreter that runs the scorer, and what it has. */
export interface PythonEnv extends PythonInfo {
  readonly manager: ModelOptions['envManager']
  /** The mlflow version, known to be present. */
  readonly mlflowVersion: string
  /** Releases the env for `env prune` (a no-op for local). */
  readonly release: () => Promise<void>
  /** The directory that holds the env's files (bin/python, lib/): mlserve's own envs only, not local. */
  readonly home?: string
  /** The environment's cache key (its directory's name): mlserve's own envs only, not local. */
  readonly key?: string
}

/**
 * Why the scorer cannot start in this env any more, checked cheaply: its interpreter or mlflow was
 * removed while mlserve was serving (so every restart exits 127, command not found). A line for the log
 * when a scorer exits, or undefined while the env is sound (and always for the local manager).
 */
export async function diagnoseEnv(env: Pick<PythonEnv, 'home'>): Promise<string | undefined> {
  if (!env.home) return undefined
  const damage = await envDamage(env.home)
  return damage
    ? `the model's environment ${env.home} was removed or damaged while mlserve was serving (${damage}): restarts of the scorer cannot succeed; restart mlserve, which builds the environment again`
    : undefined
}

function requireMlflow(info: PythonInfo, manager: PythonEnv['manager'], release: PythonEnv['release']): PythonEnv {
  if (info.mlflowVersion === null) {
    throw new MlserveError('MLFLOW_NOT_FOUND', `mlflow is not installed in the Python interpreter ${info.executable}.`, {
      suggestions: [
        `Install it there (\`${info.executable} -m pip install mlflow\`), or point --python at an interpreter that has mlflow.`,
        'Or let mlserve build the model its own environment with --env-manager virtualenv (with --install-mlflow if the model does not pin mlflow).',
      ],
    })
  }

  return {...info, manager, mlflowVersion: info.mlflowVersion, release}
}

/** The `local` manager: the given interpreter as it is (mlflow must already be installed there). */
export async function localEnv(python: string, env: ModelOptions['env']): Promise<PythonEnv> {
  return requireMlflow(await probePython(python, env), 'local', async () => {})
}

export interface PrepareRequest {
  readonly options: ModelOptions
  readonly modelDir: string
  readonly mlmodel: Mlmodel
  readonly log: Logger
  readonly signal?: AbortSignal
  /**
   * Requirement specs of the server that runs the model instead of mlflow's own (--enable-mlserver:
   * mlserver, mlserver-mlflow), installed after the model's requirements and part of the env's cache
   * key. The `local` manager installs nothing: the interpreter must already have them.
   */
  readonly serverPackages?: readonly string[]
}

/** The local interpreter must already have the server packages' modules (mlserve installs nothing there). */
export function requireServerPackages(env: Pick<PythonEnv, 'executable' | 'mlserver'>, serverPackages: readonly string[]): void {
  const modules = serverModules(serverPackages)
  if (modules.length === 0 || env.mlserver) return
  const quoted = serverPackages.map((spec) => `'${spec}'`).join(' ')
  throw new MlserveError(
    'SCORER_DEPENDENCY_MISSING',
    `--enable-mlserver needs the Python packages mlserver and mlserver-mlflow, which are not installed in ${env.executable}.`,
    {
      suggestions: [
        `Install them there (\`${env.executable} -m pip install ${quoted}\`),`,
        'or let mlserve build the model an environment with them: --env-manager virtualenv (or uv, or conda).',
      ],
    },
  )
}

/** Prepares the environment the options ask for, and marks it in use until `release`. */
export async function prepareEnv(request: PrepareRequest): Promise<PythonEnv> {
  const {options, log, mlmodel} = request
  let manager = options.envManager
  if (manager === 'conda' && mlmodel.pyfunc?.env === undefined) {
    log.warn('Conda environment is not specified in config `env`. Using local environment.')
    manager = 'local'
  }

  if (manager === 'local') {
    if (options.installMlflow) log.warn('--install-mlflow is ignored with --env-manager local (as in mlflow).')
    const phase = log.phase('prepare environment (local)')
    const env = await localEnv(options.python, options.env)
    requireServerPackages(env, request.serverPackages ?? [])
    phase.done(`python ${env.pythonVersion} at ${env.executable}, mlflow ${env.mlflowVersion}`)
    return env
  }

  const phase = log.phase(`prepare environment (${manager})`)
  // Environments mlserve builds also get uvicorn's fast event loop and HTTP parser (--no-speedups: not).
  const serverPackages = [...(request.serverPackages ?? []), ...(options.speedups ? SCORER_SPEEDUPS : [])]
  if (manager === 'conda') {
    const mlflow = options.installMlflow ? mlflowToInstall([], mlmodel) : undefined
    if (mlflow) log.info(`--install-mlflow: installing ${mlflow.spec} (${mlflow.why})`)
    const conda = await interruptible(
      request.signal,
      ensureCondaEnv({
        modelDir: request.modelDir,
        mlmodel,
        mlflow: mlflow?.spec,
        serverPackages,
        env: options.env,
        log,
        signal: request.signal,
        buildTimeoutMs: options.buildTimeoutMs,
        verify: (python, run) => verifyEnv(python, mlmodel, run, log, serverPackages),
        versionOf: (python) => pythonVersionOf(python, options.env),
      }),
    )
    return readyEnv(conda, manager, options, phase)
  }

  const defaultPython = mlmodel.pyfunc?.pythonVersion ?? (await pythonVersionOf(options.python, options.env)) ?? '3'
  const spec = await readEnvSpec(request.modelDir, mlmodel.pyfunc?.env, defaultPython)
  for (const warning of spec.warnings) log.warn(warning)
  const managed = await interruptible(
    request.signal,
    ensureManagedEnv({
      manager,
      modelDir: request.modelDir,
      mlmodel,
      spec,
      installMlflow: options.installMlflow,
      serverPackages,
      env: options.env,
      log,
      signal: request.signal,
      buildTimeoutMs: options.buildTimeoutMs,
      uv: await ensureUv(options.python, options.env, log, request.signal, options.buildTimeoutMs),
      versionOf: (python) => pythonVersionOf(python, options.env),
    }),
  )
  return readyEnv(managed, manager, options, phase)
}

/** A built or cached env, probed and marked in use. */
async function readyEnv(
  built: {python: string; dir: string; built: boolean},
  manager: PythonEnv['manager'],
  options: ModelOptions,
  phase: Phase,
): Promise<PythonEnv> {
  const release = await markInUse(built.dir)
  const env = {
    ...requireMlflow(await probePython(built.python, options.env), manager, release),
    home: path.dirname(path.dirname(built.python)),
    key: path.basename(built.dir),
  }
  phase.done(`${built.built ? 'built' : 'cached'} ${built.dir}: python ${env.pythonVersion} at ${env.executable}, mlflow ${env.mlflowVersion}`)
  return env
}

/** A build cut short by a signal is INTERRUPTED (exit 130); the cache holds nothing of it. */
async function interruptible<T>(signal: AbortSignal | undefined, work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (error) {
    if (!signal?.aborted) throw error
    throw new MlserveError('INTERRUPTED', 'Interrupted while preparing the environment; nothing half-built was kept.', {cause: error})
  }
}
