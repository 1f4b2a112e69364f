// One model of several served by one mlserve, on its own single-model stack (environment, generation,
// switchboard, supervisor, proxy handler, follower): prepared once, loaded and unloaded (model-pool.ts).
import {mkdir} from 'node:fs/promises'
import path from 'node:path'

import type {ServeOptions} from '../config.js'
import {messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import {loadModel, type ResolvedModel} from '../load-model.js'
import type {ScorerStatus} from '../proxy/observe.js'
import type {RequestHandler} from '../proxy/server.js'
import type {EnvLoaders} from '../scorer/env-loader.js'
import type {EnvironmentFacts, ScorerPlan} from '../scorer/plan.js'
import {planScorers} from '../scorer/plan.js'
import type {OutputSink} from '../scorer/process.js'
import {redactUri} from '../uri/tracking.js'
import {ServingSet, servedModelOf, type GenerationIo, type ServedModel} from './generation.js'
import type {ModelSpec} from './model-specs.js'
import {describeServed, followReference, type ReloadContext, type ReloadIo} from './reload.js'
import {Switchboard} from './switchboard.js'

/**
 * A model's lifecycle state. `loading`: being resolved, built or started; `loaded`: its processes serve;
 * `unloaded`: prepared (resolved, environment ready) but no process runs (--load lazy, or evicted under
 * --max-loaded / --max-memory): a request starts its load; `failed`: it cannot be served (`error` says why).
 *
 * The interface for adding and removing models while serving (issue 27 items 1 and 5 call it; owned by the
 * lifecycle in model-pool.ts, agreed between the `multiload` and `multireg` branches):
 *
 *   pool.add(spec: ModelSpec): Promise<ServedEntry>
 *     serves one more model under spec.name (a name already served: MlserveError INVALID_ARGUMENT). It is
 *     routed at once (503 + Retry-After while loading); resolves once it is prepared and, per --load and
 *     the limits, loaded or left unloaded; a failure leaves it listed as `failed` (never thrown).
 *   pool.remove(name: string): Promise<void>
 *     new requests for it answer 404 at once; its requests in flight and queued finish (up to the stop
 *     grace), then its processes stop, its environment is released and it is forgotten (GET /models, /metrics).
 *   pool.entries: readonly ServedEntry[]  (live: the routes, /models and /metrics read it on each call)
 *   pool.get(name): ServedEntry | undefined
 *   pool.reload(name)?: left to multireg (a follower's check now), on top of entry.switchboard as today.
 */
export type ModelState = 'loading' | 'loaded' | 'unloaded' | 'failed'

/** What a model's stack needs from the server around it. */
export interface ModelContext {
  readonly log: Logger
  readonly generationIo: GenerationIo
  readonly reloadIo: ReloadIo
  readonly reload: Omit<ReloadContext, 'socketDir'>
  /** The proxy handler of one model (its switchboard once it has one, else nowhere to forward). */
  readonly handlerFor: (entry: ServedEntry) => RequestHandler
  readonly stopGraceMs: number
  /** The environments' loaders (uvicorn models are forked from them). */
  readonly envLoaders?: EnvLoaders
}

/** One named model: its options (serve's, with its own settings), its state, and its stack while loaded. */
export class ServedEntry {
  state: ModelState = 'loading'
  error: string | undefined
  served: ServedModel | undefined
  environment: EnvironmentFacts | undefined
  switchboard: Switchboard | undefined
  handle: RequestHandler
  /** Requests in flight or waiting for it (never evicted while > 0); the routes keep it. */
  busy = 0
  /** performance.now() of its last request or load; Date.now() of the same, for GET /models. */
  lastUsed = 0
  lastUsedAt: number | undefined
  /** Its processes' PSS in bytes, last measured while loaded (kept when unloaded: the next load's estimate). */
  memory: number | undefined
  private model: ResolvedModel | undefined
  private plan: ScorerPlan | undefined
  private loads = 0
  private follower: {stop(): Promise<void>} | undefined

  constructor(
    readonly spec: ModelSpec,
    readonly options: ServeOptions,
    private readonly context: ModelContext,
    private readonly socketDir: string,
  ) {
    this.handle = context.handlerFor(this)
  }

  get name(): string {
    return this.spec.name
  }

  /** The URI as the user gave it, credentials hidden. */
  get uri(): string {
    return redactUri(this.options.modelUri)
  }

  get log(): Logger {
    return namedLog(this.context.log, this.name)
  }

  /** Resolves the model and prepares its environment (state unloaded); a failure is kept (state failed), never thrown. */
  async prepare(stop: AbortSignal): Promise<void> {
    const {options, log} = this
    try {
      const model = await loadModel(options.modelUri, options.cwd, log, {env: options.env, signal: stop, python: options.python})
      this.model = model
      this.served = servedModelOf(model, 1)
      await mkdir(this.socketDir, {mode: 0o700})
      const envLoaders = this.context.envLoaders
      this.plan = await planScorers(model, options, {log, signal: stop, envLoaders, onEnvironment: (facts) => (this.environment = facts)})
      this.state = 'unloaded'
    } catch (error) {
      if (!stop.aborted) this.fail(error)
    }
  }

  /** Starts its scorers (from state unloaded); resolves once one is ready. A failure is kept (state failed). */
  async load(stop: AbortSignal): Promise<boolean> {
    const {options, context, name, log, model, plan} = this
    if (!model || !plan || this.state !== 'unloaded') return false
    this.state = 'loading'
    this.error = undefined
    try {
      const dir = path.join(this.socketDir, String(++this.loads))
      await mkdir(dir, {mode: 0o700})
      const io = {
        ...context.generationIo,
        log,
        stdout: namedSink(context.generationIo.stdout, name),
        stderr: namedSink(context.generationIo.stderr, name),
      }
      const first = await ServingSet.create(model, plan, 1, dir, options, io, context.stopGraceMs)
      const switchboard = new Switchboard(first)
      this.switchboard = switchboard
      this.handle = context.handlerFor(this)
      if (!(await first.supervisor.start(stop))) return false
      this.state = 'loaded'
      this.touch()
      log.info(`model ${name} is ready: serving ${redactUri(options.modelUri)}${describeServed(first.served)} at /models/${name}/invocations`)
      this.follower = followReference(options, {...context.reloadIo, log}, switchboard, {...context.reload, socketDir: dir})
      return true
    } catch (error) {
      if (stop.aborted) return false
      this.fail(error)
      await this.unload(0)
      this.state = 'failed'
      return false
    }
  }

  touch(): void {
    this.lastUsed = performance.now()
    this.lastUsedAt = Date.now()
  }

  /** The processes serving it now (memory accounting). */
  pids(): number[] {
    return this.switchboard?.current.supervisor.pids() ?? []
  }

  private fail(error: unknown): void {
    this.state = 'failed'
    this.error = messageOf(error)
    this.context.log.warn(`model ${this.name} (${redactUri(this.options.modelUri)}) cannot be served: ${this.error}`)
  }

  /** Stops following and its scorers; keeps what a next load needs (the model, its environment). */
  async unload(graceMs: number, force?: AbortSignal): Promise<void> {
    const {switchboard, follower} = this
    // At once, before any wait: a request arriving now waits for the next load instead of this stopping stack.
    this.follower = undefined
    this.switchboard = undefined
    if (switchboard) {
      this.handle = this.context.handlerFor(this)
      if (this.state !== 'failed') this.state = 'unloaded'
    }

    await follower?.stop()
    if (!switchboard) return
    await switchboard.stop(graceMs, force)
    // A reload may have switched to another version meanwhile: the next load serves that one.
    this.model = switchboard.current.model
    this.plan = switchboard.current.plan
    this.served = switchboard.current.served
  }

  /** Unloads, then releases the environment: the model is gone for good. */
  async stop(graceMs: number, force?: AbortSignal): Promise<void> {
    await this.unload(graceMs, force)
    const {plan} = this
    this.plan = undefined
    await plan?.release()
  }

  killNow(): void {
    this.switchboard?.killNow()
  }
}

/** The log of one model: each line says which model it is about. */
function namedLog(log: Logger, name: string): Logger {
  return {
    info: (message) => log.info(`${name}: ${message}`),
    warn: (message) => log.warn(`${name}: ${message}`),
    phase: (phase, options) => log.phase(`${name}: ${phase}`, options),
  }
}

/** Scorer output ("[scorer 0] text") as "[<name> scorer 0] text". */
const namedSink = (sink: OutputSink, name: string): OutputSink => ({write: (chunk) => sink.write(chunk.replace(/^\[/, `[${name} `))})

/** Every loaded model's scorers as one ScorerStatus (/metrics, /livez). */
export function combinedStatus(entries: () => readonly ServedEntry[]): ScorerStatus {
  const boards = () =>
    entries()
      .filter((entry) => entry.state === 'loaded' && entry.switchboard)
      .map((entry) => entry.switchboard!)
  return {
    counts() {
      const total = {starting: 0, ready: 0, retiring: 0}
      for (const board of boards()) for (const [key, n] of Object.entries(board.counts())) total[key as keyof typeof total] += n
      return total
    },
    get queueDepth() {
      return boards().reduce((sum, board) => sum + board.queueDepth, 0)
    },
    get outstanding() {
      return boards().reduce((sum, board) => sum + board.outstanding, 0)
    },
    get unhealthy() {
      const all = boards()
      return all.length > 0 && all.every((board) => board.unhealthy) ? all.map((board) => board.unhealthy).join('; ') : undefined
    },
    get mode() {
      return boards()[0]?.mode
    },
  }
}
