// Choosing a model's scorer kind (pyfunc, R crate or MLServer; preload or spawn) and preparing what it
// needs (its environment, its warm-up example) before any scorer starts.
import type {ServeOptions} from '../config.js'
import {diagnoseEnv, prepareEnv} from '../env/env.js'
import {MlserveError, messageOf} from '../errors.js'
import type {ResolvedModel} from '../load-model.js'
import type {Logger} from '../log.js'
import type {FlavorKind, Mlmodel} from '../model/mlmodel.js'
import {genaiWarmupSkip, readWarmup, type WarmupRequest} from '../model/warmup.js'
import {CleanupStack} from '../util/cleanup.js'
import type {Backend} from './backend.js'
import type {EnvLoaders} from './env-loader.js'
import type {LoaderInput} from './preload-loader.js'
import {pyfuncBackend, scorerEnv} from './pyfunc.js'

/** How a generation's scorers are made, before any of them starts. */
export interface ScorerPlan {
  readonly backend: Backend
  readonly warmup: WarmupRequest | undefined
  /** Undoes what the plan holds (the environment's in-use mark). */
  readonly release: () => Promise<void>
}

/** The model's environment, as data for whoever runs serve (smoke's report). */
export interface EnvironmentFacts {
  readonly manager: string
  /** The cache key of an environment mlserve built (undefined: local). */
  readonly key?: string
  /** Its interpreter and mlflow, for people. */
  readonly detail: string
}

export interface PlanIo {
  readonly log: Logger
  /** Aborts an environment build. */
  readonly signal: AbortSignal
  /** Called once the model's Python environment is ready. */
  readonly onEnvironment?: (facts: EnvironmentFacts) => void
  /** Several models: MLflow's uvicorn models are loaded by forking their environment's loader (as --preload, shared). */
  readonly envLoaders?: EnvLoaders
}

/** The backend for `model` with its environment prepared, and its warm-up example. */
export async function planScorers(model: ResolvedModel, options: ServeOptions, io: PlanIo): Promise<ScorerPlan> {
  const cleanup = new CleanupStack()
  const release = async () => cleanup.runAll((name, error) => io.log.warn(`could not ${name}: ${messageOf(error)}`))
  try {
    const backend = await backendFor(model.flavor, model.ref.localDir, model.mlmodel, options, io, cleanup)
    const genai = options.warmup && model.flavor === 'pyfunc' ? genaiWarmupSkip(model.mlmodel) : undefined
    if (genai) io.log.info(`not warming up: ${genai}; ready as soon as /ping answers`)
    const warmup =
      options.warmup && model.flavor === 'pyfunc' && !genai
        ? await readWarmup(model.ref.localDir, model.mlmodel, {maxBytes: options.maxBodyBytes, log: io.log})
        : undefined
    return {backend, warmup, release}
  } catch (error) {
    await release()
    throw error
  }
}

/** The scorer kind the model needs, with its environment prepared (released by `cleanup`). */
export async function backendFor(
  kind: FlavorKind,
  modelDir: string,
  mlmodel: Mlmodel,
  options: ServeOptions,
  io: PlanIo,
  cleanup: CleanupStack,
): Promise<Backend> {
  const {log} = io
  if (kind === 'crate') {
    if (options.enableMlserver) {
      throw new MlserveError('BACKEND_UNSUPPORTED', 'MLServer cannot serve R crate models (as in mlflow).', {
        suggestions: ['Serve it without --enable-mlserver: mlserve runs an R scorer for it.'],
      })
    }

    if (options.preload) log.warn('--preload does not apply to R crate models: each R scorer loads the model itself (spawn mode).')
    if (options.envManager !== 'local')
      log.info(`--env-manager ${options.envManager} does not apply to R crate models: they run with the system's R (as in mlflow)`)
    const {crateBackend} = await import('./crate.js')
    const phase = log.phase(
      `prepare R scorer (${options.rScorer === 'mlflow' ? "the R mlflow package's mlflow_rfunc_serve" : "mlserve's R scorer"})`,
    )
    const backend = await crateBackend({modelDir, mlmodel, env: options.env, rScorer: options.rScorer, mlflowVersion: mlmodel.mlflowVersion})
    phase.done()
    return backend
  }

  const mlserver = options.enableMlserver ? await import('./mlserver.js') : undefined
  const env = await prepareEnv({options, modelDir, mlmodel, log, signal: io.signal, serverPackages: mlserver?.MLSERVER_PACKAGES})
  cleanup.defer('release the environment', env.release)
  io.onEnvironment?.({
    manager: env.manager,
    key: env.key,
    detail: `python ${env.pythonVersion} at ${env.executable}, mlflow ${env.mlflowVersion}`,
  })
  let backend = mlserver
    ? mlserver.mlserverBackend({env, modelDir, workers: options.workers, timeoutSeconds: options.timeoutSeconds, baseEnv: options.env})
    : pyfuncBackend({env, modelDir, timeoutSeconds: options.timeoutSeconds, fastPath: options.fastPath !== false})
  const key = env.key ?? `local:${env.executable}`
  if (io.envLoaders && options.workers === 1 && !options.preload && isUvicorn(backend)) {
    // Several models, one scorer each: the scorer itself is forked from the environment's loader.
    const {forkedBackend} = await import('./forked-backend.js')
    backend = forkedBackend(
      backend,
      io.envLoaders.serverFor(key, env.executable),
      scorerEnv(modelDir, options.timeoutSeconds, options.fastPath !== false),
    )
  } else {
    const shared = io.envLoaders?.launcherFor(key, env.executable)
    if (options.preload || shared) backend = await preloadOrSpawn(backend, env.executable, modelDir, options, log, shared)
  }
  return {...backend, diagnoseExit: async () => diagnoseEnv(env)}
}

const isUvicorn = (backend: Backend) => backend.kind === 'pyfunc' && backend.server === 'uvicorn'

/**
 * --preload: forked scorers for MLflow's uvicorn app; the spawn mode (with a warning) for anything else.
 * `shared`: several models, the model's loader forked from its environment's (no warning: others spawn as ever).
 */
async function preloadOrSpawn(
  backend: Backend,
  python: string,
  modelDir: string,
  options: ServeOptions,
  log: Logger,
  shared?: LoaderInput['launch'],
): Promise<Backend> {
  if (backend.kind !== 'pyfunc' || backend.server !== 'uvicorn') {
    if (!options.preload) return backend
    const what = backend.kind === 'mlserver' ? 'MLServer' : `mlflow's ${backend.server} scorer (mlflow < 2.21)`
    log.warn(`--preload does not apply to ${what}: each scorer loads its own copy of the model (spawn mode).`)
    return backend
  }

  const {preloadBackend} = await import('./preload.js')
  return preloadBackend({
    spawn: backend,
    python,
    modelDir,
    timeoutSeconds: options.timeoutSeconds,
    fastPath: options.fastPath !== false,
    loadTimeoutMs: options.loadTimeoutMs,
    log,
    launch: shared,
  })
}
