// One generation of what serves the model: its directory, its environment, its backend and its -w
// scorers under one supervisor. Serve starts the first; each reload builds the next beside it.
import {mkdir, rm} from 'node:fs/promises'
import path from 'node:path'

import type {ServeOptions} from '../config.js'
import {diagnoseEnv, prepareEnv} from '../env/env.js'
import {MlserveError, messageOf} from '../errors.js'
import type {ResolvedModel} from '../load-model.js'
import type {Logger} from '../log.js'
import type {FlavorKind, Mlmodel} from '../model/mlmodel.js'
import {genaiWarmupSkip, readWarmup} from '../model/warmup.js'
import type {Backend} from '../scorer/backend.js'
import {pyfuncBackend} from '../scorer/command.js'
import type {OutputSink} from '../scorer/process.js'
import {Supervisor, type SupervisorEvents, type WarmupRequest} from '../scorer/supervisor.js'
import {redactUri} from '../uri/tracking.js'
import {CleanupStack} from '../util/cleanup.js'

/** What a generation serves, for the log, /metrics, /readyz and the X-MLServe-Model-Version header. */
export interface ServedModel {
  /** The model URI as the user gave it (credentials hidden). */
  readonly uri: string
  /** The registry version, when the URI names a registered model. */
  readonly version?: string
  /** The run that logged it: the runs:/ URI's, else MLmodel's run_id. */
  readonly runId?: string
  /** 1 for the model served at start, then one more per switch. */
  readonly generation: number
  /** What the header says: the registry version, else the run id (undefined: neither is known). */
  readonly label?: string
}

export function servedModelOf(model: ResolvedModel, generation: number): ServedModel {
  const version = model.ref.registered?.version
  const runId = model.ref.runId ?? model.mlmodel.runId
  return {uri: redactUri(model.ref.uri), version, runId, generation, label: version ?? runId}
}

/** How a generation's scorers are made, before any of them starts. */
export interface ScorerPlan {
  readonly backend: Backend
  readonly warmup: WarmupRequest | undefined
  /** Undoes what the plan holds (the environment's in-use mark). */
  readonly release: () => Promise<void>
}

export interface PlanIo {
  readonly log: Logger
  /** Aborts an environment build. */
  readonly signal: AbortSignal
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

export interface GenerationIo {
  readonly log: Logger
  readonly stdout: OutputSink
  readonly stderr: OutputSink
  readonly events?: SupervisorEvents
}

/** A generation: its model, its plan and its supervisor, and what it needs undone when it ends. */
export class ServingSet {
  private constructor(
    readonly model: ResolvedModel,
    readonly served: ServedModel,
    readonly plan: ScorerPlan,
    readonly supervisor: Supervisor,
    private readonly socketDir: string | undefined,
  ) {}

  /**
   * The supervisor of `plan`'s scorers, not started. Generation 1 puts its sockets in `socketDir`; later
   * ones in a subdirectory of their own (a preload control socket is named per backend).
   */
  static async create(
    model: ResolvedModel,
    plan: ScorerPlan,
    generation: number,
    socketDir: string,
    options: ServeOptions,
    io: GenerationIo,
    stopGraceMs: number,
  ): Promise<ServingSet> {
    const own = generation === 1 ? undefined : path.join(socketDir, String(generation))
    if (own) await mkdir(own, {mode: 0o700})
    const served = servedModelOf(model, generation)
    const supervisor = new Supervisor({
      backend: plan.backend,
      workers: options.workers,
      socketDir: own ?? socketDir,
      baseEnv: options.env,
      cwd: options.cwd,
      stdout: io.stdout,
      stderr: io.stderr,
      log: io.log,
      maxConcurrency: options.maxConcurrency,
      maxQueue: options.maxQueue,
      timeoutMs: options.timeoutSeconds * 1000,
      stuckGraceMs: options.timeoutGraceMs,
      livenessIntervalMs: options.livenessIntervalMs,
      loadTimeoutMs: options.loadTimeoutMs,
      warmup: plan.warmup,
      stopGraceMs,
      events: io.events,
      requireAll: generation > 1,
      modelVersion: served.label,
      modelGeneration: generation,
    })
    return new ServingSet(model, served, plan, supervisor, own)
  }

  /** After its scorers stopped: the environment's in-use mark and the socket subdirectory go. */
  async release(): Promise<void> {
    await this.plan.release()
    if (this.socketDir) await rm(this.socketDir, {recursive: true, force: true})
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
    const {crateBackend} = await import('../scorer/crate.js')
    const phase = log.phase(
      `prepare R scorer (${options.rScorer === 'mlflow' ? "the R mlflow package's mlflow_rfunc_serve" : "mlserve's R scorer"})`,
    )
    const backend = await crateBackend({modelDir, mlmodel, env: options.env, rScorer: options.rScorer, mlflowVersion: mlmodel.mlflowVersion})
    phase.done()
    return backend
  }

  const mlserver = options.enableMlserver ? await import('../scorer/mlserver.js') : undefined
  const env = await prepareEnv({options, modelDir, mlmodel, log, signal: io.signal, serverPackages: mlserver?.MLSERVER_PACKAGES})
  cleanup.defer('release the environment', env.release)
  let backend = mlserver
    ? mlserver.mlserverBackend({env, modelDir, workers: options.workers, timeoutSeconds: options.timeoutSeconds, baseEnv: options.env})
    : pyfuncBackend({env, modelDir, timeoutSeconds: options.timeoutSeconds, fastPath: options.fastPath !== false})
  if (options.preload) backend = await preloadOrSpawn(backend, env.executable, modelDir, options, log)
  return {...backend, diagnoseExit: async () => diagnoseEnv(env)}
}

/** --preload: forked scorers for MLflow's uvicorn app; the spawn mode (with a warning) for anything else. */
async function preloadOrSpawn(backend: Backend, python: string, modelDir: string, options: ServeOptions, log: Logger): Promise<Backend> {
  if (backend.kind !== 'pyfunc' || backend.server !== 'uvicorn') {
    const what = backend.kind === 'mlserver' ? 'MLServer' : `mlflow's ${backend.server} scorer (mlflow < 2.21)`
    log.warn(`--preload does not apply to ${what}: each scorer loads its own copy of the model (spawn mode).`)
    return backend
  }

  const {preloadBackend} = await import('../scorer/preload.js')
  return preloadBackend({
    spawn: backend,
    python,
    modelDir,
    timeoutSeconds: options.timeoutSeconds,
    fastPath: options.fastPath !== false,
    loadTimeoutMs: options.loadTimeoutMs,
    log,
  })
}
