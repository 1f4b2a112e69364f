// One generation of what serves the model: its directory, its environment, its backend and its -w
// scorers under one supervisor. Serve starts the first; each reload builds the next beside it.
import {mkdir, rm} from 'node:fs/promises'
import path from 'node:path'

import type {ServeOptions} from '../config.js'
import type {ResolvedModel} from '../load-model.js'
import type {Logger} from '../log.js'
import type {ScorerPlan} from '../scorer/plan.js'
import type {OutputSink} from '../scorer/process.js'
import {Supervisor, type SupervisorEvents} from '../scorer/supervisor.js'
import {publicModelUri} from '../uri/public.js'

/** What a generation serves, for the log, /metrics, /readyz and the X-MLServe-Model-Version header. */
export interface ServedModel {
  /** The model URI as the user gave it without credentials; a local model by its directory's name only (no host path on the public port). */
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
  return {uri: publicModelUri(model.ref.uri, model.ref.localDir), version, runId, generation, label: version ?? runId}
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
