// serve's reloads: the follower's checks wired to the tracking client, and the switch itself: the new
// generation is prepared beside the serving one (download, environment, -w scorers warmed up), then swapped in.
import type {ServeOptions} from '../config.js'
import {MlserveError} from '../errors.js'
import {loadModel, type ResolvedModel} from '../load-model.js'
import {formatDuration, type Logger} from '../log.js'
import {parseModelUri} from '../uri/parse.js'
import {isMovingUri, lookUpModelTarget, targetKeyOf, type ModelTarget} from '../uri/resolve.js'
import {redactUri} from '../uri/tracking.js'
import {fingerprintDir} from '../util/dir-fingerprint.js'
import {Follower, describeTarget, type ReloadOutcome} from './follower.js'
import {planScorers} from '../scorer/plan.js'
import {ServingSet, type GenerationIo, type ServedModel} from './generation.js'
import type {Switchboard} from './switchboard.js'

export interface ReloadIo {
  readonly log: Logger
  /** Aborts on the first SIGINT/SIGTERM: a reload in progress is abandoned. */
  readonly stop: AbortSignal
  readonly force: AbortSignal
  /** Calls `listener` on each reload request (SIGHUP); returns what unsubscribes it. */
  readonly onReloadRequest?: (listener: () => void) => () => void
}

export interface ReloadContext {
  readonly socketDir: string
  readonly generationIo: GenerationIo
  /** The grace a draining generation gets (0 once a second signal came). */
  readonly graceFor: (ms: number) => number
  readonly stopGraceMs: number
  readonly observer: {recordReload(outcome: ReloadOutcome): void; recordReloadCheckFailure(): void}
}

/** How the log names what a generation serves: ` (version 3 of fraud)`, ` (run <id>)`, or nothing. */
export function describeServed(served: ServedModel): string {
  const {version, runId} = served
  return version === undefined ? (runId === undefined ? '' : ` (run ${runId})`) : ` (version ${version})`
}

/** Starts following `options.modelUri` (--reload-interval, SIGHUP); stop() the result before the scorers stop. */
export function followReference(options: ServeOptions, io: ReloadIo, switchboard: Switchboard, context: ReloadContext): {stop(): Promise<void>} {
  const {log} = io
  const uri = redactUri(options.modelUri)
  const lookUpContext = {cwd: options.cwd, env: options.env, log, signal: io.stop, python: options.python}
  let generation = switchboard.current.served.generation
  // A local directory is named by its path and what it holds: SIGHUP (which also re-reads the front
  // door's keys and certificates) reloads it only when its files changed.
  const local = switchboard.current.model.ref.localDir
  let servedLocal: Promise<string> | undefined = isLocalUri(options.modelUri) ? localKeyOf(local) : undefined
  /** The last replaced generation, until it has drained and stopped: the next reload waits for it. */
  let draining: Promise<unknown> = Promise.resolve()

  const reload = async (target: ModelTarget, cancel: AbortSignal): Promise<void> => {
    // A reload that is no longer wanted (a newer target, SIGHUP) stops like one that mlserve's stop abandons.
    const stop = AbortSignal.any([io.stop, cancel])
    await draining
    const previous = switchboard.current
    const began = performance.now()
    log.info(`reload: preparing ${describeTarget(target)} beside the serving generation ${previous.served.generation}`)
    const loaded = await loadModel(target.fixedUri, options.cwd, log, {env: options.env, signal: stop, python: options.python})
    // Named as the user named it (models:/fraud@champion), whatever fixed URI was fetched.
    const model: ResolvedModel = {...loaded, ref: {...loaded.ref, uri: options.modelUri, registered: target.registered ?? loaded.ref.registered}}
    if (model.flavor !== previous.model.flavor) {
      throw new MlserveError(
        'BACKEND_UNSUPPORTED',
        `it is a ${model.flavor === 'crate' ? 'crate' : 'python_function'} model and the serving one is not: reload not supported across flavors`,
        {suggestions: ['Restart mlserve to serve it.']},
      )
    }

    const plan = await planScorers(model, options, {log, signal: stop})
    let next: ServingSet
    try {
      next = await ServingSet.create(model, plan, generation + 1, context.socketDir, options, context.generationIo, context.stopGraceMs)
    } catch (error) {
      await plan.release()
      throw error
    }

    generation++
    switchboard.prepare(next)
    const abandon = async () => {
      switchboard.abandon(next)
      await next.supervisor.stop(0)
      await next.release()
    }

    const started = await next.supervisor.start(stop).catch(async (error: unknown) => {
      await abandon()
      throw error
    })
    if (!started) {
      await abandon()
      throw new MlserveError('INTERRUPTED', io.stop.aborted ? 'mlserve is stopping' : 'the reload was cancelled')
    }

    const was = previous.served
    if (target.local) servedLocal = Promise.resolve(target.key)
    draining = switchboard
      .switchTo(next, context.graceFor(options.gracePeriodMs), context.graceFor(context.stopGraceMs), io.force)
      .then((exits) => {
        log.info(`generation ${was.generation} stopped (${exits.length} scorer${exits.length === 1 ? '' : 's'}) and released`)
      })
    log.info(`${describeSwitch(next.served, was)}, prepared in ${formatDuration(performance.now() - began)}`)
  }

  let servedKey: string | undefined
  const follower = new Follower({
    uri,
    intervalMs: options.reloadIntervalMs ?? 0,
    moving: isMovingUri(options.modelUri),
    log,
    async lookUp() {
      const target = await lookUpModelTarget(options.modelUri, lookUpContext)
      if (!target.local) return target
      servedKey = await servedLocal
      return {...target, key: await localKeyOf(target.key)}
    },
    currentKey: () => servedKey ?? targetKeyOf(switchboard.current.model.ref),
    reload,
    onOutcome: (outcome) => context.observer.recordReload(outcome),
    onCheckFailed: () => context.observer.recordReloadCheckFailure(),
  })
  const unsubscribe = io.onReloadRequest?.(() => void follower.request(true))
  follower.start()

  return {
    async stop() {
      unsubscribe?.()
      await follower.stop()
      await draining
    },
  }
}

/** `serving fraud version 7 (was 6)`, or for what has no registry version, the generation (and run). */
export function describeSwitch(served: ServedModel, was: ServedModel): string {
  if (served.version !== undefined && was.version !== undefined) {
    const name = /^models:\/([^/@]+)/.exec(served.uri)?.[1] ?? served.uri
    return `serving ${name} version ${served.version} (was ${was.version})`
  }

  const run = (model: ServedModel) => (model.runId ? `, run ${model.runId}` : '')
  return `serving ${served.uri} generation ${served.generation}${run(served)} (was generation ${was.generation}${run(was)})`
}

const isLocalUri = (uri: string): boolean => parseModelUri(uri).kind === 'local'

/** A local directory's target key: its path and a digest of its files. */
const localKeyOf = async (dir: string): Promise<string> => `${dir}#${await fingerprintDir(dir)}`
