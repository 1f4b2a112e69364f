// The models one mlserve serves, each on its own single-model stack (environment, generation, switchboard,
// supervisor, proxy handler, follower): started eagerly a few at a time, each one's state and error kept.
import {mkdir} from 'node:fs/promises'
import path from 'node:path'

import type {ServeOptions} from '../config.js'
import {messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import {loadModel} from '../load-model.js'
import type {ScorerStatus} from '../proxy/observe.js'
import type {RequestHandler} from '../proxy/server.js'
import type {EnvironmentFacts} from '../scorer/plan.js'
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
}

/** One named model: its options (serve's, with its own settings), its state, and its stack once started. */
export class ServedEntry {
  state: ModelState = 'loading'
  error: string | undefined
  served: ServedModel | undefined
  environment: EnvironmentFacts | undefined
  switchboard: Switchboard | undefined
  handle: RequestHandler
  private follower: {stop(): Promise<void>} | undefined

  constructor(
    readonly spec: ModelSpec,
    readonly options: ServeOptions,
    private readonly context: ModelContext,
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

  /** Resolves, builds and loads the model in `socketDir`; a failure is kept (state failed), never thrown. */
  async start(socketDir: string, stop: AbortSignal): Promise<void> {
    const {options, context, name} = this
    const log = namedLog(context.log, name)
    try {
      const model = await loadModel(options.modelUri, options.cwd, log, {env: options.env, signal: stop, python: options.python})
      this.served = servedModelOf(model, 1)
      await mkdir(socketDir, {mode: 0o700})
      const plan = await planScorers(model, options, {log, signal: stop, onEnvironment: (facts) => (this.environment = facts)})
      const first = await ServingSet.create(
        model,
        plan,
        1,
        socketDir,
        options,
        {
          ...context.generationIo,
          log,
          stdout: namedSink(context.generationIo.stdout, name),
          stderr: namedSink(context.generationIo.stderr, name),
        },
        context.stopGraceMs,
      ).catch(async (error: unknown) => {
        await plan.release()
        throw error
      })
      const switchboard = new Switchboard(first)
      this.switchboard = switchboard
      this.handle = context.handlerFor(this)
      if (!(await first.supervisor.start(stop))) return
      this.state = 'loaded'
      log.info(`model ${name} is ready: serving ${redactUri(options.modelUri)}${describeServed(first.served)} at /models/${name}/invocations`)
      this.follower = followReference(options, {...context.reloadIo, log}, switchboard, {...context.reload, socketDir})
    } catch (error) {
      if (stop.aborted) return
      this.fail(error)
      await this.stop(0)
    }
  }

  private fail(error: unknown): void {
    this.state = 'failed'
    this.error = messageOf(error)
    this.context.log.warn(`model ${this.name} (${redactUri(this.options.modelUri)}) cannot be served: ${this.error}`)
  }

  /** Stops following, then the scorers, then releases the environment. */
  async stop(graceMs: number, force?: AbortSignal): Promise<void> {
    await this.follower?.stop()
    const {switchboard} = this
    if (!switchboard) return
    this.switchboard = undefined
    await switchboard.stop(graceMs, force)
    await switchboard.current.release()
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

/** Starts every entry, `concurrency` at a time, each in its own socket subdirectory; resolves when all have ended starting. */
export async function startAll(entries: readonly ServedEntry[], socketDir: string, stop: AbortSignal, concurrency = 2): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < entries.length && !stop.aborted) {
      const index = next++
      // eslint-disable-next-line no-await-in-loop
      await entries[index]!.start(path.join(socketDir, String(index)), stop)
    }
  }

  await Promise.all(Array.from({length: Math.min(concurrency, entries.length)}, worker))
}

/** Every loaded model's scorers as one ScorerStatus (/metrics, /livez). */
export function combinedStatus(entries: readonly ServedEntry[]): ScorerStatus {
  const boards = () => entries.filter((entry) => entry.state === 'loaded' && entry.switchboard).map((entry) => entry.switchboard!)
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
