// The virtualenv and uv managers: the model's own environment, found in the cache or built into it.
import {rename} from 'node:fs/promises'
import path from 'node:path'

import {ensureBuilt} from '../cache/build-once.js'
import {lockTimeoutMs, type LockWait} from '../cache/lock.js'
import type {EnvManager, EnvVars} from '../config.js'
import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import type {Mlmodel} from '../model/mlmodel.js'
import {describeFailure, run, tailLines} from '../util/exec.js'
import {ENV_KIND, contentKey, envRoot} from './cache.js'
import {installerRunFor, runInstaller, type InstallerRun} from './installer.js'
import {findInterpreter, type Interpreter} from './interpreter.js'
import {expandRequirements, type Requirement} from './requirements.js'
import {serverKeyPart, serverModules} from './server-packages.js'
import type {EnvSpec} from './spec.js'
import {buildVirtualenv, envPython, type VirtualenvPlan} from './virtualenv.js'

export interface ManagedEnvRequest {
  readonly manager: Extract<EnvManager, 'virtualenv' | 'uv'>
  readonly modelDir: string
  readonly mlmodel: Mlmodel
  readonly spec: EnvSpec
  readonly installMlflow: boolean
  /** Requirement specs of the server that runs the model (e.g. mlserver), installed after the model's. */
  readonly serverPackages?: readonly string[]
  readonly env: EnvVars
  readonly log: Logger
  readonly signal?: AbortSignal
  /** How long a build may take (0: no limit): then BUILD_TIMEOUT, the installer killed, nothing kept. */
  readonly buildTimeoutMs?: number
  /** Tools found on this machine (injected so tests and callers share one lookup). */
  readonly uv?: string
  readonly versionOf: (python: string) => Promise<string | undefined>
}

export interface ManagedEnv {
  readonly dir: string
  readonly python: string
  readonly key: string
  readonly built: boolean
}

/**
 * The mlflow to install with --install-mlflow: the version the model's requirements pin, else the one
 * that saved it (MLmodel mlflow_version), else the newest.
 */
export function mlflowToInstall(requirements: readonly Requirement[], mlmodel: Pick<Mlmodel, 'mlflowVersion'>): {spec: string; why: string} {
  for (const requirement of requirements) {
    const pin = /^mlflow(?:\[[^\]]*\])?\s*==\s*([\w.+-]+)\s*$/i.exec(requirement.line)
    if (pin && !requirement.isConstraint) return {spec: `mlflow==${pin[1]}`, why: "pinned by the model's requirements"}
  }

  if (mlmodel.mlflowVersion && !/dev/.test(mlmodel.mlflowVersion)) {
    return {spec: `mlflow==${mlmodel.mlflowVersion}`, why: 'the version that saved the model'}
  }

  return {spec: 'mlflow', why: 'the newest on the package index'}
}

/** Everything that determines the environment's contents, hashed into its cache key. */
export function managedEnvKey(parts: {
  manager: string
  python: string
  buildDependencies: readonly string[]
  requirements: readonly Requirement[]
  mlflow: string | null
  serverPackages?: readonly string[]
}): string {
  const requirements = [...parts.requirements].map((r) => `${r.isConstraint ? 'c' : 'r'} ${r.line}`).sort()
  return contentKey({
    v: 1,
    manager: parts.manager,
    python: parts.python,
    build: parts.buildDependencies,
    requirements,
    mlflow: parts.mlflow,
    ...serverKeyPart(parts.serverPackages),
    platform: `${process.platform}-${process.arch}`,
  })
}

async function interpreterFor(request: ManagedEnvRequest, wanted: string): Promise<Interpreter> {
  const {log} = request
  try {
    return await findInterpreter(wanted, {env: request.env, versionOf: request.versionOf})
  } catch (error) {
    const downloads = (request.env.UV_PYTHON_DOWNLOADS ?? 'automatic') !== 'never'
    if (!(error instanceof MlserveError) || error.code !== 'PYTHON_VERSION_NOT_FOUND' || !request.uv || !downloads) throw error
    const phase = log.phase(`installing Python ${wanted} with uv`, {live: true})
    const result = await run(request.uv, ['python', 'install', wanted], {env: request.env, signal: request.signal, group: true})
    if (result.exitCode !== 0) {
      throw new MlserveError(
        'PYTHON_VERSION_NOT_FOUND',
        `${error.message} \`uv python install ${wanted}\` failed too: ${tailLines(result.stderr, 1) || describeFailure(request.uv, result)}`,
        {
          suggestions: error.suggestions,
        },
      )
    }

    phase.done()
    return findInterpreter(wanted, {env: request.env, versionOf: request.versionOf})
  }
}

export async function ensureManagedEnv(request: ManagedEnvRequest): Promise<ManagedEnv> {
  const {log, spec, modelDir} = request
  if (request.manager === 'uv' && !request.uv) {
    throw new MlserveError('UV_NOT_FOUND', "The 'uv' env manager needs uv, which was not found on PATH.", {
      suggestions: ['Install it (`pip install uv`), or set MLSERVE_UV to its path, or use --env-manager virtualenv.'],
    })
  }

  const requirements = await expandRequirements(spec.dependencies, modelDir)
  const mlflow = request.installMlflow ? mlflowToInstall(requirements, request.mlmodel) : undefined
  if (mlflow) log.info(`--install-mlflow: installing ${mlflow.spec} (${mlflow.why})`)
  const serverPackages = request.serverPackages ?? []

  const interpreter = await interpreterFor(request, spec.python)
  if (!interpreter.exact) {
    log.warn(`The model asks for Python ${spec.python}; using Python ${interpreter.version} (${interpreter.path}), the closest found.`)
  }

  const key = managedEnvKey({
    manager: request.manager,
    python: interpreter.version,
    buildDependencies: spec.buildDependencies,
    requirements,
    mlflow: mlflow?.spec ?? null,
    serverPackages,
  })
  const root = envRoot(request.env)
  const plan: VirtualenvPlan = {
    uv: request.uv,
    python: interpreter.path,
    buildDependencies: spec.buildDependencies,
    dependencies: spec.dependencies,
    requirementCount: requirements.filter((r) => !r.isConstraint && !r.line.startsWith('-')).length,
    extraRequirements: [...(mlflow ? [mlflow.spec] : []), ...serverPackages],
    modelDir,
  }

  const cached = await ensureBuilt({
    kind: ENV_KIND,
    root,
    key,
    signal: request.signal,
    lockTimeoutMs: lockTimeoutMs(request.env),
    buildTimeoutMs: request.buildTimeoutMs,
    record: {
      manager: request.manager,
      python: interpreter.version,
      mlflow: mlflow?.spec ?? null,
      ...(serverPackages.length > 0 ? {serverPackages} : {}),
      model: modelDir,
    },
    onTakeOver: (message) => log.warn(message),
    onWait: (wait) => log.info(waitingMessage(wait)),
    onDamaged: (reason) => log.warn(`the cached environment ${key} is damaged: ${reason}; building it again`),
    build: async (dir, {finalDir, signal}) => {
      log.info(`building environment ${key} in ${root} (python ${interpreter.version}, ${spec.source})`)
      const run = await installerRunFor(root, key, request.env, signal)
      await buildVirtualenv(plan, dir, finalDir, run, log)
      await verifyEnv(envPython(dir), request.mlmodel, run, log, serverPackages)
      await rename(run.logFile, path.join(dir, '.mlserve-build.log'))
    },
  })
  if (!cached.built) log.info(`using cached environment ${key} (${cached.dir})`)
  return {dir: cached.dir, python: envPython(cached.dir), key, built: cached.built}
}

/** The log line of a process waiting for another one's build of the same environment. */
export const waitingMessage = (wait: LockWait): string =>
  `waiting for another mlserve (pid ${wait.owner.pid}) that is building this environment: ${wait.detail}`

/**
 * A built env must import mlflow's scoring server, the model's loader module and the server packages'
 * modules (mlserver, mlserver_mlflow) before it is cached.
 */
export async function verifyEnv(
  python: string,
  mlmodel: Mlmodel,
  run: InstallerRun,
  log: Logger,
  serverPackages: readonly string[] = [],
): Promise<void> {
  const phase = log.phase('verifying the environment', {live: true})
  const loader = mlmodel.pyfunc?.loaderModule ?? 'mlflow.pyfunc'
  const modules = [loader, ...serverModules(serverPackages)]
  // Imports what the scorer will import, writing bytecode even under PYTHONDONTWRITEBYTECODE=1: uv and
  // `pip --no-compile` install none, and without it every start would compile mlflow again (~3-4 s).
  const probe = [
    'import importlib, sys',
    'sys.dont_write_bytecode = False',
    'try:',
    '    import mlflow.pyfunc',
    'except ModuleNotFoundError as e:',
    '    print(f"MLSERVE_NO_MLFLOW {e}")',
    '    sys.exit(3)',
    'import mlflow.pyfunc.scoring_server',
    ...modules.map((module) => `importlib.import_module(${JSON.stringify(module)})`),
    '',
  ].join('\n')
  try {
    await runInstaller(`Importing mlflow and ${modules.join(', ')} in the new environment`, [python, '-c', probe], run)
  } catch (error) {
    const {tailOf} = await import('./installer.js')
    if ((await tailOf(run.logFile, 3)).includes('MLSERVE_NO_MLFLOW')) {
      throw new MlserveError('MLFLOW_NOT_FOUND', "The model's environment has no mlflow: its requirements do not include it.", {
        suggestions: ['Add --install-mlflow to install mlflow into it (the version that saved the model).'],
      })
    }

    throw error
  }

  phase.done()
}
